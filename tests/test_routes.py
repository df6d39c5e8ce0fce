"""The app serves exactly the routes its document lists, with the same path parameters.

No stack: the app is built as the API process builds it, without its lifespan.
"""

from __future__ import annotations

from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.routing import Route, WebSocketRoute

from api.app import create_app

Served = set[tuple[str, str, frozenset[str]]]


def served(app: Starlette) -> Served:
    """(method, path, path parameters) of every route in the app's own routing table."""
    found: Served = set()
    for route in app.routes:
        assert isinstance(route, Route | WebSocketRoute), route
        if isinstance(route, WebSocketRoute):
            methods = {"GET"}  # an upgrade is a GET
        else:
            methods = (route.methods or set()) - {"HEAD"}  # HEAD comes with every GET
        for method in methods:
            found.add((method.lower(), route.path, frozenset(route.param_convertors)))
    return found


def documented(document: dict[str, Any]) -> Served:
    """(method, path, path parameters) of every operation the document lists."""
    return {
        (method, path, frozenset(p["name"] for p in op.get("parameters", []) if p["in"] == "path"))
        for path, operations in document["paths"].items()
        for method, op in operations.items()
    }


def client(app: Starlette) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://tolk.test")


async def test_the_app_serves_exactly_the_routes_its_document_lists() -> None:
    app = create_app()
    async with client(app) as http:
        document = (await http.get("/openapi.json")).json()
    routes, operations = served(app), documented(document)
    assert routes - operations == set(), "served but not in /openapi.json"
    assert operations - routes == set(), "in /openapi.json but not served"
    assert len(routes) >= 30  # the whole table, every method of it
