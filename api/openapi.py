"""OpenAPI 3.1 document built from the pydantic models in ``api.schemas``.

Each operation names the models that validate its request and shape its responses; their
JSON schemas come straight from pydantic, so the document follows the code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from api.engine_schemas import CreateEngineRequest, EngineList, EngineOut, UpdateEngineRequest
from api.process_schemas import (
    EstimateOut,
    EstimateRequest,
    LocalizeOut,
    LocalizeRequest,
    RecognizeOut,
    RecognizeRequest,
)
from api.query_schemas import ListJobsQuery
from api.schemas import (
    CancelGroupRequest,
    CreateJobGroupRequest,
    ErrorOut,
    GroupTokenOut,
    GroupTokenRequest,
    JobGroupCreated,
    JobGroupOut,
    JobList,
    JobOut,
    UserOut,
    WhoamiOut,
)
from api.webhook_schemas import (
    DeliveryList,
    RedeliveryOut,
    WebhookSecretOut,
    WebhookSettingsOut,
    WebhookSettingsRequest,
)

REF = "#/components/schemas/{model}"
Auth = Literal["key", "stream", "link", "none"]


@dataclass
class Operation:
    """One route. ``responses`` holds its success answers and the errors only it gives;
    the statuses every route of its kind can answer are added by ``statuses`` (below)."""

    method: str
    path: str
    summary: str
    responses: dict[int, type[BaseModel] | None]
    request: type[BaseModel] | None = None
    body_required: bool = True
    query: type[BaseModel] | None = None
    params: list[dict[str, Any]] = field(default_factory=list)  # checked ones, beyond `query`
    auth: Auth = "key"  # X-API-Key; "stream": key or ?token=; "link": signed ?token=
    database: bool = True  # reads or writes the database (so 503 when it is unreachable)
    media: str = "application/json"  # of the success answers
    extra: dict[str, Any] = field(default_factory=dict)


def statuses(op: Operation) -> dict[int, type[BaseModel] | None]:
    """Every status the route can answer, from a few rules on top of its own:

    - any route: 500 (an unexpected error);
    - an API key: 401 (missing or unknown), 403 (revoked); a stream route also takes a read
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
LAST_EVENT_ID = [
    {
        "name": "Last-Event-ID",
        "in": "header",
        "required": False,
        "schema": {"type": "string"},
        "description": "resume after this event id (digits)",
    },
    {
        "name": "lastEventId",
        "in": "query",
        "required": False,
        "schema": {"type": "string"},
        "description": "as Last-Event-ID, for clients that cannot set headers",
    },
]
LINK = {
    "name": "token",
    "in": "query",
    "required": False,
    "schema": {"type": "string"},
    "description": "the signed token of a webhook event's dataUrl",
}

OPERATIONS = [
    Operation("post", "/jobs/localization", "Create a job group",
              {202: JobGroupCreated, 422: ErrorOut}, request=CreateJobGroupRequest),
    Operation("get", "/jobs/localization", "List jobs, newest first",
              {200: JobList}, query=ListJobsQuery),
    Operation("get", "/jobs/localization/groups/{groupId}", "Get a job group",
              {200: JobGroupOut}),
    Operation("post", "/jobs/localization/groups/{groupId}/cancel",
              "Cancel every job not yet terminal; finished jobs keep their results",
              {202: JobGroupOut, 409: ErrorOut},
              request=CancelGroupRequest, body_required=False),
    Operation("post", "/jobs/localization/groups/{groupId}/retry",
              "Run failed and cancelled jobs again (same job ids)",
              {202: JobGroupOut, 409: ErrorOut}),
    Operation("post", "/jobs/localization/groups/{groupId}/tokens",
              "A signed, expiring, read-only token for this group's progress streams",
              {201: GroupTokenOut}, request=GroupTokenRequest, body_required=False),
    Operation("get", "/jobs/localization/groups/{groupId}/events",
              "Server-Sent Events: the WebSocket's messages with id: sequence numbers; "
              "Last-Event-ID resumes. X-API-Key or ?token=",
              {200: None, 204: None}, params=LAST_EVENT_ID, auth="stream",
              media="text/event-stream", extra={"x-stream": "text/event-stream"}),
    Operation("get", "/jobs/localization/groups/{groupId}/ws",
              "WebSocket upgrade: snapshot, job.*, group.completed, then close 1000. "
              "X-API-Key or ?token=; a refused upgrade answers with an HTTP status",
              {101: None}, auth="stream", extra={"x-websocket": True}),
    Operation("get", "/jobs/localization/{jobId}", "Get a job with its output", {200: JobOut}),
    Operation("get", "/jobs/localization/{jobId}/deliveries",
              "Every webhook delivery attempt of this job, oldest first", {200: DeliveryList}),
    Operation("post", "/jobs/localization/{jobId}/redeliver",
              "Send the job's terminal event again: a new series of attempts, same webhook-id",
              {202: RedeliveryOut, 409: ErrorOut}),
    Operation("get", "/jobs/localization/{jobId}/output",
              "The job's output behind a webhook's dataUrl (signed, expiring ?token=)",
              {200: None}, auth="link"),
    Operation("get", "/engines", "The organization's engines, oldest first", {200: EngineList}),
    Operation("post", "/engines", "Create an engine (isDefault: true makes it the only default)",
              {201: EngineOut}, request=CreateEngineRequest),
    Operation("get", "/engines/{engineId}", "Get an engine", {200: EngineOut}),
    Operation("patch", "/engines/{engineId}",
              "Change an engine: only the fields given, none null; lists are replaced whole",
              {200: EngineOut, 409: ErrorOut}, request=UpdateEngineRequest),
    Operation("delete", "/engines/{engineId}",
              "Delete an engine (not the default, not while jobs use it)",
              {204: None, 409: ErrorOut}),
    Operation("get", "/users/me", "The calling key: id, contact email, organization",
              {200: UserOut}),
    Operation("post", "/whoami",
              "The calling key, as GET /users/me with keyId (the lingo.dev SDKs' identity "
              "call); any body is ignored", {200: WhoamiOut}),
    Operation("post", "/process/localize",
              "Localize one document into one locale, answered at once (sourceLocale null: "
              "detected); 502/503 when the translation provider fails",
              {200: LocalizeOut, 502: ErrorOut}, request=LocalizeRequest),
    Operation("post", "/process/recognize", "The language of a text (offline model)",
              {200: RecognizeOut}, request=RecognizeRequest),
    Operation("post", "/process/estimate",
              "Approximate tokens and cost per target locale and in total: the lingo.dev "
              "SDK's CostEstimate and our own figures",
              {200: EstimateOut}, request=EstimateRequest),
    Operation("get", "/webhooks/settings",
              "The organization's default webhook URL and signing secret",
              {200: WebhookSettingsOut}),
    Operation("put", "/webhooks/settings", "Set or clear the default webhook URL",
              {200: WebhookSettingsOut}, request=WebhookSettingsRequest),
    Operation("post", "/webhooks/secret/rotate",
              "A new signing secret; the previous one keeps signing for the overlap window",
              {200: WebhookSecretOut}),
    Operation("get", "/healthz", "Process is up", {200: None}, auth="none", database=False),
    Operation("get", "/readyz", "Temporal and the database are reachable", {200: None},
              auth="none"),
    Operation("get", "/openapi.json", "This document", {200: None}, auth="none",
              database=False),
    Operation("get", "/docs", "A readable reference page built from this document",
              {200: None}, auth="none", database=False, media="text/html"),
    Operation("get", "/metrics", "Prometheus metrics", {200: None}, auth="none",
              database=False, media="text/plain"),
]  # fmt: skip

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
    requests = {op.request for op in OPERATIONS if op.request}
    responses = {m for op in OPERATIONS for m in statuses(op).values() if m} - requests
    _, schema = models_json_schema(
        [(m, "validation") for m in sorted(requests, key=lambda m: m.__name__)]
        + [(m, "serialization") for m in sorted(responses, key=lambda m: m.__name__)],
        ref_template=REF,
    )
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
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
