"""OpenAPI 3.1 document built from the pydantic models in ``api.models``.

Each operation names the models that validate its request and shape its responses; their
JSON schemas come straight from pydantic, so the document follows the code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from api.models import (
    CancelGroupRequest,
    CreateEngineRequest,
    CreateJobGroupRequest,
    DeliveryList,
    EngineList,
    EngineOut,
    ErrorOut,
    EstimateOut,
    EstimateRequest,
    GroupTokenOut,
    GroupTokenRequest,
    JobGroupCreated,
    JobGroupOut,
    JobList,
    JobOut,
    ListJobsQuery,
    LocalizeOut,
    LocalizeRequest,
    RecognizeOut,
    RecognizeRequest,
    RedeliveryOut,
    UpdateEngineRequest,
    UserOut,
    WebhookSecretOut,
    WebhookSettingsOut,
    WebhookSettingsRequest,
)

REF = "#/components/schemas/{model}"
COMMON_ERRORS: dict[int, type[BaseModel] | None] = {401: ErrorOut, 404: ErrorOut}


@dataclass
class Operation:
    method: str
    path: str
    summary: str
    responses: dict[int, type[BaseModel] | None]
    request: type[BaseModel] | None = None
    body_required: bool = True
    query: type[BaseModel] | None = None
    public: bool = False  # no X-API-Key needed
    extra: dict[str, Any] = field(default_factory=dict)


OPERATIONS = [
    Operation("post", "/jobs/localization", "Create a job group",
              {202: JobGroupCreated, 400: ErrorOut, 401: ErrorOut, 413: ErrorOut,
               422: ErrorOut, 503: ErrorOut},
              request=CreateJobGroupRequest),
    Operation("get", "/jobs/localization", "List jobs, newest first",
              {200: JobList, 400: ErrorOut, 401: ErrorOut}, query=ListJobsQuery),
    Operation("get", "/jobs/localization/groups/{groupId}", "Get a job group",
              {200: JobGroupOut, **COMMON_ERRORS}),
    Operation("post", "/jobs/localization/groups/{groupId}/cancel",
              "Cancel every job not yet terminal; finished jobs keep their results",
              {202: JobGroupOut, **COMMON_ERRORS, 409: ErrorOut, 503: ErrorOut},
              request=CancelGroupRequest, body_required=False),
    Operation("post", "/jobs/localization/groups/{groupId}/retry",
              "Run failed and cancelled jobs again (same job ids)",
              {202: JobGroupOut, **COMMON_ERRORS, 409: ErrorOut, 503: ErrorOut}),
    Operation("post", "/jobs/localization/groups/{groupId}/tokens",
              "A signed, expiring, read-only token for this group's progress streams",
              {201: GroupTokenOut, 400: ErrorOut, **COMMON_ERRORS},
              request=GroupTokenRequest, body_required=False),
    Operation("get", "/jobs/localization/groups/{groupId}/events",
              "Server-Sent Events: the WebSocket's messages with id: sequence numbers; "
              "Last-Event-ID resumes. X-API-Key or ?token=",
              {200: None, 204: None, 400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut},
              extra={"x-stream": "text/event-stream"}),
    Operation("get", "/jobs/localization/groups/{groupId}/ws",
              "WebSocket upgrade: snapshot, job.*, group.completed, then close 1000. "
              "X-API-Key or ?token=; refused upgrades answer 401/403/404",
              {101: None, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut},
              extra={"x-websocket": True}),
    Operation("get", "/jobs/localization/{jobId}", "Get a job with its output",
              {200: JobOut, **COMMON_ERRORS}),
    Operation("get", "/jobs/localization/{jobId}/deliveries",
              "Every webhook delivery attempt of this job, oldest first",
              {200: DeliveryList, **COMMON_ERRORS}),
    Operation("post", "/jobs/localization/{jobId}/redeliver",
              "Send the job's terminal event again: a new series of attempts, same webhook-id",
              {202: RedeliveryOut, **COMMON_ERRORS, 409: ErrorOut}),
    Operation("get", "/jobs/localization/{jobId}/output",
              "The job's output behind a webhook's dataUrl (signed, expiring ?token=)",
              {200: None, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut, 410: ErrorOut},
              public=True),
    Operation("get", "/engines", "The organization's engines, oldest first",
              {200: EngineList, 401: ErrorOut}),
    Operation("post", "/engines", "Create an engine (isDefault: true makes it the only default)",
              {201: EngineOut, 400: ErrorOut, 401: ErrorOut, 413: ErrorOut},
              request=CreateEngineRequest),
    Operation("get", "/engines/{engineId}", "Get an engine", {200: EngineOut, **COMMON_ERRORS}),
    Operation("patch", "/engines/{engineId}", "Change an engine; lists are replaced whole",
              {200: EngineOut, 400: ErrorOut, **COMMON_ERRORS, 409: ErrorOut},
              request=UpdateEngineRequest),
    Operation("delete", "/engines/{engineId}",
              "Delete an engine (not the default, not while jobs use it)",
              {204: None, **COMMON_ERRORS, 409: ErrorOut}),
    Operation("get", "/users/me", "The calling key: id, contact email, organization",
              {200: UserOut, 401: ErrorOut}),
    Operation("post", "/process/localize",
              "Localize one document into one locale, answered at once (sourceLocale null: "
              "detected)",
              {200: LocalizeOut, 400: ErrorOut, 401: ErrorOut, 413: ErrorOut},
              request=LocalizeRequest),
    Operation("post", "/process/recognize", "The language of a text (offline model)",
              {200: RecognizeOut, 400: ErrorOut, 401: ErrorOut, 413: ErrorOut},
              request=RecognizeRequest),
    Operation("post", "/process/estimate",
              "Approximate tokens and cost per target locale, and in total",
              {200: EstimateOut, 400: ErrorOut, 401: ErrorOut, 413: ErrorOut},
              request=EstimateRequest),
    Operation("get", "/webhooks/settings",
              "The organization's default webhook URL and signing secret",
              {200: WebhookSettingsOut, 401: ErrorOut}),
    Operation("put", "/webhooks/settings", "Set or clear the default webhook URL",
              {200: WebhookSettingsOut, 400: ErrorOut, 401: ErrorOut},
              request=WebhookSettingsRequest),
    Operation("post", "/webhooks/secret/rotate",
              "A new signing secret; the previous one keeps signing for the overlap window",
              {200: WebhookSecretOut, 401: ErrorOut}),
    Operation("get", "/healthz", "Process is up", {200: None}, public=True),
    Operation("get", "/readyz", "Temporal and the database are reachable",
              {200: None, 503: ErrorOut}, public=True),
    Operation("get", "/openapi.json", "This document", {200: None}, public=True),
    Operation("get", "/docs", "A readable reference page built from this document",
              {200: None}, public=True),
    Operation("get", "/metrics", "Prometheus metrics", {200: None}, public=True),
]  # fmt: skip


def _json(model: type[BaseModel] | None) -> dict[str, Any]:
    schema = {"$ref": REF.format(model=model.__name__)} if model else {"type": "object"}
    return {"application/json": {"schema": schema}}


def _operation(op: Operation) -> dict[str, Any]:
    out: dict[str, Any] = {
        "summary": op.summary,
        "responses": {
            str(code): {"description": str(code), "content": _json(model)}
            for code, model in op.responses.items()
        },
        **op.extra,
    }
    params = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in re.findall(r"{(\w+)}", op.path)
    ]
    if op.query is not None:
        properties = op.query.model_json_schema()["properties"]
        params += [
            {"name": name, "in": "query", "required": False, "schema": schema}
            for name, schema in properties.items()
        ]
    if params:
        out["parameters"] = params
    if not op.public:
        out["security"] = [{"apiKey": []}]
    if op.request is not None:
        out["requestBody"] = {"required": op.body_required, "content": _json(op.request)}
    return out


@lru_cache(maxsize=1)
def openapi_document() -> dict[str, Any]:
    requests = {op.request for op in OPERATIONS if op.request}
    responses = {m for op in OPERATIONS for m in op.responses.values() if m} - requests
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
