"""Identifiers: a prefix plus 16 characters of [A-Za-z0-9] (see the API contract)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string

ALPHABET = string.ascii_letters + string.digits
ID_LENGTH = 16


def new_id(prefix: str) -> str:
    return prefix + "".join(secrets.choice(ALPHABET) for _ in range(ID_LENGTH))


def derived_id(prefix: str, key: bytes, *parts: str) -> str:
    """A stable id from a keyed hash of ``parts``: same inputs, same id, unguessable."""
    digest = hmac.new(key, "\x00".join(parts).encode(), hashlib.sha256).digest()
    number = int.from_bytes(digest, "big")
    chars = []
    for _ in range(ID_LENGTH):
        number, index = divmod(number, len(ALPHABET))
        chars.append(ALPHABET[index])
    return prefix + "".join(chars)


def looks_like(prefix: str, value: str) -> bool:
    rest = value[len(prefix) :]
    return value.startswith(prefix) and len(rest) == ID_LENGTH and all(c in ALPHABET for c in rest)
