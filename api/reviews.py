"""Human review over REST (API.md, "Pipeline stages"): the queue of jobs awaiting review,
and a person's review of one job.

A review is checked and stored here first (an edit must keep the source's structure and
every placeholder and tag: 400 naming the keys), then the job's workflow gets the ``review``
update with the stored review's id only, so no user content enters its history. The
update's validator decides whether the job is still waiting (409 when not), so a review
racing the timeout, or a second reviewer, is refused by the workflow itself."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from temporalio.client import WorkflowUpdateFailedError, WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.service import RPCError, RPCStatusCode

import contract
import starter
from api.auth import api_key, owned
from api.errors import ConflictError, ServiceUnavailableError, ValidationError
from api.jobs import decode_cursor, encode_cursor, job_out
from api.requests import app_state, parse_json, read_body, validate, wire
from api.review_schemas import ListReviewsQuery, ReviewItem, ReviewList, ReviewRequest
from api.state import AppState
from localization.review_edit import review_refusal
from store import documents, jobs, reviews
from store.tables import Job, JobGroup

# No worker took the review in time (all of them down): Temporal keeps it and the job's
# workflow may still take it when one returns, so the client must look before resending.
REVIEW_NOT_TAKEN_YET = (
    "no worker took the review yet; it may still be applied when one returns:"
    " GET the job before sending it again"
)


async def list_reviews(request: Request) -> JSONResponse:
    key = api_key(request)
    query = validate(ListReviewsQuery, dict(request.query_params))
    after = decode_cursor(query.cursor) if query.cursor else None
    async with app_state(request).db.session() as session:
        rows = await reviews.pending_reviews(
            session,
            key.organization_id,
            limit=query.limit + 1,
            group_id=query.group_id,
            target_locale=query.target_locale,
            after=after,
        )
    page, more = rows[: query.limit], len(rows) > query.limit
    items = [
        ReviewItem(
            id=job.id,
            group_id=job.group_id,
            target_locale=job.target_locale,
            created_at=job.created_at,
            review_due_at=(reviews.waiting_step(job) or {}).get("reviewDueAt"),
        )
        for job in page
    ]
    return wire(ReviewList(items=items, next_cursor=encode_cursor(page[-1]) if more else None))


async def review_job(request: Request) -> JSONResponse:
    """Approve (optionally with an edit) or reject (with a comment) a job awaiting review:
    202 with the job; 400 naming the keys an edit breaks; 409 when it is not waiting."""
    state = app_state(request)
    body = await read_body(request, state.settings.limits_max_body_bytes)
    given = validate(ReviewRequest, parse_json(body))
    async with state.db.session() as session:
        job = await owned(request, session, "job", jobs.get_job)
    await apply_review(state, job, given, reviewer=api_key(request).id)
    async with state.db.session() as session:
        job = await owned(request, session, "job", jobs.get_job)
    return wire(job_out(job), 202)


async def apply_review(
    state: AppState, job: Job, given: ReviewRequest, reviewer: str, seen_round: int | None = None
) -> None:
    """Check, store and send one review of ``job`` (the API's and the console's, one
    implementation): ``ValidationError`` naming the keys an edit breaks, ``ConflictError``
    when the job is not waiting (or, given ``seen_round``, the round the reviewer saw has
    passed), ``ServiceUnavailableError`` when Temporal does not answer."""
    async with state.db.session() as session:
        group = await session.get(JobGroup, job.group_id)
        assert group is not None
        source = await documents.get_document(session, job.organization_id, group.source_ref)
    rejecting = given.action == contract.REJECT
    if refused := review_refusal(source, given.data, given.comment, rejecting=rejecting):
        field, _, problem = refused.partition(": ")
        raise ValidationError(refused, [{"path": field, "message": problem}])
    waiting = reviews.waiting_step(job)
    if job.status != contract.AWAITING_REVIEW or waiting is None:
        raise ConflictError(contract.NOT_AWAITING_REVIEW)
    round_ = int(waiting.get("rounds") or 1)
    if seen_round is not None and seen_round != round_:
        raise ConflictError(contract.REVIEW_ROUND_PASSED)
    async with state.db.writing() as session:
        stored = await reviews.add_review(
            session,
            job,
            round_=round_,
            action=given.action,
            comment=given.comment,
            data=given.data,
            reviewer=reviewer,
        )
    try:
        await starter.send_review(state.temporal, job.id, given.action, stored.id, round_)
    except WorkflowUpdateFailedError as err:
        passed = getattr(err.cause, "message", None) == contract.REVIEW_ROUND_PASSED
        raise ConflictError(
            contract.REVIEW_ROUND_PASSED if passed else contract.NOT_AWAITING_REVIEW
        ) from None
    except WorkflowUpdateRPCTimeoutOrCancelledError:
        raise ServiceUnavailableError(REVIEW_NOT_TAKEN_YET) from None
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise ConflictError(contract.NOT_AWAITING_REVIEW) from None
        raise ServiceUnavailableError("the workflow service did not answer; retry") from None
