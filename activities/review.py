"""Activities of the humanReview stage: ``await_review_job`` puts a job in awaiting_review
and tells its group; ``store_review`` validates and stores a review that came with its
content through the workflow update (an operator's ``temporal`` CLI; the API stores its
reviews itself before sending the update with the review's id only).

The wait itself is no activity: the job's workflow waits on its ``review`` update or a
timer, so no worker is held while a person takes days."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

import contract
from activities.step_records import iso
from localization.review_edit import review_refusal
from store import documents, reviews
from store.db import Database
from store.ids import derived_id
from store.tables import Job, JobGroup
from workflows.messages import (
    AWAIT_REVIEW_JOB,
    JOB_ROW_MISSING,
    SIGNAL_JOB_REVIEW,
    STORE_REVIEW,
    AwaitReviewInput,
    JobFinished,
    StoreReviewInput,
)

# The error type of a review whose edited data or comment is refused (names keys only).
REVIEW_REFUSED = "ReviewRefused"


def waiting_step(round_: int, timeout_seconds: int, now: datetime) -> dict[str, Any]:
    """The humanReview step record while its job waits: the round and when it is due."""
    return {
        "stepId": contract.HUMAN_REVIEW,
        "status": contract.STEP_WAITING,
        "rounds": round_,
        "startedAt": iso(now),
        "reviewDueAt": iso(now + timedelta(seconds=timeout_seconds)),
    }


def _attempt_id() -> str:
    """The id of the review this activity stores: the same for every attempt of it (its
    workflow run and activity id), so a retry after a commit stores no second review."""
    info = activity.info()
    return derived_id("rvw_", b"store_review", info.workflow_run_id or "", info.activity_id)


class ReviewActivities:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def _job(self, job_id: str) -> tuple[Job, JobGroup]:
        async with self.db.session() as session:
            job = await session.get(Job, job_id)
            group = await session.get(JobGroup, job.group_id) if job else None
        if job is None or group is None:
            raise ApplicationError(
                f"job {job_id} has no row in the database", type=JOB_ROW_MISSING, non_retryable=True
            )
        return job, group

    @activity.defn(name=AWAIT_REVIEW_JOB)
    async def await_review_job(self, waiting: AwaitReviewInput) -> str:
        """Mark the job awaiting review (its humanReview step ``waiting``, with the round and
        ``reviewDueAt``) and tell the group. Idempotent: a job already waiting in this round
        is only told to the group again. A job that ended meanwhile keeps its end. Answers
        the digest of the source's structure (``contract.structure_digest``), which the
        workflow's ``review`` validator checks an edit sent with the update against."""
        job, group = await self._job(waiting.job_id)
        current = reviews.waiting_step(job)
        already = job.status == contract.AWAITING_REVIEW and (current or {}).get("rounds") == (
            waiting.round
        )
        if not already:
            if job.status != contract.PROCESSING:
                raise ApplicationError(
                    f"job {job.id} is {job.status}", type="JobEnded", non_retryable=True
                )
            step = waiting_step(waiting.round, waiting.timeout_seconds, datetime.now(UTC))
            steps = [s for s in job.steps or [] if s.get("stepId") != contract.HUMAN_REVIEW]
            async with self.db.writing() as session:
                stored = await reviews.await_review(session, job.id, [*steps, step])
            if stored != contract.AWAITING_REVIEW:
                raise ApplicationError(
                    f"job {job.id} is {stored}", type="JobEnded", non_retryable=True
                )
        # Not best effort: the group's entry into review is the stream's event, so a
        # failed signal fails the attempt and the next one tells it again.
        handle = activity.client().get_workflow_handle(waiting.group_id)
        await handle.signal(
            SIGNAL_JOB_REVIEW, JobFinished(waiting.job_id, contract.AWAITING_REVIEW)
        )
        async with self.db.session() as session:
            source = await documents.get_document(session, group.organization_id, group.source_ref)
        return contract.structure_digest(source)

    @activity.defn(name=STORE_REVIEW)
    async def store_review(self, given: StoreReviewInput) -> str:
        """Validate a review sent with its content (the CLI's update) and store it; answers
        the stored review's id. Refused (not retryable, keys named): a bad action, a reject
        without a comment, edited data that breaks the source's structure or tokens."""
        job, group = await self._job(given.job_id)
        review = given.review
        async with self.db.session() as session:
            source = await documents.get_document(session, group.organization_id, group.source_ref)
        refused = (
            None
            if review.action in contract.REVIEW_ACTIONS
            else f"action: must be one of {', '.join(contract.REVIEW_ACTIONS)}"
        ) or review_refusal(
            source, review.data, review.comment, rejecting=review.action == contract.REJECT
        )
        if refused:
            raise ApplicationError(refused, type=REVIEW_REFUSED, non_retryable=True)
        async with self.db.writing() as session:
            stored = await reviews.add_review(
                session,
                job,
                round_=given.round,
                action=review.action,
                comment=review.comment,
                data=review.data,
                reviewer=review.reviewer or "temporal",
                review_id=_attempt_id(),
            )
        return stored.id
