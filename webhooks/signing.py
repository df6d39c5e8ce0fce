"""Standard Webhooks signing (https://www.standardwebhooks.com), through its reference library.

An organization has one current ``whsec_`` secret; after a rotation the previous one keeps
signing beside it for an overlap window, so receivers can switch at their own pace.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from standardwebhooks import Webhook

if TYPE_CHECKING:
    from store.tables import WebhookConfig

SECRET_PREFIX = "whsec_"


def new_secret() -> str:
    """``whsec_`` + base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def signing_secrets(config: WebhookConfig, now: datetime | None = None) -> list[str]:
    """The secrets that sign right now: the current one, and the previous one during the
    overlap after a rotation."""
    moment = now or datetime.now(UTC)
    active = [config.secret]
    until = config.previous_until
    if config.previous_secret and until is not None:
        if until.tzinfo is None:  # SQLite hands datetimes back naive (they are UTC)
            until = until.replace(tzinfo=moment.tzinfo)
        if until > moment:
            active.append(config.previous_secret)
    return active


def signature_header(
    event_id: str, timestamp: datetime, body: bytes, signing_secrets: Iterable[str]
) -> str:
    """``v1,<sig>`` for each secret, space-separated (Standard Webhooks)."""
    text = body.decode()
    return " ".join(
        Webhook(secret).sign(msg_id=event_id, timestamp=timestamp, data=text)
        for secret in signing_secrets
    )


def signed_headers(
    event_id: str, body: bytes, signing_secrets: Iterable[str], now: datetime | None = None
) -> dict[str, str]:
    """The three Standard Webhooks headers for one attempt (the timestamp is the attempt's)."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    return {
        "webhook-id": event_id,
        "webhook-timestamp": str(int(moment.timestamp())),
        "webhook-signature": signature_header(event_id, moment, body, signing_secrets),
    }
