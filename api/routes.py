"""The routing table: one declaration per route, and Starlette's routes made from it.

Each declaration says what the route does (method, path, handler), who may call it
(``auth``, enforced by ``api/auth.py`` before the handler runs) and what it takes and
answers (request and query models, responses), which is all ``api/openapi.py`` needs to
describe it. The app serves exactly these routes and the document lists exactly these, so
neither can have a route the other lacks.

Path parameters are spelled as the published document and ``API.md`` spell them
(``{groupId}``, ``{jobId}``, ``{engineId}``), in Starlette's paths too, so a handler reads
``request.path_params["groupId"]``: one spelling from the client to the handler.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from starlette.routing import BaseRoute, Route, WebSocketRoute

from api import (
    control,
    engines,
    jobs,
    metrics,
    process,
    reviews,
    service,
    streams,
    usage,
    webhooks,
)
from api.auth import Auth, guard
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
from api.review_schemas import ListReviewsQuery, ReviewList, ReviewRequest
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
from api.usage_schemas import UsageOut, UsageQuery
from api.webhook_schemas import (
    DeliveryList,
    RedeliveryOut,
    WebhookSecretOut,
    WebhookSettingsOut,
    WebhookSettingsRequest,
)


@dataclass
class Operation:
    """One route. ``responses`` holds its success answers and the errors only it gives;
    the statuses every route of its kind can answer are added by ``api.openapi.statuses``."""

    method: str
    path: str
    handler: Callable[..., Any]
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

    @property
    def websocket(self) -> bool:
        """A WebSocket upgrade (a GET in the document, marked ``x-websocket``)."""
        return bool(self.extra.get("x-websocket"))


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

# In matching order: the first route whose path matches answers.
ROUTES = [
    Operation("post", "/jobs/localization", jobs.create_group, "Create a job group",
              {202: JobGroupCreated, 422: ErrorOut}, request=CreateJobGroupRequest),
    Operation("get", "/jobs/localization", jobs.list_jobs, "List jobs, newest first",
              {200: JobList}, query=ListJobsQuery),
    Operation("get", "/jobs/localization/groups/{groupId}", jobs.get_group, "Get a job group",
              {200: JobGroupOut}),
    Operation("post", "/jobs/localization/groups/{groupId}/cancel", control.cancel_group,
              "Cancel every job not yet terminal; finished jobs keep their results",
              {202: JobGroupOut, 409: ErrorOut},
              request=CancelGroupRequest, body_required=False),
    Operation("post", "/jobs/localization/groups/{groupId}/retry", control.retry_group,
              "Run failed and cancelled jobs again (same job ids)",
              {202: JobGroupOut, 409: ErrorOut}),
    Operation("post", "/jobs/localization/groups/{groupId}/tokens", streams.create_token,
              "A signed, expiring, read-only token for this group's progress streams",
              {201: GroupTokenOut}, request=GroupTokenRequest, body_required=False),
    Operation("get", "/jobs/localization/groups/{groupId}/events", streams.group_events,
              "Server-Sent Events: the WebSocket's messages with id: sequence numbers; "
              "Last-Event-ID resumes. X-API-Key or ?token=",
              {200: None, 204: None}, params=LAST_EVENT_ID, auth="stream",
              media="text/event-stream", extra={"x-stream": "text/event-stream"}),
    Operation("get", "/jobs/localization/groups/{groupId}/ws", streams.group_ws,
              "WebSocket upgrade: snapshot, job.*, group.completed, then close 1000. "
              "X-API-Key or ?token=; a refused upgrade answers with an HTTP status",
              {101: None}, auth="stream", extra={"x-websocket": True}),
    Operation("get", "/jobs/localization/{jobId}", jobs.get_job, "Get a job with its output",
              {200: JobOut}),
    Operation("get", "/jobs/localization/{jobId}/deliveries", webhooks.list_deliveries,
              "Every webhook delivery attempt of this job, oldest first", {200: DeliveryList}),
    Operation("post", "/jobs/localization/{jobId}/redeliver", webhooks.redeliver,
              "Send the job's terminal event again: a new series of attempts, same webhook-id",
              {202: RedeliveryOut, 409: ErrorOut}),
    Operation("get", "/jobs/localization/{jobId}/output", webhooks.job_output,
              "The job's output behind a webhook's dataUrl (signed, expiring ?token=)",
              {200: None}, auth="link"),
    Operation("post", "/jobs/localization/{jobId}/review", reviews.review_job,
              "Approve (optionally with edited data) or reject (with a comment) a job "
              "awaiting review; data keeps the source's structure and every placeholder "
              "and tag (400 naming the keys)",
              {202: JobOut, 409: ErrorOut}, request=ReviewRequest),
    Operation("get", "/reviews", reviews.list_reviews,
              "Jobs awaiting human review, oldest first", {200: ReviewList},
              query=ListReviewsQuery),
    Operation("get", "/engines", engines.list_engines, "The organization's engines, oldest first",
              {200: EngineList}),
    Operation("post", "/engines", engines.create_engine,
              "Create an engine (isDefault: true makes it the only default)",
              {201: EngineOut}, request=CreateEngineRequest),
    Operation("get", "/engines/{engineId}", engines.get_engine, "Get an engine", {200: EngineOut}),
    Operation("patch", "/engines/{engineId}", engines.update_engine,
              "Change an engine: only the fields given, none null; lists are replaced whole",
              {200: EngineOut, 409: ErrorOut}, request=UpdateEngineRequest),
    Operation("delete", "/engines/{engineId}", engines.delete_engine,
              "Delete an engine (not the default, not while jobs use it)",
              {204: None, 409: ErrorOut}),
    Operation("get", "/users/me", engines.users_me,
              "The calling key: id, contact email, organization", {200: UserOut}),
    Operation("post", "/whoami", process.whoami,
              "The calling key, as GET /users/me with keyId (the lingo.dev SDKs' identity "
              "call); any body is ignored", {200: WhoamiOut}),
    Operation("post", "/process/localize", process.localize,
              "Localize one document into one locale, answered at once (sourceLocale null: "
              "detected); 502/503 when the translation provider fails",
              {200: LocalizeOut, 502: ErrorOut}, request=LocalizeRequest),
    Operation("post", "/process/recognize", process.recognize,
              "The language of a text (offline model)",
              {200: RecognizeOut}, request=RecognizeRequest),
    Operation("post", "/process/estimate", process.estimate,
              "Approximate tokens and cost per target locale and in total: the lingo.dev "
              "SDK's CostEstimate and our own figures",
              {200: EstimateOut}, request=EstimateRequest),
    Operation("get", "/usage", usage.get_usage,
              "What the organization's jobs and /process/localize calls used and spent "
              "(from/to: ISO dates, default this calendar month UTC; groupBy day, engine, "
              "targetLocale or model), its limits and what remains of its monthly budgets",
              {200: UsageOut}, query=UsageQuery),
    Operation("get", "/webhooks/settings", webhooks.get_settings,
              "The organization's default webhook URL and signing secret",
              {200: WebhookSettingsOut}),
    Operation("put", "/webhooks/settings", webhooks.put_settings,
              "Set or clear the default webhook URL",
              {200: WebhookSettingsOut}, request=WebhookSettingsRequest),
    Operation("post", "/webhooks/secret/rotate", webhooks.rotate_secret,
              "A new signing secret; the previous one keeps signing for the overlap window",
              {200: WebhookSecretOut}),
    Operation("get", "/healthz", service.healthz, "Process is up", {200: None}, auth="none",
              database=False),
    Operation("get", "/readyz", service.readyz, "Temporal and the database are reachable",
              {200: None}, auth="none"),
    Operation("get", "/openapi.json", service.openapi, "This document", {200: None}, auth="none",
              database=False),
    Operation("get", "/docs", service.docs, "A readable reference page built from this document",
              {200: None}, auth="none", database=False, media="text/html"),
    Operation("get", "/metrics", metrics.metrics, "Prometheus metrics", {200: None}, auth="none",
              database=False, media="text/plain"),
]  # fmt: skip


def starlette_routes(table: Sequence[Operation] = ROUTES) -> list[BaseRoute]:
    """Starlette's routes for the table, in its order, each behind the check its ``auth``
    names."""
    routes: list[BaseRoute] = []
    for op in table:
        if op.websocket:
            routes.append(WebSocketRoute(op.path, op.handler, middleware=guard(op.auth)))
        else:
            methods = [op.method.upper()]
            middleware = [*metrics.timers(op.method, op.path), *guard(op.auth)]
            routes.append(Route(op.path, op.handler, methods=methods, middleware=middleware))
    return routes
