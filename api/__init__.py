"""The HTTP API: a Starlette app with explicit routes (see ``api.app``)."""
