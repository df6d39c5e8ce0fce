"""OpenAPI 3.1 document built from the routing table (``api/routes.py``) and the pydantic
models in ``api.schemas``.

Each route names the models that validate its request and shape its responses; their
JSON schemas come straight from pydantic, and its ``auth`` says which credentials it takes
(``security``, a ``token`` parameter), the very marker that enforces them, so the document
follows the code.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from api.routes import ROUTES, Operation
from api.schemas import ErrorOut

REF = "#/components/schemas/{model}"


def statuses(op: Operation) -> dict[int, type[BaseModel] | None]:
    """Every status the route can answer, from a few rules on top of its own:

    - any route: 500 (an unexpected error);
    - an API key: 401 (missing or unknown), 403 (revoked), 429 (over the organization's
      request rate, ``api/quotas.py``); a stream route (not rate limited) also takes a read
      token (401 invalid or expired, 403 another group's); a signed link: 401 missing, 403
      not valid for this job, 410 expired;
    - a request body: 400 (malformed, invalid) and 413 (over the size limit);
    - query or header parameters: 400;
    - an id in the path: 404 (unknown, or another organization's);
    - the database (every route with a key, and public ones marked so): 503, with
      ``Retry-After``, when it (or Temporal) is unreachable."""
    found = dict(op.responses)
    rules: list[tuple[bool, tuple[int, ...]]] = [
        (op.auth in ("key", "stream"), (401, 403)),
        (op.auth == "key", (429,)),
        (op.auth == "link", (401, 403, 410)),
        (op.request is not None, (400, 413)),
        (op.query is not None or bool(op.params), (400,)),  # ?token= is no such parameter
        ("{" in op.path, (404,)),
        (op.database, (503,)),
        (True, (500,)),
    ]
    for applies, codes in rules:
        if applies:
            for code in codes:
                found.setdefault(code, ErrorOut)
    return dict(sorted(found.items()))


TOKEN = {
    "name": "token",
    "in": "query",
    "required": False,
    "schema": {"type": "string"},
    "description": "a group read token, instead of X-API-Key",
}
LINK = {
    "name": "token",
    "in": "query",
    "required": False,
    "schema": {"type": "string"},
    "description": "the signed token of a webhook event's dataUrl",
}

NO_CONTENT = {101, 204}


def _content(op: Operation, code: int, model: type[BaseModel] | None) -> dict[str, Any] | None:
    if code in NO_CONTENT:
        return None
    if model is not None:
        return {"application/json": {"schema": {"$ref": REF.format(model=model.__name__)}}}
    if op.media == "application/json" or code >= 400:
        return {"application/json": {"schema": {"type": "object"}}}
    return {op.media: {"schema": {"type": "string"}}}


def _query_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A query parameter's schema without its null alternative: a query string has no null
    (an omitted parameter is the default)."""
    options = [s for s in schema.get("anyOf", []) if s.get("type") != "null"]
    if len(options) == 1:
        rest = {k: v for k, v in schema.items() if k not in ("anyOf", "default")}
        return {**rest, **options[0]}
    return schema


def _operation(op: Operation) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    for code, model in statuses(op).items():
        response: dict[str, Any] = {"description": str(code)}
        content = _content(op, code, model)
        if content is not None:
            response["content"] = content
        responses[str(code)] = response
    out: dict[str, Any] = {"summary": op.summary, "responses": responses, **op.extra}
    params = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in re.findall(r"{(\w+)}", op.path)
    ]
    if op.query is not None:
        properties = op.query.model_json_schema(by_alias=True)["properties"]
        params += [
            {"name": name, "in": "query", "required": False, "schema": _query_schema(schema)}
            for name, schema in properties.items()
        ]
    params += op.params
    params += {"stream": [TOKEN], "link": [LINK]}.get(op.auth, [])
    if params:
        out["parameters"] = params
    if op.auth in ("key", "stream"):
        out["security"] = [{"apiKey": []}]
    if op.request is not None:
        out["requestBody"] = {"required": op.body_required, "content": _content(op, 0, op.request)}
    return out


@lru_cache(maxsize=1)
def openapi_document() -> dict[str, Any]:
    requests = {op.request for op in ROUTES if op.request}
    responses = {m for op in ROUTES for m in statuses(op).values() if m} - requests
    _, schema = models_json_schema(
        [(m, "validation") for m in sorted(requests, key=lambda m: m.__name__)]
        + [(m, "serialization") for m in sorted(responses, key=lambda m: m.__name__)],
        ref_template=REF,
    )
    paths: dict[str, dict[str, Any]] = {}
    for op in ROUTES:
        paths.setdefault(op.path, {})[op.method] = _operation(op)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Tolk",
            "version": "0.1.0",
            "description": "Durable async localization on Temporal.",
        },
        "paths": paths,
        "components": {
            "schemas": schema.get("$defs", {}),
            "securitySchemes": {"apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"}},
        },
    }
