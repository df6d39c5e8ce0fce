"""Group read tokens: signed, expiring, read-only access to one group's progress stream,
for browsers that must never hold an API key."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeSerializer

from api.errors import ForbiddenError, UnauthorizedError

SALT = "tolk.group-read-token.v1"
DEFAULT_TTL_SECONDS = 15 * 60
MAX_TTL_SECONDS = 60 * 60


@dataclass
class GroupToken:
    group_id: str
    organization_id: str
    expires_at: int  # Unix seconds


def issue(secret: bytes, group_id: str, organization_id: str, ttl_seconds: int) -> GroupToken:
    expires = math.ceil(time.time() + ttl_seconds)  # at least the whole TTL, never less
    return GroupToken(group_id, organization_id, expires)


def encode(secret: bytes, token: GroupToken) -> str:
    payload = {"g": token.group_id, "o": token.organization_id, "e": token.expires_at}
    return URLSafeSerializer(secret, salt=SALT).dumps(payload)


def verify(secret: bytes, raw: str, group_id: str) -> GroupToken:
    """The token's claims, if it is genuine, unexpired and for ``group_id``."""
    try:
        payload = URLSafeSerializer(secret, salt=SALT).loads(raw)
        token = GroupToken(str(payload["g"]), str(payload["o"]), int(payload["e"]))
    except (BadSignature, KeyError, TypeError, ValueError):
        raise UnauthorizedError("invalid group token") from None
    if token.expires_at <= time.time():
        raise UnauthorizedError("group token expired")
    if token.group_id != group_id:
        raise ForbiddenError("this token is for another group")
    return token
