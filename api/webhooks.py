"""Webhook routes: organization settings and secret rotation, a job's delivery log, manual
redelivery, and the signed link behind a large event's ``dataUrl``.

Delivery itself happens in the worker (``activities/webhooks.py``); these routes only read
what it recorded or start a redelivery (``starter.py``).
"""

from __future__ import annotations

from datetime import timedelta

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from temporalio.exceptions import WorkflowAlreadyStartedError

import contract
import starter
from api.auth import api_key, owned
from api.errors import (
    ConflictError,
    NotFoundError,
    ValidationError,
)
from api.requests import app_state, parse_json, read_body, validate, wire
from api.state import AppState
from api.webhook_schemas import (
    DeliveryList,
    DeliveryOut,
    RedeliveryOut,
    WebhookSecretOut,
    WebhookSettingsOut,
    WebhookSettingsRequest,
)
from store import deliveries, documents, groups, jobs
from store.tables import Job
from webhooks.signing import new_secret
from webhooks.urls import CallbackRefused, resolve_target

SETTINGS_BODY_LIMIT = 16 * 1024


async def check_callback(state: AppState, url: str, field: str) -> None:
    """Refuse (400) a URL whose host resolves anywhere webhooks may not go."""
    try:
        await resolve_target(url, state.callback_allow_list)
    except CallbackRefused as err:
        raise ValidationError(f"{field}: {err}", [{"path": field, "message": str(err)}]) from None


# --- settings ------------------------------------------------------------------------------


async def get_settings(request: Request) -> JSONResponse:
    key = api_key(request)
    async with app_state(request).db.writing() as session:  # creates the secret if needed
        config = await deliveries.webhook_config(session, key.organization_id, new_secret)
    return wire(WebhookSettingsOut(default_url=config.default_url, secret=config.secret))


async def put_settings(request: Request) -> JSONResponse:
    key = api_key(request)
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
    key = api_key(request)
    state = app_state(request)
    overlap = timedelta(seconds=state.settings.webhooks_secret_overlap_seconds)
    async with state.db.writing() as session:
        config = await deliveries.rotate_webhook_secret(
            session, key.organization_id, overlap, new_secret
        )
    return wire(WebhookSecretOut(secret=config.secret))


# --- a job's deliveries ----------------------------------------------------------------------


async def _job(request: Request) -> tuple[str, Job]:
    async with app_state(request).db.session() as session:
        job = await owned(request, session, "job", jobs.get_job)
    return job.organization_id, job


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
                    outcome=row.outcome,
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
    # The terminal event's rows only: a review request's event is never sent again here.
    terminal = (contract.TRANSLATION_COMPLETED, contract.TRANSLATION_FAILED)
    recorded = [(row.event_id, row.series) for row in rows if row.event_type in terminal]
    try:
        event_id, series = await starter.redeliver(state.temporal, state.settings, job.id, recorded)
    except WorkflowAlreadyStartedError:
        raise ConflictError("a redelivery of this job is already in progress") from None
    return wire(RedeliveryOut(job_id=job.id, event_id=event_id, series=series), 202)


# --- the dataUrl link ---------------------------------------------------------------------------


async def job_output(request: Request) -> Response:
    """The job's output, for whoever holds a valid link (no API key: the link is signed,
    and checked before this runs, api/auth.py)."""
    job_id = request.path_params["jobId"]
    async with app_state(request).db.session() as session:
        job = await session.get(Job, job_id)
        if job is None or job.status not in contract.SUCCEEDED or not job.output_ref:
            raise NotFoundError("job output", job_id)
        body = await documents.get_blob(session, job.organization_id, job.output_ref)
    return Response(
        body,
        media_type="application/json",
        headers={"cache-control": "private, no-store"},
    )
