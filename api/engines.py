"""Engines: an organization's translation configuration (model chains per locale pair,
glossary, brand voices, instructions, the default pipeline of its jobs), and
``GET /users/me``.

An engine with no ``models`` uses the built-in ``pseudo`` provider for every pair. An engine
with models uses only them: a pair that no entry matches fails its jobs with a clear error
rather than silently falling back to something else.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic.alias_generators import to_camel
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from api.auth import api_key, owned
from api.engine_schemas import CreateEngineRequest, EngineList, EngineOut, UpdateEngineRequest
from api.errors import ConflictError
from api.pipeline import refuse_unbuilt_stages, stored_stages
from api.requests import app_state, parse_json, read_body, validate, wire
from api.schemas import UserOut
from localization.engine_plan import fallback_provider
from store import engines
from store.ids import new_id
from store.tables import Engine

BODY_LIMIT = 2 * 1024 * 1024
CONFIG_FIELDS = ("models", "glossary", "brand_voices", "instructions", "pipeline")


def engine_out(engine: Engine) -> EngineOut:
    """The engine as the API shows it. A list stored as null (by a PATCH from before nulls
    were refused) reads as empty, so one such row cannot break a whole listing."""
    config = engine.config or {}
    return EngineOut.model_validate(
        {
            "id": engine.id,
            "name": engine.name,
            "description": engine.description or "",
            "isDefault": engine.is_default,
            "models": config.get("models") or [],
            "glossary": config.get("glossary") or [],
            "brandVoices": config.get("brandVoices") or [],
            "instructions": config.get("instructions") or [],
            "pipeline": config.get("pipeline") or {},
            "createdAt": engine.created_at,
        }
    )


def _apply(engine: Engine, fields: dict[str, Any]) -> None:
    """Copy validated fields (snake_case keys, wire-shaped values) onto the row."""
    if "name" in fields:
        engine.name = fields["name"]
    if "description" in fields:
        engine.description = fields["description"]
    # Lists stored as null by a PATCH from before nulls were refused go: the row heals.
    config = {key: value for key, value in (engine.config or {}).items() if value is not None}
    for key in CONFIG_FIELDS:
        if key in fields:
            config[to_camel(key)] = fields[key]
    engine.config = config
    engine.provider = fallback_provider(config.get("models") or [])


def _fields(req: CreateEngineRequest | UpdateEngineRequest, names: Iterable[str]) -> dict[str, Any]:
    """Fields by snake_case name, values in wire form (camelCase inside the lists; the
    pipeline as stored, without null stages or fields)."""
    dumped = req.model_dump(mode="json", by_alias=True)
    fields = {name: dumped[to_camel(name)] for name in names}
    if "pipeline" in fields:
        fields["pipeline"] = stored_stages(req.pipeline)
    return fields


async def _engine(request: Request) -> Engine:
    async with app_state(request).db.session() as session:
        return await owned(request, session, "engine", engines.get_engine)


async def list_engines(request: Request) -> JSONResponse:
    key = api_key(request)
    async with app_state(request).db.session() as session:
        rows = await engines.list_engines(session, key.organization_id)
    return wire(EngineList(items=[engine_out(e) for e in rows]))


async def get_engine(request: Request) -> JSONResponse:
    engine = await _engine(request)
    return wire(engine_out(engine))


async def create_engine(request: Request) -> JSONResponse:
    key = api_key(request)
    state = app_state(request)
    req = validate(CreateEngineRequest, parse_json(await read_body(request, BODY_LIMIT)))
    refuse_unbuilt_stages(stored_stages(req.pipeline), "pipeline")
    engine = Engine(id=new_id("eng_"), organization_id=key.organization_id, name=req.name)
    _apply(engine, _fields(req, CreateEngineRequest.model_fields))
    async with state.db.writing() as session:
        await engines.save_engine(session, engine, make_default=req.is_default)
    return wire(engine_out(engine), 201)


async def update_engine(request: Request) -> JSONResponse:
    engine = await _engine(request)
    state = app_state(request)
    req = validate(UpdateEngineRequest, parse_json(await read_body(request, BODY_LIMIT)))
    refuse_unbuilt_stages(stored_stages(req.pipeline), "pipeline")
    if req.is_default is False and engine.is_default:
        raise ConflictError(
            "an organization always has a default engine: make another engine the default"
        )
    _apply(engine, _fields(req, req.model_fields_set))
    async with state.db.writing() as session:
        await engines.save_engine(session, engine, make_default=bool(req.is_default))
    return wire(engine_out(engine))


async def delete_engine(request: Request) -> Response:
    engine = await _engine(request)
    state = app_state(request)
    if engine.is_default:
        raise ConflictError("the default engine cannot be deleted: make another the default")
    async with state.db.writing() as session:
        unfinished = await engines.unfinished_jobs_of_engine(session, engine.id)
        if unfinished:
            raise ConflictError(f"the engine is used by {unfinished} unfinished jobs")
        await engines.delete_engine(session, engine.id)
    return Response(status_code=204)


async def users_me(request: Request) -> JSONResponse:
    key = api_key(request)
    return wire(UserOut(id=key.id, email=key.email, organization_id=key.organization_id))
