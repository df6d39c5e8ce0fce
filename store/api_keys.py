"""The API key format: ``tolk_`` + 8 hex characters (the key's id, the visible prefix an
operator sees and revokes by), ``_``, and the secret part. Only a key's sha256 is stored,
so a key is shown once, when it is made, and never again. Pure: no database here."""

from __future__ import annotations

import hashlib
import hmac
import secrets

PREFIX = "tolk_"


def new_key() -> tuple[str, str]:
    """A new key: its id (the visible prefix) and the key in full."""
    prefix = PREFIX + secrets.token_hex(4)
    return prefix, f"{prefix}_{secrets.token_urlsafe(32)}"


def key_prefix(key: str) -> str | None:
    """The key's id: "tolk_" + 8 hex characters, the visible prefix before "_" and the
    secret part; None when ``key`` is not shaped like a key."""
    prefix = key[:13]
    if len(key) < 20 or not prefix.startswith(PREFIX) or key[13] != "_":
        return None
    return prefix


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def matches(key: str, key_hash: str) -> bool:
    """Whether the whole ``key`` is the one stored as ``key_hash`` (in constant time)."""
    return hmac.compare_digest(key_hash, hash_key(key))
