"""CSRF tokens of the console: every request that changes something carries one, as the
form field ``csrf_token`` or the header ``X-CSRF-Token``, and it must be the token of the
session the cookie names.

A token is an HMAC of the session's id under the server's secret: nothing to store, it
ends with its session, and a page of one session cannot act for another. The sign-in form,
before any session exists, is bound the same way to a nonce in a short-lived cookie of its
own, so that no other site can sign a browser in with the attacker's key."""

from __future__ import annotations

import base64
import hashlib
import hmac

from starlette.requests import Request

from api.errors import ForbiddenError

HEADER = "x-csrf-token"
FIELD = "csrf_token"


def token_for(secret: bytes, purpose: str, value: str) -> str:
    """The token of one session (``purpose="session"``) or one sign-in form (``"login"``)."""
    digest = hmac.new(secret, f"tolk.console.csrf.{purpose}:{value}".encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(digest.digest()).decode().rstrip("=")


def check(request: Request, sent_in_form: str | None, expected: str) -> None:
    """Refuse (403) a request whose token, from the header or the form, is not ``expected``."""
    sent = request.headers.get(HEADER) or sent_in_form
    if not sent:
        raise ForbiddenError("missing CSRF token: send the page's csrf_token or X-CSRF-Token")
    if not hmac.compare_digest(sent.encode(), expected.encode()):
        raise ForbiddenError("invalid CSRF token: reload the page and try again")
