"""Signed, expiring links to one job's output: the ``dataUrl`` of a large webhook.

The link itself is the credential (receivers fetch it without an API key), so it names one
job, carries its expiry, and is signed with the server's secret key.
"""

from __future__ import annotations

import time
from urllib.parse import quote

from itsdangerous import BadSignature, URLSafeSerializer

SALT = "tolk.output-link.v1"


class LinkInvalid(ValueError):
    pass


class LinkExpired(ValueError):
    pass


def output_token(secret: bytes, job_id: str, expires_at: int) -> str:
    return URLSafeSerializer(secret, salt=SALT).dumps({"j": job_id, "e": expires_at})


def output_url(base_url: str, secret: bytes, job_id: str, ttl_seconds: int) -> str:
    token = output_token(secret, job_id, int(time.time()) + ttl_seconds)
    return f"{base_url.rstrip('/')}/jobs/localization/{job_id}/output?token={quote(token)}"


def verify_output_token(secret: bytes, token: str, job_id: str) -> None:
    """Raise unless ``token`` is genuine, for ``job_id`` and not expired."""
    try:
        claims = URLSafeSerializer(secret, salt=SALT).loads(token)
        linked, expires_at = str(claims["j"]), int(claims["e"])
    except (BadSignature, KeyError, TypeError, ValueError):
        raise LinkInvalid("invalid output link") from None
    if linked != job_id:
        raise LinkInvalid("this link is for another job")
    if expires_at <= time.time():
        raise LinkExpired("this output link has expired")
