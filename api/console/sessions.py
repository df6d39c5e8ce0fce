"""Signing in to the console, who a console request comes from, and signing out.

Signing in checks an API key as ``X-API-Key`` is checked (``store/accounts.py``), then
forgets it: the browser gets an HttpOnly, SameSite=Strict cookie holding a random session
id signed with the server's secret, and the database a row under that id's hash
(``store/console_sessions.py``). Every console request looks the row up, so signing out
(the row deleted), the key revoked or the session expired refuses the cookie at once,
however long it had still been signed for. A page asks ``signed_in`` for its caller; a
change asks ``acting`` for its caller and its CSRF token's check."""

from __future__ import annotations

import functools
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import urlencode

from itsdangerous import BadSignature, URLSafeTimedSerializer
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from api.console import csrf
from api.console.forms import MAX_FORM_BYTES, read_form
from api.console.render import page
from api.console_schemas import ActionForm, LoginForm
from api.errors import UnauthorizedError, ValidationError
from api.requests import app_state
from store import accounts, console_sessions

COOKIE = "tolk_console"
LOGIN_COOKIE = "tolk_console_login"  # the sign-in form's CSRF nonce, before any session
LOGIN_FORM_TTL_SECONDS = 3600
SESSION_SALT = "tolk.console-session.v1"
LOGIN_SALT = "tolk.console-login.v1"
HOME = "/console"
LOGIN = "/console/login"


@dataclass(frozen=True)
class ConsoleOptions:
    """How long a sign-in lasts, how long a page's stream token lasts, how many groups a
    page lists; built by ``settings.console_options``, their one default."""

    session_ttl_seconds: int
    stream_token_ttl_seconds: int
    page_size: int


@dataclass(frozen=True)
class Browser:
    """A signed-in browser: its session, its organization and the CSRF token of its pages."""

    session_id: str
    organization_id: str
    api_key_id: str
    csrf_token: str


def _serializer(request: Request, salt: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(app_state(request).secret_key, salt=salt)


def _options(request: Request) -> ConsoleOptions:
    from settings import console_options

    return console_options(app_state(request).settings)


def _set_cookie(request: Request, response: Response, name: str, value: str, max_age: int,
                path: str = HOME) -> None:  # fmt: skip
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=path,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",  # behind TLS (or a proxy that says so)
    )


def _cookie_session(request: Request) -> str | None:
    """The session id the cookie carries, when the server signed it within a lifetime."""
    raw = request.cookies.get(COOKIE)
    if not raw:
        return None
    try:
        session_id = _serializer(request, SESSION_SALT).loads(
            raw, max_age=_options(request).session_ttl_seconds
        )
    except BadSignature:
        return None
    return session_id if isinstance(session_id, str) else None


async def current(request: Request) -> Browser | None:
    """The browser the session cookie names, while its session lives; else None."""
    session_id = _cookie_session(request)
    if session_id is None:
        return None
    state = app_state(request)
    async with state.db.session() as session:
        row = await console_sessions.live_session(session, session_id)
    if row is None:
        return None
    token = csrf.token_for(state.secret_key, "session", session_id)
    return Browser(session_id, row.organization_id, row.api_key_id, token)


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a console path of this server, never another site."""
    if not target or "\\" in target or not target.startswith(HOME):
        return HOME
    if target == HOME or target[len(HOME)] in "/?":  # not /console.example.org
        return target
    return HOME


Handler = Callable[[Request, Browser], Awaitable[Response]]
F = TypeVar("F", bound=BaseModel)
FormHandler = Callable[[Request, Browser, F], Awaitable[Response]]


def signed_in(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """A page for signed-in browsers; any other is sent to the sign-in form, and back here
    after it."""

    @functools.wraps(handler)
    async def route(request: Request) -> Response:
        browser = await current(request)
        if browser is None:
            here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"{LOGIN}?{urlencode({'next': here})}", status_code=303)
        return await handler(request, browser)

    return route


def acting(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """A change (a POST) by a signed-in browser, with its session's CSRF token: 401 without
    a live session, 403 without the right token, before the handler runs."""

    async def with_form(request: Request, browser: Browser, _: ActionForm) -> Response:
        return await handler(request, browser)

    return functools.wraps(handler)(acting_with(ActionForm)(with_form))


def acting_with(
    model: type[F], limit: int | None = None
) -> Callable[[FormHandler[F]], Callable[[Request], Awaitable[Response]]]:
    """``acting`` for a form with fields of its own (``model``, which has ``csrf_token``):
    the handler gets the form too. ``limit`` is its size limit in bytes (the forms' own
    when None)."""

    def decorate(handler: FormHandler[F]) -> Callable[[Request], Awaitable[Response]]:
        @functools.wraps(handler)
        async def route(request: Request) -> Response:
            browser = await current(request)
            if browser is None:
                raise UnauthorizedError("not signed in to the console, or the session has ended")
            form = await read_form(request, model, limit or MAX_FORM_BYTES)
            csrf.check(request, getattr(form, "csrf_token", None), browser.csrf_token)
            return await handler(request, browser, form)

        return route

    return decorate


# --- the routes ------------------------------------------------------------------------


async def login_form(request: Request, error: str | None = None, status_code: int = 200
                     ) -> Response:  # fmt: skip
    """The sign-in form, with a fresh nonce cookie its CSRF token is bound to."""
    if error is None and await current(request) is not None:
        return RedirectResponse(safe_next(request.query_params.get("next")), status_code=303)
    nonce = secrets.token_urlsafe(16)
    context = {
        "csrf_token": csrf.token_for(app_state(request).secret_key, "login", nonce),
        "next": safe_next(request.query_params.get("next")),
        "error": error,
    }
    response = page(request, "login.html", context, status_code)
    signed = _serializer(request, LOGIN_SALT).dumps(nonce)
    _set_cookie(request, response, LOGIN_COOKIE, signed, LOGIN_FORM_TTL_SECONDS, path=LOGIN)
    return response


async def login(request: Request) -> Response:
    """Exchange a key for a session, in place of the one this browser had, if any. A
    wrong key shows the form again with the reason; nothing is stored then."""
    try:
        form = await read_form(request, LoginForm)
    except ValidationError as err:  # not a key at all: the form again, saying why
        return await login_form(request, err.message, err.status_code)
    state = app_state(request)
    try:
        nonce = _serializer(request, LOGIN_SALT).loads(
            request.cookies.get(LOGIN_COOKIE, ""), max_age=LOGIN_FORM_TTL_SECONDS
        )
    except BadSignature:
        nonce = ""
    csrf.check(request, form.csrf_token, csrf.token_for(state.secret_key, "login", str(nonce)))
    async with state.db.session() as session:
        key = await accounts.authenticate(session, form.api_key.strip(), revoked=True)
        if key is None:
            return await login_form(request, "Unknown API key.", 401)
        if key.revoked_at is not None:
            return await login_form(request, "This API key was revoked.", 403)
        if (previous := _cookie_session(request)) is not None:  # its cookie is replaced
            await console_sessions.close_session(session, previous)
        session_id = secrets.token_urlsafe(32)
        options = _options(request)
        await console_sessions.open_session(session, session_id, key, options.session_ttl_seconds)
    response = RedirectResponse(safe_next(request.query_params.get("next")), status_code=303)
    cookie = _serializer(request, SESSION_SALT).dumps(session_id)
    _set_cookie(request, response, COOKIE, cookie, options.session_ttl_seconds)
    response.delete_cookie(LOGIN_COOKIE, path=LOGIN)
    return response


@acting
async def logout(request: Request, browser: Browser) -> Response:
    """End the session on the server: the cookie, kept or copied, opens nothing again."""
    async with app_state(request).db.session() as session:
        await console_sessions.close_session(session, browser.session_id)
    response = RedirectResponse(LOGIN, status_code=303)
    response.delete_cookie(COOKIE, path=HOME)
    return response
