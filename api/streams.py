"""Live progress routes: WebSocket, Server-Sent Events, and the read tokens that open them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime

from sqlalchemy.orm import Session
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect

from api import tokens
from api.errors import (
    ApiError,
    ForbiddenError,
    NotFoundError,
    UnauthorizedError,
    ValidationError,
    unexpected_error,
)
from api.jobs import wire
from api.progress import Subscriber
from api.requests import app_state, authenticate, parse_json, read_body, validate
from api.schemas import GroupTokenOut, GroupTokenRequest
from store import groups, progress_reads


async def authorize_stream(conn: HTTPConnection, group_id: str) -> str:
    """An API key (header) or a read token for this very group (``?token=``): 401 without
    either or for an unknown key, 403 for a revoked key. Returns the group id once checked
    (streams hold no database rows: they live for minutes, by the thousand). A group's
    owner is remembered (see api/access.py): a burst of subscribers to one group costs one
    API-key lookup each and one group lookup in all. Both lookups run at once on the
    database's reader thread, off the event loop that is busy with the other connections
    of such a burst."""
    state = app_state(conn)
    raw_token = conn.query_params.get("token")
    api_key = None if raw_token else conn.headers.get("x-api-key")
    if not raw_token and not api_key:
        raise UnauthorizedError("missing X-API-Key header")
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
    if owner != (token_org or key_org):  # unknown, or another organization's: the same 404
        raise NotFoundError("group", group_id)
    return group_id


async def create_token(request: Request) -> JSONResponse:
    key = await authenticate(request)
    group_id = request.path_params["group_id"]
    state = app_state(request)
    async with state.db.session() as session:
        if await groups.get_group(session, key.organization_id, group_id) is None:
            raise NotFoundError("group", group_id)
    body = await read_body(request, 64 * 1024)
    req = validate(GroupTokenRequest, parse_json(body)) if body.strip() else GroupTokenRequest()
    token = tokens.issue(state.secret_key, group_id, key.organization_id, req.ttl_seconds)
    return wire(
        GroupTokenOut(
            token=tokens.encode(state.secret_key, token),
            expires_at=datetime.fromtimestamp(token.expires_at, UTC),
        ),
        201,
    )


async def group_ws(websocket: WebSocket) -> None:
    group_id = websocket.path_params["group_id"]
    # Checked and subscribed before the upgrade is accepted, so that every refusal is an
    # HTTP status with a JSON body, as on REST routes and the SSE route.
    subscription = app_state(websocket).hub.subscribe(group_id)
    try:
        await authorize_stream(websocket, group_id)
        sub = await subscription.__aenter__()
    except Exception as err:
        if isinstance(err, LookupError):  # removed since the check (never started)
            err = NotFoundError("group", group_id)
        elif not isinstance(err, ApiError):  # e.g. the database unreachable
            err = unexpected_error(err, f"WebSocket {websocket.url.path}")
        await websocket.send_denial_response(err.response())
        return
    client_gone: asyncio.Task[None] | None = None
    try:
        await websocket.accept()
        client_gone = asyncio.create_task(_until_disconnect(websocket, sub))
        while (message := await sub.next()) is not None:
            await websocket.send_text(message.text)
        if client_gone.done():
            pass
        elif sub.aborted:  # the watch failed, the group has not finished: come back
            await websocket.close(code=1011, reason="progress temporarily unavailable")
        else:
            await websocket.close(code=1000)
    except (WebSocketDisconnect, RuntimeError, OSError):
        pass  # the client went away mid-send
    finally:
        if client_gone is not None:
            client_gone.cancel()
        await subscription.__aexit__(None, None, None)


async def _until_disconnect(websocket: WebSocket, sub: Subscriber) -> None:
    """Read (and ignore) client frames until the client disconnects, then end the
    subscriber's stream, so the sending loop stops waiting."""
    try:
        while (await websocket.receive())["type"] != "websocket.disconnect":
            pass
    finally:
        sub.put(None)


def _last_event_id(request: Request) -> int | None:
    raw = request.headers.get("last-event-id") or request.query_params.get("lastEventId")
    if raw is None or raw == "":
        return None
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 18):  # not "²", nor 5,000 digits
        raise ValidationError(
            "Last-Event-ID: must be an event id from this stream",
            [{"path": "Last-Event-ID", "message": "not a non-negative integer"}],
        )
    return int(raw)


async def group_events(request: Request) -> Response:
    group_id = request.path_params["group_id"]
    await authorize_stream(request, group_id)
    after = _last_event_id(request)
    state = app_state(request)
    keepalive = state.settings.progress_ping_seconds
    manager = state.hub.subscribe(group_id, after)
    try:
        sub = await manager.__aenter__()
    except LookupError:  # removed since the check above (its workflow never started)
        raise NotFoundError("group", group_id) from None
    if sub.nothing_new:
        await manager.__aexit__(None, None, None)
        return Response(status_code=204)  # tells EventSource to stop reconnecting

    async def events() -> AsyncIterator[str]:
        yield "retry: 1000\n\n"
        while True:
            try:
                message = await asyncio.wait_for(sub.next(), keepalive)
            except TimeoutError:
                yield ": keep-alive\n\n"
                continue
            if message is None:
                return
            yield f"id: {message.seq}\nevent: {message.type}\ndata: {message.text}\n\n"

    return _EventStream(events(), manager)


class _EventStream(StreamingResponse):
    """An SSE response that ends its subscription however the response ends: finished,
    client gone, or cancelled before the stream's first chunk (when a generator that never
    started would not run its own ``finally``)."""

    def __init__(
        self, body: AsyncIterator[str], subscription: AbstractAsyncContextManager[Subscriber]
    ) -> None:
        super().__init__(
            body,
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
        self.subscription = subscription

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self.subscription.__aexit__(None, None, None)
