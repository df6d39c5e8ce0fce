"""Pure domain code: payload walking, key paths, locked keys, placeholders, pseudo-localization.

Nothing here does I/O or imports other Tolk packages, so it is safe anywhere (API,
activities, tests) and easy to test on its own.
"""
