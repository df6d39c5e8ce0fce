"""Service routes: liveness, readiness, the OpenAPI document."""

from __future__ import annotations

import asyncio
import json
from html import escape
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse

from api.errors import ServiceUnavailableError
from api.requests import app_state


async def healthz(_request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> JSONResponse:
    """200 when the database and Temporal both answer within 2 s, else 503 naming what is
    missing (both checks run at once). The database counts as missing until this process
    has created its schema (see the lifespan in ``api/app.py``)."""
    state = app_state(request)

    async def database() -> None:
        schema = getattr(request.app.state, "database_schema", None)
        if schema is not None and not schema.done():
            raise LookupError("schema not created yet")
        await asyncio.wait_for(state.db.ping(), timeout=2)

    async def temporal() -> None:
        if not await asyncio.wait_for(state.temporal.service_client.check_health(), timeout=2):
            raise LookupError("not serving")

    checks = await asyncio.gather(database(), temporal(), return_exceptions=True)
    missing = [
        name
        for name, outcome in zip(("database", "Temporal"), checks, strict=True)
        if isinstance(outcome, BaseException)
    ]
    if missing:
        raise ServiceUnavailableError(f"{' and '.join(missing)} unreachable")
    return JSONResponse({"status": "ready", "database": "ok", "temporal": "ok"})


def openapi_document(request: Request) -> dict[str, Any]:
    """The app's own document, made by ``create_app`` from the routing table (which lists
    these very routes, so this module cannot import the table)."""
    document: dict[str, Any] = request.app.state.openapi
    return document


async def openapi(request: Request) -> JSONResponse:
    return JSONResponse(openapi_document(request))


async def docs(request: Request) -> HTMLResponse:
    """The reference as one self-contained page (no scripts, nothing fetched)."""
    document = openapi_document(request)
    rows = []
    for path, methods in document["paths"].items():
        for method, op in methods.items():
            request = op.get("requestBody", {}).get("content", {}).get("application/json", {})
            body = request.get("schema", {}).get("$ref", "").rsplit("/", 1)[-1]
            codes = ", ".join(op["responses"])
            auth = "X-API-Key" if op.get("security") else "none"
            rows.append(
                f"<tr><td><code>{method.upper()}</code></td><td><code>{escape(path)}</code></td>"
                f"<td>{escape(op['summary'])}</td><td>{escape(body)}</td>"
                f"<td>{codes}</td><td>{auth}</td></tr>"
            )
    schemas = "".join(
        f"<h3 id='{name}'>{name}</h3><pre>{escape(json.dumps(schema, indent=2))}</pre>"
        for name, schema in document["components"]["schemas"].items()
    )
    html = (
        "<!doctype html><meta charset='utf-8'><title>Tolk API</title>"
        "<style>body{font:15px/1.5 system-ui,sans-serif;margin:2em auto;max-width:70em}"
        "td,th{border-bottom:1px solid #ddd;padding:.3em .6em;text-align:left;vertical-align:top}"
        "pre{background:#f6f6f6;padding:.8em;overflow:auto}</style>"
        "<h1>Tolk API</h1><p>Machine-readable: <a href='/openapi.json'>/openapi.json</a>. "
        "Errors are JSON with <code>_tag</code> and <code>message</code>.</p>"
        "<table><tr><th>method</th><th>path</th><th>what</th><th>body</th><th>responses</th>"
        f"<th>auth</th></tr>{''.join(rows)}</table><h2>Schemas</h2>{schemas}"
    )
    return HTMLResponse(html)
