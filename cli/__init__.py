"""The ``tolk`` command: local stack, worker, API, administration."""
