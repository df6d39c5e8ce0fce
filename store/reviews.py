"""Human review: a person's decisions (``Review`` rows), the job's entry into
awaiting_review, and the queue of jobs waiting for a reviewer (``GET /reviews``).

A job's review round and due time live in its ``humanReview`` step record (status
``waiting``) while it waits, so the queue is one read of the job rows. Every write of a
job is conditional, as in ``store/jobs.py``: a job that ended meanwhile keeps its end."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from contract import AWAITING_REVIEW, HUMAN_REVIEW, PROCESSING, STEP_WAITING
from store.documents import encode_document, put_blob
from store.ids import new_id
from store.tables import Job, Review


async def await_review(session: AsyncSession, job_id: str, steps: list[dict[str, Any]]) -> str:
    """Put a processing job in awaiting_review with ``steps`` (its waiting humanReview step
    included); returns the job's status afterwards (one that ended meanwhile keeps it)."""
    return await _move(session, job_id, PROCESSING, AWAITING_REVIEW, steps=steps)


async def leave_review(session: AsyncSession, job_id: str) -> str:
    """Put a job whose review ended back to processing (for the stages after humanReview);
    returns the job's status afterwards (one that ended meanwhile keeps it)."""
    return await _move(session, job_id, AWAITING_REVIEW, PROCESSING)


async def _move(session: AsyncSession, job_id: str, before: str, after: str, **values: Any) -> str:
    """Set the job's status from ``before`` to ``after`` (with ``values``), only if it has
    ``before``; returns its status afterwards."""
    await session.execute(
        update(Job)
        .where(col(Job.id) == job_id, col(Job.status) == before)
        .values(status=after, **values)
    )
    await session.commit()
    value = await session.scalar(select(Job.status).where(col(Job.id) == job_id))
    return str(value) if value is not None else ""


async def add_review(
    session: AsyncSession,
    job: Job,
    *,
    round_: int,
    action: str,
    comment: str | None,
    data: Any | None,
    reviewer: str | None,
    review_id: str | None = None,
) -> Review:
    """Store a decision (and its edited output as a blob) and return it. With
    ``review_id`` (an id derived from who stores it), a review stored under that id
    already is returned as it is: a second attempt stores nothing twice."""
    if review_id is not None:
        stored = await session.get(Review, review_id)
        if stored is not None:
            return stored
    data_ref = None
    if data is not None:
        data_ref = await put_blob(session, job.organization_id, encode_document(data))
    review = Review(
        id=review_id or new_id("rvw_"),
        job_id=job.id,
        organization_id=job.organization_id,
        round=round_,
        action=action,
        comment=comment,
        data_ref=data_ref,
        reviewer=reviewer,
    )
    session.add(review)
    await session.commit()
    return review


async def get_review(session: AsyncSession, job_id: str, review_id: str) -> Review | None:
    review = await session.get(Review, review_id)
    return review if review is not None and review.job_id == job_id else None


def waiting_step(job: Job) -> dict[str, Any] | None:
    """The job's humanReview step while it waits (its round and due time), else None."""
    for step in reversed(job.steps or []):
        if step.get("stepId") == HUMAN_REVIEW and step.get("status") == STEP_WAITING:
            return step
    return None


async def pending_reviews(
    session: AsyncSession,
    organization_id: str,
    *,
    limit: int,
    group_id: str | None = None,
    target_locale: str | None = None,
    after: tuple[datetime, str] | None = None,
) -> list[Job]:
    """Jobs awaiting review, oldest first; ``after`` is the (created_at, id) of the last
    row of the previous page."""
    query = select(Job).where(Job.organization_id == organization_id, Job.status == AWAITING_REVIEW)
    if group_id:
        query = query.where(Job.group_id == group_id)
    if target_locale:
        query = query.where(Job.target_locale == target_locale)
    if after:
        created, job_id = after
        query = query.where(
            or_(
                col(Job.created_at) > created,
                and_(col(Job.created_at) == created, col(Job.id) > job_id),
            )
        )
    query = query.order_by(col(Job.created_at), col(Job.id)).limit(limit)
    return list((await session.exec(query)).all())
