"""Service routes: liveness, readiness, the OpenAPI document."""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import JSONResponse

from api.errors import ServiceUnavailableError
from api.openapi import openapi_document
from api.requests import app_state


async def healthz(_request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> JSONResponse:
    state = app_state(request)
    try:
        await asyncio.wait_for(state.db.ping(), timeout=2)
    except Exception:
        raise ServiceUnavailableError("database unreachable") from None
    try:
        await asyncio.wait_for(state.temporal.service_client.check_health(), timeout=2)
    except Exception:
        raise ServiceUnavailableError("Temporal unreachable") from None
    return JSONResponse({"status": "ready", "database": "ok", "temporal": "ok"})


async def openapi(_request: Request) -> JSONResponse:
    return JSONResponse(openapi_document())
