"""Who may call a route, settled before its handler runs, as the route declares it
(``auth`` in ``api/routes.py``): ``key``, ``stream``, ``link`` or ``none``.

Starlette's pieces are used as Starlette means them: each kind is an
``AuthenticationBackend`` whose ``AuthCredentials`` and user land in ``request.auth`` and
``request.user``, where a handler finds the caller (``api_key``). Starlette's
``AuthenticationMiddleware`` itself is not used, for three reasons:

- It runs for the whole app, before routing. Run per route instead (``guard``), a check
  knows its route: a public route (``/healthz``, ``/metrics``) looks nothing up even when a
  client sends a key along, an unknown path or method costs no lookup, and a token is
  checked against the id in the path it was issued for.
- It answers a refused WebSocket by closing it (code 1000). A refused upgrade here is an
  HTTP status with the same JSON body as on every other route (a denial response).
- A refusal here is one of our errors (``api/errors.py``: 401, 403, 410, each with its
  message), answered by the app's error handlers like any other; there is no anonymous
  user, so nothing like ``requires`` is left to check in the handler.

Which check sits where, and why:

- The API key is the caller's identity, the same on every route that takes one:
  ``KeyBackend`` resolves it in one hop to the database's reader thread
  (``Database.read``), which every keyed request makes.
- A group read token is a second way into one group's streams and nothing else. A stream
  connect has to know the group's owner anyway (another organization's group is a 404),
  and streams connect in bursts: ``StreamBackend`` takes the key or the token and reads the
  key and the owner together in one hop to the database's reader thread
  (``Database.read``), so the owner check is made here rather than in the handler.
- The request rate of the key's organization is counted here, once the key is known and
  before the handler runs (``api/quotas.py``): a route with a key is refused with 429 before
  it does anything, and its answer carries the ``RateLimit-*`` headers. A route that writes
  anyway (``POST /jobs/localization``, marked ``counted_in_its_write``) counts in its own
  write transaction instead, and here only when its handler raised before counting. Streams are not
  counted (long-lived, by the thousand; a read token names no key).
- The signed output link is no identity at all: it names one job and expires. It is
  verified against the path's job id without the database (``LinkBackend``); whether the
  job still has an output is the route's own business (a 404 from the handler).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Literal, TypeVar

from sqlalchemy.orm import Session
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.authentication import AuthCredentials, AuthenticationBackend, BaseUser
from starlette.middleware import Middleware
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket

from api import tokens
from api.errors import (
    ApiError,
    ForbiddenError,
    GoneError,
    NotFoundError,
    UnauthorizedError,
    unexpected_error,
)
from api.quotas import COUNT_SCOPE_KEY, COUNTED_IN_ITS_WRITE, RequestCount
from api.requests import app_state
from store import accept_reads, progress_reads
from store.tables import ApiKey
from webhooks.links import LinkExpired, LinkInvalid, verify_output_token

Auth = Literal["key", "stream", "link", "none"]
T = TypeVar("T")


class Caller(BaseUser):
    """Whoever passed a route's check, named by what they hold: a key, a group's read
    access, a job's output link."""

    def __init__(self, identity: str) -> None:
        self._identity = identity

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def display_name(self) -> str:
        return self._identity

    @property
    def identity(self) -> str:
        return self._identity


class KeyUser(Caller):
    """The holder of an API key: its row, for the organization and the key's own id."""

    def __init__(self, key: ApiKey) -> None:
        super().__init__(key.id)
        self.key = key


class GroupReader(Caller):
    """Whoever may read one group's progress: by a key of its organization or its token."""

    def __init__(self, group_id: str, organization_id: str) -> None:
        super().__init__(group_id)
        self.organization_id = organization_id


class LinkHolder(Caller):
    """Whoever holds a valid output link of one job (a webhook event's ``dataUrl``)."""


class KeyBackend(AuthenticationBackend):
    """``X-API-Key``: 401 when it is missing or unknown, 403 when it is a real key that was
    revoked."""

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, BaseUser]:
        raw = conn.headers.get("x-api-key")
        if not raw:
            raise UnauthorizedError("missing X-API-Key header")
        db = app_state(conn).db
        row = await db.read(functools.partial(accept_reads.api_key_row, key=raw))
        if row is None:
            raise UnauthorizedError("unknown API key")
        if row.revoked_at is not None:
            raise ForbiddenError("this API key was revoked")
        return AuthCredentials(["key"]), KeyUser(row)


class StreamBackend(AuthenticationBackend):
    """An API key (header) or a read token for this very group (``?token=``; a token
    given, the header is not looked at): 401 without either or for an unknown key, 403 for
    a revoked key, the token's errors as ``api/tokens.py`` says, 404 for a group that is
    unknown or another organization's.

    Streams hold no database rows: they live for minutes, by the thousand. A group's owner
    is remembered (see ``api/access.py``): a burst of subscribers to one group costs one
    API-key lookup each and one group lookup in all. Both lookups run at once on the
    database's reader thread, off the event loop that is busy with the other connections
    of such a burst."""

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, BaseUser]:
        group_id = conn.path_params["groupId"]
        raw_token = conn.query_params.get("token")
        api_key = None if raw_token else conn.headers.get("x-api-key")
        if not raw_token and not api_key:
            raise UnauthorizedError("missing X-API-Key header")
        state = app_state(conn)
        token_org = None
        if raw_token:
            token_org = tokens.verify(state.secret_key, raw_token, group_id).organization_id
        owner = state.group_owners.get(group_id)

        def lookup(session: Session) -> tuple[tuple[str, bool] | None, str | None]:
            key = progress_reads.key_organization(session, api_key) if api_key else None
            return key, owner or progress_reads.group_organization(session, group_id)

        key_org = None
        if api_key or owner is None:
            key, owner = await state.db.read(lookup)
            if api_key and key is None:
                raise UnauthorizedError("unknown API key")
            if key is not None:
                key_org, revoked = key
                if revoked:
                    raise ForbiddenError("this API key was revoked")
        if owner is not None:
            state.group_owners.remember(group_id, owner)
        if owner is None or owner != (token_org or key_org):  # unknown, or not theirs: one 404
            raise NotFoundError("group", group_id)
        return AuthCredentials(["stream"]), GroupReader(group_id, owner)


class LinkBackend(AuthenticationBackend):
    """The signed ``?token=`` of a webhook event's ``dataUrl``: 401 when it is missing, 403
    when it is not valid for this job, 410 when it has expired."""

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, BaseUser]:
        job_id = conn.path_params["jobId"]
        token = conn.query_params.get("token")
        if not token:
            raise UnauthorizedError("missing token: use the dataUrl of a webhook event")
        try:
            verify_output_token(app_state(conn).secret_key, token, job_id)
        except LinkExpired as err:
            raise GoneError(str(err)) from None
        except LinkInvalid as err:
            raise ForbiddenError(str(err)) from None
        return AuthCredentials(["link"]), LinkHolder(job_id)


BACKENDS: dict[Auth, AuthenticationBackend] = {
    "key": KeyBackend(),
    "stream": StreamBackend(),
    "link": LinkBackend(),
}


class Authenticate:
    """One route's check, between routing and the handler: the backend's credentials and
    user go into the scope (``request.auth``, ``request.user``), or the request is refused.

    Over HTTP a refusal is raised, and the app's error handlers answer it as they answer a
    handler's. A WebSocket is refused here, before its upgrade is accepted, with the
    status and JSON body the same refusal gets over HTTP, an unexpected error included
    (a database that is unreachable: 503)."""

    def __init__(self, app: ASGIApp, backend: AuthenticationBackend) -> None:
        self.app = app
        self.backend = backend

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        conn = HTTPConnection(scope)
        if scope["type"] == "websocket":
            try:
                found = await self.backend.authenticate(conn)
            except Exception as err:
                where = f"WebSocket {conn.url.path}"
                refusal = err if isinstance(err, ApiError) else unexpected_error(err, where)
                await WebSocket(scope, receive, send).send_denial_response(refusal.response())
                return
        else:
            found = await self.backend.authenticate(conn)
        assert found is not None  # our backends refuse rather than answer "nobody"
        scope["auth"], scope["user"] = found
        user = found[1]
        if not isinstance(user, KeyUser) or scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # Every keyed route counts against the organization's request rate (a refusal is
        # a 429 with Retry-After); the answer carries the RateLimit-* headers. Here, before
        # the handler, unless the route counts in its own write transaction: then here only
        # when the handler answers or raises without having counted (an error, a replay),
        # before anything of that answer is sent, so that an over-limit request is the 429
        # whatever else it would have been, as when it is counted first.
        state = app_state(conn)
        count = RequestCount(state.db, state.quota_limits, user.key.organization_id)

        async def with_rate_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                await count.alone()  # a no-op when counted; RateLimitError when over
                if count.headers:  # unless the answer has them (a 429 of the count's own)
                    headers = list(message.get("headers", []))
                    present = {name.lower() for name, _ in headers}
                    extra = [(k.lower().encode(), v.encode()) for k, v in count.headers.items()]
                    extra = [(k, v) for k, v in extra if k not in present]
                    message = {**message, "headers": [*headers, *extra]}
            await send(message)

        if not getattr(scope.get("endpoint"), COUNTED_IN_ITS_WRITE, False):
            await count.alone()
            await self.app(scope, receive, with_rate_headers)
            return
        scope[COUNT_SCOPE_KEY] = count
        await count.resolve()
        try:
            await self.app(scope, receive, with_rate_headers)
        except Exception:
            await count.alone()  # an error no handler answered (a 500): counted too
            raise


def guard(auth: Auth) -> list[Middleware]:
    """The middleware that enforces ``auth`` on a route: none for a public one."""
    if auth == "none":
        return []
    return [Middleware(Authenticate, backend=BACKENDS[auth])]


def api_key(conn: HTTPConnection) -> ApiKey:
    """The caller's API key, resolved by ``KeyBackend`` before the handler ran."""
    user = conn.user
    assert isinstance(user, KeyUser), "the route is not declared with auth='key'"
    return user.key


async def owned(
    conn: HTTPConnection,
    session: AsyncSession,
    entity: str,
    get: Callable[[AsyncSession, str, str], Awaitable[T | None]],
) -> T:
    """The caller's own row that the path names (``{entity}Id``), read with ``get`` in
    ``session``: 404 when the caller's organization has none by that id. Another
    organization's row is the same 404, so ids reveal nothing across organizations."""
    row_id = conn.path_params[f"{entity}Id"]
    row = await get(session, api_key(conn).organization_id, row_id)
    if row is None:
        raise NotFoundError(entity, row_id)
    return row
