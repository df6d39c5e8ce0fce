"""The app serves what its document lists, and each route asks for what the document says.

The review console (``api/console/``) is the one thing the app serves outside the document:
HTML pages for browsers under ``/console``, not API operations. ``served`` sets it aside
by name, and a test below says so.

No stack: the app is built as the API process builds it, without its lifespan, so it has no
database and no Temporal client. A route that checks credentials refuses a request without
them before it needs either; a public route answers without either, a key sent along or not.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.routing import Mount, Route, WebSocketRoute

from api.app import create_app
from api.console.routes import PREFIX as CONSOLE

# What the path parameters are filled with in the requests below (never looked up).
PATH_VALUES = {
    "groupId": "ljg_0000000000000000",
    "jobId": "ljb_0000000000000000",
    "engineId": "eng_0000000000000000",
}
Served = set[tuple[str, str, frozenset[str]]]


def console(route: object) -> bool:
    """The console's page at ``/console`` or its mount: outside the API's document."""
    return isinstance(route, Route | Mount) and route.path == CONSOLE


def served(app: Starlette) -> Served:
    """(method, path, path parameters) of every API route in the app's own routing table
    (the console's aside)."""
    found: Served = set()
    for route in app.routes:
        if console(route):
            continue
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


async def upgrade(app: Starlette, path: str) -> tuple[int, dict[str, Any]]:
    """The HTTP status and JSON body a refused WebSocket upgrade of ``path`` answers."""
    scope = {
        "type": "websocket",
        "asgi": {"version": "3.0"},
        "scheme": "ws",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [],
        "server": ("tolk.test", 80),
        "client": ("127.0.0.1", 50000),
        "subprotocols": [],
        "extensions": {"websocket.http.response": {}},
    }
    messages = [{"type": "websocket.connect"}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "websocket.disconnect", "code": 1000}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(dict(message))

    await app(scope, receive, send)
    kinds = [message["type"] for message in sent]
    assert kinds[0] == "websocket.http.response.start", kinds  # not an accept, not a close
    body = b"".join(m.get("body", b"") for m in sent if m["type"].endswith(".body"))
    return sent[0]["status"], httpx.Response(200, content=body).json()


async def test_the_app_serves_exactly_the_routes_its_document_lists() -> None:
    app = create_app()
    async with client(app) as http:
        document = (await http.get("/openapi.json")).json()
    routes, operations = served(app), documented(document)
    assert routes - operations == set(), "served but not in /openapi.json"
    assert operations - routes == set(), "in /openapi.json but not served"
    assert len(routes) >= 30  # the whole table, every method of it


async def test_the_console_is_served_beside_the_document_not_in_it() -> None:
    app = create_app()
    async with client(app) as http:
        document = (await http.get("/openapi.json")).json()
        page = await http.get(CONSOLE)  # no session: sent to sign in, no database asked
    aside = [route for route in app.routes if console(route)]
    assert [type(route) for route in aside] == [Route, Mount]  # /console, then /console/...
    assert not [path for path in document["paths"] if path.startswith(CONSOLE)]
    assert page.status_code == 303, page.text
    assert page.headers["location"] == f"{CONSOLE}/login?next=%2Fconsole"


async def test_each_route_asks_for_the_credentials_its_document_names() -> None:
    app = create_app()
    async with client(app) as http:
        document = (await http.get("/openapi.json")).json()
        for path, operations in document["paths"].items():
            url = path.format(**PATH_VALUES)
            for method, op in operations.items():
                where = f"{method.upper()} {path}"
                tokens = {p["name"] for p in op.get("parameters", []) if p["in"] == "query"}
                if op.get("x-websocket"):
                    status, body = await upgrade(app, url)
                elif "security" in op or "token" in tokens:
                    resp = await http.request(method, url)
                    status, body = resp.status_code, resp.json()
                else:  # public: answered without a database, even with a key sent along
                    resp = await http.request(method, url, headers={"X-API-Key": "tolk_nobody"})
                    needs_database = "503" in op["responses"]  # /readyz: it pings on purpose
                    assert needs_database or resp.status_code == 200, (where, resp.text)
                    continue
                assert (status, body["_tag"]) == (401, "UnauthorizedError"), (where, body)
                if "security" in op:
                    assert body["message"] == "missing X-API-Key header", (where, body)
                else:  # the output link
                    assert body["message"].startswith("missing token"), (where, body)
