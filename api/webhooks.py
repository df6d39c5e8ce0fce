"""Webhook routes: organization settings and secret rotation, a job's delivery log, manual
redelivery, and the signed link behind a large event's ``dataUrl``.

Delivery itself happens in the worker (``activities/webhooks.py``); these routes only read
what it recorded or start a redelivery workflow.
"""

from __future__ import annotations

from datetime import timedelta

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

import contract
from api.errors import (
    ConflictError,
    ForbiddenError,
    GoneError,
    NotFoundError,
    UnauthorizedError,
    ValidationError,
)
from api.requests import app_state, authenticate, parse_json, read_body, validate, wire
from api.schemas import (
    DeliveryList,
    DeliveryOut,
    RedeliveryOut,
    WebhookSecretOut,
    WebhookSettingsOut,
    WebhookSettingsRequest,
)
from api.state import AppState
from starter import webhook_options
from store import deliveries, documents, groups, jobs
from store.tables import Job
from webhooks.links import LinkExpired, LinkInvalid, verify_output_token
from webhooks.signing import new_event_id, new_secret
from webhooks.urls import CallbackRefused, resolve_target
from workflows.locale_job import webhook_event_id
from workflows.messages import DeliverWebhookInput
from workflows.webhooks import WebhookRedeliveryWorkflow

SETTINGS_BODY_LIMIT = 16 * 1024


async def check_callback(state: AppState, url: str, field: str) -> None:
    """Refuse (400) a URL whose host resolves anywhere webhooks may not go."""
    try:
        await resolve_target(url, state.callback_allow_list)
    except CallbackRefused as err:
        raise ValidationError(f"{field}: {err}", [{"path": field, "message": str(err)}]) from None


# --- settings ------------------------------------------------------------------------------


async def get_settings(request: Request) -> JSONResponse:
    key = await authenticate(request)
    async with app_state(request).db.writing() as session:  # creates the secret if needed
        config = await deliveries.webhook_config(session, key.organization_id, new_secret)
    return wire(WebhookSettingsOut(default_url=config.default_url, secret=config.secret))


async def put_settings(request: Request) -> JSONResponse:
    key = await authenticate(request)
    state = app_state(request)
    body = await read_body(request, SETTINGS_BODY_LIMIT)
    req = validate(WebhookSettingsRequest, parse_json(body))
    if req.default_url is not None:
        await check_callback(state, req.default_url, "defaultUrl")
    async with state.db.writing() as session:
        config = await deliveries.set_default_webhook_url(
            session, key.organization_id, req.default_url, new_secret
        )
    return wire(WebhookSettingsOut(default_url=config.default_url, secret=config.secret))


async def rotate_secret(request: Request) -> JSONResponse:
    key = await authenticate(request)
    state = app_state(request)
    overlap = timedelta(seconds=state.settings.webhooks_secret_overlap_seconds)
    async with state.db.writing() as session:
        config = await deliveries.rotate_webhook_secret(
            session, key.organization_id, overlap, new_secret
        )
    return wire(WebhookSecretOut(secret=config.secret))


# --- a job's deliveries ----------------------------------------------------------------------


async def _job(request: Request) -> tuple[str, Job]:
    key = await authenticate(request)
    job_id = request.path_params["job_id"]
    async with app_state(request).db.session() as session:
        job = await jobs.get_job(session, key.organization_id, job_id)
    if job is None:
        raise NotFoundError("job", job_id)
    return key.organization_id, job


async def list_deliveries(request: Request) -> JSONResponse:
    org_id, job = await _job(request)
    async with app_state(request).db.session() as session:
        rows = await deliveries.job_deliveries(session, org_id, job.id)
    return wire(
        DeliveryList(
            items=[
                DeliveryOut(
                    event_id=row.event_id,
                    type=row.event_type,
                    url=row.url,
                    series=row.series,
                    attempt=row.attempt,
                    outcome=row.outcome,  # type: ignore[arg-type]
                    status_code=row.status_code,
                    error=row.error,
                    duration_ms=row.duration_ms,
                    next_attempt_at=row.next_attempt_at,
                    created_at=row.created_at,
                )
                for row in rows
            ]
        )
    )


async def _event_id(state: AppState, job: Job, last_recorded: str | None) -> str:
    """The ``webhook-id`` of the job's terminal event: the one its latest workflow run
    sends (workflows/locale_job.py), whether or not an attempt is recorded yet, and after
    a retry the new run's, not the failure event's before it. When the job's workflow is
    gone (retention), the last recorded event's."""
    try:
        run = await state.temporal.get_workflow_handle(job.id).describe()
    except RPCError as err:
        if err.status != RPCStatusCode.NOT_FOUND:
            raise
        return last_recorded or new_event_id()
    return webhook_event_id(job.id, run.run_id)


async def redeliver(request: Request) -> JSONResponse:
    """The job's terminal event again: a new series of attempts, the same ``webhook-id``."""
    org_id, job = await _job(request)
    state = app_state(request)
    if job.status not in contract.SUCCEEDED | {contract.FAILED}:
        raise ConflictError(f"the job is {job.status}: only completed or failed jobs have an event")
    async with state.db.writing() as session:
        group = await groups.get_group(session, org_id, job.group_id)
        config = await deliveries.webhook_config(session, org_id, new_secret)
        rows = await deliveries.job_deliveries(session, org_id, job.id)
    if (group.callback_url if group else None) is None and config.default_url is None:
        raise ConflictError("no callbackUrl on the group and no default webhook URL to send to")
    event_id = await _event_id(state, job, rows[-1].event_id if rows else None)
    series = max((row.series for row in rows if row.event_id == event_id), default=0) + 1
    s = state.settings
    delivery = DeliverWebhookInput(
        job_id=job.id,
        event_id=event_id,
        series=series,
        options=webhook_options(s),
    )
    try:
        await state.temporal.start_workflow(
            WebhookRedeliveryWorkflow.run,
            delivery,
            id=f"{job.id}-redeliver",
            task_queue=s.worker_task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            static_summary=f"redeliver {event_id} (series {series})",
        )
    except WorkflowAlreadyStartedError:
        raise ConflictError("a redelivery of this job is already in progress") from None
    return wire(RedeliveryOut(job_id=job.id, event_id=event_id, series=series), 202)


# --- the dataUrl link ---------------------------------------------------------------------------


async def job_output(request: Request) -> Response:
    """The job's output, for whoever holds a valid link (no API key: the link is signed)."""
    job_id = request.path_params["job_id"]
    token = request.query_params.get("token")
    if not token:
        raise UnauthorizedError("missing token: use the dataUrl of a webhook event")
    state = app_state(request)
    try:
        verify_output_token(state.secret_key, token, job_id)
    except LinkExpired as err:
        raise GoneError(str(err)) from None
    except LinkInvalid as err:
        raise ForbiddenError(str(err)) from None
    async with state.db.session() as session:
        job = await session.get(Job, job_id)
        if job is None or job.status not in contract.SUCCEEDED or not job.output_ref:
            raise NotFoundError("job output", job_id)
        body = await documents.get_blob(session, job.organization_id, job.output_ref)
    return Response(
        body,
        media_type="application/json",
        headers={"cache-control": "private, no-store"},
    )
