"""Async job routes: create a group, read groups and jobs, list jobs.

The path of one request: ``create_group`` validates the body, stores the group, its jobs and
its source document in one transaction, starts ``GroupWorkflow`` (id = group id) and answers
202. Everything after that happens in ``workflows/`` and ``activities/``.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import logging
import time
from datetime import datetime
from typing import Any, cast

from starlette.requests import Request
from starlette.responses import JSONResponse

import contract
import starter
from api.auth import api_key, owned
from api.errors import (
    IdempotencyKeyReusedError,
    ServiceUnavailableError,
    ValidationError,
)
from api.pipeline import refuse_unbuilt_stages, stored_stages
from api.process import estimated_cost
from api.query_schemas import ListJobsQuery
from api.quotas import counted_in_its_write, refuse_over_active_groups, request_count
from api.requests import (
    app_state,
    found_engine,
    parse_json,
    read_body,
    validate,
    wire,
)
from api.schemas import (
    CreateJobGroupRequest,
    GroupStatus,
    JobGroupCreated,
    JobGroupOut,
    JobList,
    JobListItem,
    JobOut,
    JobSummary,
    JobWarning,
    Step,
)
from api.spending import refuse_when_budget_spent
from api.webhooks import check_callback
from settings import quota_defaults
from store import accept_reads, documents, groups, jobs, rate_limits
from store.ids import derived_id, new_id
from store.quotas import effective_limits
from store.tables import GroupSpendLimit, Job, JobGroup, utcnow

log = logging.getLogger("tolk.api")


# --- create ------------------------------------------------------------------------------


@counted_in_its_write
async def create_group(request: Request) -> JSONResponse:
    key = api_key(request)
    state = app_state(request)
    org_id = key.organization_id
    body = await read_body(request, state.settings.limits_max_body_bytes)
    req = validate(CreateJobGroupRequest, parse_json(body), {"limits": state.limits})
    if req.idempotency_key is not None:
        group_id = derived_id("ljg_", state.secret_key, org_id, req.idempotency_key)
    else:
        group_id = new_id("ljg_")
    # Everything the checks read, in one hop (store/accept_reads.py): the engine, a group
    # of this idempotency key, the organization's own limits and its active groups.
    defaults = quota_defaults(state.settings)
    reads = await state.db.read(
        functools.partial(
            accept_reads.admission,
            organization_id=org_id,
            engine_id=req.engine_id,
            group_id=group_id if req.idempotency_key is not None else None,
            defaults=defaults,
            rate_window=rate_limits.window_of(time.time()),
        )
    )
    engine = found_engine(reads.engine, req.engine_id)
    # What the jobs will run, fixed now: a later change of the engine leaves the group be.
    requested = stored_stages(req.pipeline_config)
    pipeline = contract.effective_pipeline((engine.config or {}).get("pipeline"), requested)
    refuse_unbuilt_stages(pipeline, "pipelineConfig")
    if req.callback_url is not None:
        await check_callback(state, req.callback_url, "callbackUrl")

    # The body as validated, for the idempotency check: the request's pipelineConfig, not
    # the effective pipeline, so a replay of the same body after the engine changed is still
    # a replay. It is in the body only when it names a stage, so bodies without one hash as
    # they did before the field existed.
    normalised = req.model_dump(
        mode="json", by_alias=True, exclude={"pipeline_config", "max_cost_usd"}
    )
    if requested:
        normalised["pipelineConfig"] = requested
    if req.max_cost_usd is not None:  # likewise: bodies without it hash as before
        normalised["maxCostUsd"] = req.max_cost_usd
    fingerprint = hashlib.sha256(
        json.dumps(normalised, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()
    # Every column given, defaults too: a default_factory left to the model costs
    # pydantic an ``inspect.signature`` of ``list``/``dict`` per field and row, which was
    # the largest CPU share of building these rows.
    now = utcnow()
    group = JobGroup(
        id=group_id,
        organization_id=org_id,
        engine_id=engine.id,
        source_locale=req.source_locale,
        target_locales=req.target_locales,
        source_ref=hashlib.sha256(document := documents.encode_document(req.data)).hexdigest(),
        context=req.context,
        hints=req.hints,
        locked_keys=req.locked_keys,
        callback_url=req.callback_url,
        idempotency_key=req.idempotency_key,
        fingerprint=fingerprint,
        pipeline=pipeline,
        event_log=[],
        created_at=now,
    )
    estimate = estimated_cost(state, engine, req.source_locale, req.target_locales, req.data)
    fuse = GroupSpendLimit(
        group_id=group_id,
        max_cost_usd=req.max_cost_usd,
        estimated_cost_usd=estimate,
        created_at=now,
    )
    jobs = [
        Job(
            # Derived, never random: whoever starts the group's workflow (this request, a
            # replay of it, the reconciler) gives it the very job ids of these rows.
            id=derived_id("ljb_", state.secret_key, group_id, locale),
            group_id=group_id,
            organization_id=org_id,
            engine_id=engine.id,
            source_locale=req.source_locale,
            target_locale=locale,
            warnings=[],
            steps=[],
            usage={},
            created_at=now,
        )
        for locale in req.target_locales
    ]
    # A new group counts against the organization's active groups; a replay does not
    # (``reads`` counted none for it). Its limits as stored now, not as cached.
    replay = reads.existing is not None
    if not replay:
        refuse_over_active_groups(effective_limits(defaults, reads.own_limits), reads.active_groups)
    # While Temporal is known to be away a new group is not accepted (nothing is stored;
    # the client retries, with its idempotency key if any); a replay of an accepted one is.
    available = await state.temporal_health.available(state.temporal)
    if not replay:  # a replay of an accepted group is answered whatever was spent since
        await refuse_when_budget_spent(state, org_id, reads.own_limits)
    # The request's count against its rate goes in the transaction that stores the group
    # (rolled back with it when the group is not stored, and then made on its own).
    count = request_count(request)
    async with state.db.writing() as session:
        created = False
        if available:
            await count.within(session, reads.previous_requests)  # over: 429, nothing stored
            try:
                created = await groups.insert_group(session, group, jobs, document, [fuse])
            finally:
                if not created:
                    count.forget()
        if not created:  # same idempotency key: this group exists already (or is being made)
            existing = await groups.get_group(session, org_id, group_id)
            if existing is None:
                if not available:
                    raise ServiceUnavailableError("the workflow service is unreachable; retry")
                raise ServiceUnavailableError("group is being created; retry", retry_after=1)
            if existing.fingerprint != fingerprint:
                raise IdempotencyKeyReusedError(
                    "idempotencyKey was already used with a different request body"
                )
            group = existing
            jobs = await groups.group_jobs(session, group_id)

    await count.alone()  # a replay: counted on its own, before it starts anything

    # The group is accepted: its rows are committed (the outbox). Its workflow starts now;
    # if this start fails, or this process dies before it, the reconciler starts it a few
    # seconds later (activities/reconcile.py). Rows are never deleted here: a start that
    # timed out may well have happened.
    try:
        # A replay starts the workflow only of a group never seen started, as the first
        # request would have: not of one that ran (its execution may be gone after
        # retention, and starting again would redo finished work), nor of an old one.
        if created or starter.may_start_on_its_own(group, state.settings):
            await starter.start_group(state.temporal, state.settings, group, jobs)
    except Exception as err:
        state.temporal_health.failed()
        log.warning("start of %s failed (%s); the reconciler will start it", group_id, err)

    if not created:
        async with state.db.session() as session:
            jobs = await groups.group_jobs(session, group_id)
    out = JobGroupCreated(
        group_id=group.id,
        status=group_status(group, jobs),
        source_locale=group.source_locale,
        jobs=[job_summary(job) for job in jobs],
        created_at=group.created_at,
        estimated_cost_usd=estimate,
        max_cost_usd=req.max_cost_usd,
    )
    headers = {"Idempotent-Replayed": "true"} if not created else None
    return wire(out, 202, headers)


# --- read --------------------------------------------------------------------------------


def job_summary(job: Job) -> JobSummary:
    return JobSummary(id=job.id, target_locale=job.target_locale, status=job.status)


def group_status(group: JobGroup, jobs: list[Job]) -> GroupStatus:
    """Derived from the jobs; terminal only once the workflow has recorded it, so the REST
    view and the progress stream agree on when a group is finished."""
    derived = contract.group_status(job.status for job in jobs)
    if derived in contract.GROUP_TERMINAL and group.status not in contract.GROUP_TERMINAL:
        derived = contract.GROUP_PROCESSING
    return cast(GroupStatus, derived)


def group_out(group: JobGroup, jobs: list[Job]) -> JobGroupOut:
    counts = contract.counts(job.status for job in jobs)
    return JobGroupOut(
        group_id=group.id,
        status=group_status(group, jobs),
        source_locale=group.source_locale,
        engine_id=group.engine_id,
        total_jobs=counts["totalJobs"],
        completed_jobs=counts["completedJobs"],
        completed_with_warnings_jobs=counts["completedWithWarningsJobs"],
        failed_jobs=counts["failedJobs"],
        cancelled_jobs=counts["cancelledJobs"],
        awaiting_review_jobs=counts["awaitingReviewJobs"],
        jobs=[job_summary(job) for job in jobs],
        created_at=group.created_at,
        completed_at=group.completed_at if group.status in contract.GROUP_TERMINAL else None,
    )


def job_out(
    job: Job, output: dict[str, Any] | None = None, draft: dict[str, Any] | None = None
) -> JobOut:
    return JobOut(output_data=output, draft_data=draft, **job_item(job).model_dump())


def with_cost(usage: dict[str, Any], steps: list[dict[str, Any]]) -> dict[str, Any]:
    """The job's usage with ``costUsd``: what its steps cost at ``llm.prices`` (every stage
    that ran, every review round), left out when no step was priced. ``GET /usage`` counts
    from the spend ledger instead, failed attempts' answers included."""
    priced = [float(step["costUsd"]) for step in steps if step.get("costUsd") is not None]
    return {**usage, "costUsd": round(sum(priced), 6)} if priced else usage


def job_item(job: Job) -> JobListItem:
    return JobListItem(
        id=job.id,
        group_id=job.group_id,
        source_locale=job.source_locale,
        target_locale=job.target_locale,
        status=job.status,
        engine_id=job.engine_id,
        error=job.error,
        warnings=[JobWarning.model_validate(w) for w in job.warnings or []],
        steps=[Step.model_validate(step) for step in job.steps or []],
        usage=with_cost(job.usage or {}, job.steps or []),
        attempts=job.attempts,
        created_at=job.created_at,
        started_at=job.started_at,
        completed_at=job.completed_at,
    )


async def get_group(request: Request) -> JSONResponse:
    async with app_state(request).db.session() as session:
        group = await owned(request, session, "group", groups.get_group)
        jobs = await groups.group_jobs(session, group.id)
    return wire(group_out(group, jobs))


async def get_job(request: Request) -> JSONResponse:
    async with app_state(request).db.session() as session:
        job = await owned(request, session, "job", jobs.get_job)
        output, draft = None, None
        if job.status in contract.SUCCEEDED and job.output_ref:
            output = await documents.get_document(session, job.organization_id, job.output_ref)
        if job.status == contract.AWAITING_REVIEW and job.draft_ref:  # what is under review
            draft = await documents.get_document(session, job.organization_id, job.draft_ref)
    return wire(job_out(job, output, draft))


def encode_cursor(row: Job | JobGroup) -> str:
    """The cursor after ``row`` in a newest-first list (jobs here, groups in the console)."""
    raw = f"{row.created_at.isoformat()}|{row.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created, job_id = raw.split("|", 1)
        return datetime.fromisoformat(created), job_id
    except (ValueError, UnicodeDecodeError):
        raise ValidationError(
            "cursor: not a cursor returned by this API", [{"path": "cursor", "message": "invalid"}]
        ) from None


async def list_jobs(request: Request) -> JSONResponse:
    key = api_key(request)
    query = validate(ListJobsQuery, dict(request.query_params))
    before = decode_cursor(query.cursor) if query.cursor else None
    async with app_state(request).db.session() as session:
        rows = await jobs.list_jobs(
            session,
            key.organization_id,
            limit=query.limit + 1,
            status=query.status,
            engine_id=query.engine_id,
            group_id=query.group_id,
            target_locale=query.target_locale,
            created_after=query.created_after,  # in UTC (ListJobsQuery), as rows are
            before=before,
        )
    page, more = rows[: query.limit], len(rows) > query.limit
    return wire(
        JobList(
            items=[job_item(job) for job in page],
            next_cursor=encode_cursor(page[-1]) if more else None,
        )
    )
