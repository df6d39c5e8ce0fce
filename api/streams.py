"""Live progress routes: WebSocket, Server-Sent Events, and the read tokens that open them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect

from api import tokens
from api.auth import api_key
from api.errors import (
    ApiError,
    NotFoundError,
    ValidationError,
    unexpected_error,
)
from api.jobs import wire
from api.progress.subscription import Subscriber, Subscription
from api.requests import app_state, parse_json, read_body, validate
from api.schemas import GroupTokenOut, GroupTokenRequest
from store import groups


async def create_token(request: Request) -> JSONResponse:
    key = api_key(request)
    group_id = request.path_params["groupId"]
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
    group_id = websocket.path_params["groupId"]
    # Checked (api/auth.py, before this runs) and subscribed before the upgrade is accepted,
    # so that every refusal is an HTTP status with a JSON body, as on REST routes and SSE.
    subscription = app_state(websocket).hub.subscribe(group_id)
    try:
        sub = await subscription.open()
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
        subscription.close()


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
    group_id = request.path_params["groupId"]
    after = _last_event_id(request)
    state = app_state(request)
    keepalive = state.settings.progress_ping_seconds
    subscription = state.hub.subscribe(group_id, after)
    try:
        sub = await subscription.open()
    except LookupError:  # removed since the check above (its workflow never started)
        raise NotFoundError("group", group_id) from None
    if sub.nothing_new:
        subscription.close()
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

    return _EventStream(events(), subscription)


class _EventStream(StreamingResponse):
    """An SSE response that ends its subscription however the response ends: finished,
    client gone, or cancelled before the stream's first chunk (when a generator that never
    started would not run its own ``finally``)."""

    def __init__(self, body: AsyncIterator[str], subscription: Subscription) -> None:
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
            self.subscription.close()
