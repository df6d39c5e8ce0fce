"""Helpers every route uses: the app state, authentication, bounded JSON bodies."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse

from api.errors import (
    ForbiddenError,
    PayloadTooLargeError,
    UnauthorizedError,
    ValidationError,
    from_pydantic,
)
from api.state import AppState
from store import queries
from store.models import ApiKey, Engine

M = TypeVar("M", bound=BaseModel)


def app_state(conn: HTTPConnection) -> AppState:
    state: AppState = conn.app.state.tolk
    return state


async def authenticate(conn: HTTPConnection, session: AsyncSession | None = None) -> ApiKey:
    """The caller's API key (``X-API-Key``): 401 when it is missing or unknown, 403 when it
    is a real key that was revoked. Looked up in ``session`` when the caller has one open
    already."""
    key = conn.headers.get("x-api-key")
    if not key:
        raise UnauthorizedError("missing X-API-Key header")
    if session is not None:
        row = await queries.authenticate(session, key, revoked=True)
    else:
        async with app_state(conn).db.session() as own:
            row = await queries.authenticate(own, key, revoked=True)
    if row is None:
        raise UnauthorizedError("unknown API key")
    if row.revoked_at is not None:
        raise ForbiddenError("this API key was revoked")
    return row


async def resolve_engine(state: AppState, organization_id: str, engine_id: str | None) -> Engine:
    """The engine a request names (``engineId``), or the organization's default; 400 when
    it names none of the organization's engines."""
    async with state.db.session() as session:
        if engine_id is None:
            engine = await queries.default_engine(session, organization_id)
            if engine is None:
                raise ValidationError("engineId: the organization has no default engine")
            return engine
        engine = await queries.get_engine(session, organization_id, engine_id)
    if engine is None:
        raise ValidationError(
            f"engineId: unknown engine '{engine_id}'",
            [{"path": "engineId", "message": "unknown engine"}],
        )
    return engine


async def read_body(request: Request, limit: int) -> bytes:
    """The raw body, refusing (413) anything over ``limit`` bytes before reading it all."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLargeError(f"request body exceeds the limit of {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLargeError(f"request body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except RecursionError:
        problem = "JSON nested too deeply"
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        problem = f"malformed JSON ({err})"
    raise ValidationError(f"body: {problem}", [{"path": "body", "message": problem}])


def validate(model: type[M], raw: Any, context: dict[str, Any] | None = None) -> M:
    if not isinstance(raw, dict):
        raise ValidationError(
            "body: expected a JSON object", [{"path": "body", "message": "expected a JSON object"}]
        )
    try:
        return model.model_validate(raw, context=context)
    except PydanticValidationError as err:
        raise from_pydantic(err) from None
    except RecursionError:
        raise ValidationError(
            "body: nested too deeply", [{"path": "body", "message": "nested too deeply"}]
        ) from None


def wire(model: Any, status_code: int = 200, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        model.model_dump(mode="json", by_alias=True), status_code=status_code, headers=headers
    )
