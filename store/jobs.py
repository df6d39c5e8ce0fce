"""Jobs: reads by id and the paged list, and the writes of a job's state by the workflows'
activities, each of them conditional (see below). A group's jobs in the client's order,
and the group rows themselves, are ``store/groups.py``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from contract import AWAITING_REVIEW, CANCELLED, FAILED, GROUP_PROCESSING, PROCESSING, QUEUED
from store.documents import put_blob
from store.ids import looks_like
from store.tables import Job, JobGroup, utcnow


async def get_job(session: AsyncSession, organization_id: str, job_id: str) -> Job | None:
    if not looks_like("ljb_", job_id):
        return None
    job = await session.get(Job, job_id)
    return job if job and job.organization_id == organization_id else None


async def list_jobs(
    session: AsyncSession,
    organization_id: str,
    *,
    limit: int,
    status: str | None = None,
    engine_id: str | None = None,
    group_id: str | None = None,
    target_locale: str | None = None,
    created_after: datetime | None = None,
    before: tuple[datetime, str] | None = None,
) -> list[Job]:
    """Newest first; ``before`` is the (created_at, id) of the last row of the previous page."""
    query = select(Job).where(Job.organization_id == organization_id)
    if status:
        query = query.where(Job.status == status)
    if engine_id:
        query = query.where(Job.engine_id == engine_id)
    if group_id:
        query = query.where(Job.group_id == group_id)
    if target_locale:
        query = query.where(Job.target_locale == target_locale)
    if created_after:
        query = query.where(Job.created_at > created_after)
    if before:
        created, job_id = before
        query = query.where(
            or_(
                col(Job.created_at) < created,
                and_(col(Job.created_at) == created, col(Job.id) < job_id),
            )
        )
    query = query.order_by(col(Job.created_at).desc(), col(Job.id).desc()).limit(limit)
    return list((await session.exec(query)).all())


# --- state written by the workflows' activities -----------------------------------------


# Every write of a job's state is conditional: a terminal job never moves back, except by
# an explicit retry (``reset_jobs``). A retried activity (after a crash, a timeout) finds
# the first attempt's effect and neither redoes nor undoes it.

# A job awaiting review is unfinished too: a cancel, a failure or its approval ends it.
UNFINISHED = (QUEUED, PROCESSING, AWAITING_REVIEW)


async def mark_job_processing(session: AsyncSession, job_id: str) -> Job | None:
    """Count a translate attempt of a job not yet terminal, and return the job as it is
    now (a terminal one unchanged); None when the job has no row."""
    await session.execute(
        update(Job)
        .where(col(Job.id) == job_id, col(Job.status).in_(UNFINISHED))
        .values(
            status=PROCESSING,
            attempts=col(Job.attempts) + 1,
            started_at=func.coalesce(col(Job.started_at), utcnow()),
        )
    )
    await session.commit()
    return await session.get(Job, job_id, populate_existing=True)


async def complete_job(
    session: AsyncSession,
    job_id: str,
    *,
    status: str,
    output: bytes,
    warnings: list[dict[str, Any]],
    usage: dict[str, Any],
    steps: list[dict[str, Any]],
) -> str:
    """Save a job's translated document with its success status, in one transaction: a job
    is done the moment its output is stored, not when the workflow next hears of it.
    Returns the job's status afterwards: a job that ended meanwhile keeps its end, and
    the output is then not stored at all (no blob that nothing refers to)."""
    values = {"warnings": warnings, "usage": usage, "steps": steps, "status": status}
    return await _write_with_blob(
        session, job_id, output, "output_ref", {**values, "error": None, "completed_at": utcnow()}
    )


async def store_draft(
    session: AsyncSession,
    job_id: str,
    *,
    draft: bytes,
    warnings: list[dict[str, Any]],
    usage: dict[str, Any],
    steps: list[dict[str, Any]],
) -> str:
    """Save a job's output so far (its draft, for the stages after translate) with the
    warnings, usage and steps so far; the job stays ``processing``. Conditional like
    ``complete_job``: returns the job's status afterwards (a job that ended meanwhile keeps
    its end and no draft is stored)."""
    values = {"warnings": warnings, "usage": usage, "steps": steps}
    return await _write_with_blob(session, job_id, draft, "draft_ref", values)


async def _write_with_blob(
    session: AsyncSession, job_id: str, body: bytes, ref_field: str, values: dict[str, Any]
) -> str:
    """Store ``body`` as a blob and the job's ``ref_field`` naming it with ``values``, in
    one transaction, unless the job ended meanwhile (then neither is stored)."""
    job = await session.get(Job, job_id)
    if job is None:
        raise LookupError(job_id)
    ref = await put_blob(session, job.organization_id, body)
    written = await session.execute(
        update(Job)
        .where(col(Job.id) == job_id, col(Job.status).in_(UNFINISHED))
        .values(**{ref_field: ref}, **values)
    )
    if getattr(written, "rowcount", 1):
        await session.commit()
    else:  # ended meanwhile: the blob goes with the update that did not happen
        await session.rollback()
    return await job_status(session, job_id) or str(values.get("status", job.status))


async def finish_draft(
    session: AsyncSession,
    job_id: str,
    *,
    draft_ref: str,
    status: str,
    warnings: list[dict[str, Any]],
    steps: list[dict[str, Any]],
    output_ref: str | None = None,
) -> str:
    """Make the job's draft ``draft_ref`` its output with the success status, in one
    transaction; returns the job's status afterwards (a job that ended meanwhile, or whose
    draft was replaced, keeps what it has). ``output_ref``: an output other than the draft
    (a reviewer's edit of it)."""
    await session.execute(
        update(Job)
        .where(
            col(Job.id) == job_id,
            col(Job.status).in_(UNFINISHED),
            col(Job.draft_ref) == draft_ref,
        )
        .values(
            output_ref=output_ref or draft_ref,
            draft_ref=None,
            warnings=warnings,
            steps=steps,
            status=status,
            error=None,
            completed_at=utcnow(),
        )
    )
    await session.commit()
    return await job_status(session, job_id) or status


async def record_failed_attempt(
    session: AsyncSession, job_id: str, steps: list[dict[str, Any]]
) -> None:
    """Keep a failed translate attempt's step record (each model's full error) on a job
    not yet terminal; the failure itself is recorded by ``record_job_result``."""
    await session.execute(
        update(Job)
        .where(col(Job.id) == job_id, col(Job.status).in_(UNFINISHED))
        .values(steps=steps)
    )
    await session.commit()


async def job_status(session: AsyncSession, job_id: str) -> str | None:
    value = await session.scalar(select(Job.status).where(col(Job.id) == job_id))
    return str(value) if value is not None else None


async def record_job_result(
    session: AsyncSession,
    job_id: str,
    *,
    status: str,
    error: str | None,
    steps: list[dict[str, Any]] | None = None,
) -> str:
    """Record a job's end unless it has one (with ``steps``, its step records as they end
    with it); returns the status the job has afterwards. LookupError when the job has no
    row."""
    values: dict[str, Any] = {"status": status, "error": error, "completed_at": utcnow()}
    if steps is not None:
        values["steps"] = steps
    await session.execute(
        update(Job).where(col(Job.id) == job_id, col(Job.status).in_(UNFINISHED)).values(**values)
    )
    await session.commit()
    stored = await job_status(session, job_id)
    if stored is None:
        raise LookupError(job_id)
    return stored


async def reset_jobs(session: AsyncSession, group_id: str, job_ids: list[str]) -> dict[str, str]:
    """Put failed or cancelled jobs back to ``queued`` for a retry (same ids); the group is
    live again until the workflow records its next terminal status. Returns each job's
    status afterwards: ``queued``, or the end of one that was not failed or cancelled."""
    await session.execute(
        update(Job)
        .where(
            col(Job.id).in_(job_ids),
            col(Job.group_id) == group_id,
            col(Job.status).in_((FAILED, CANCELLED)),
        )
        .values(
            status=QUEUED,
            error=None,
            completed_at=None,
            output_ref=None,
            draft_ref=None,
            warnings=[],
        )
    )
    await session.execute(
        update(JobGroup)
        .where(col(JobGroup.id) == group_id)
        .values(status=GROUP_PROCESSING, completed_at=None)
    )
    await session.commit()
    rows = await session.execute(
        select(Job.id, Job.status).where(col(Job.id).in_(job_ids), col(Job.group_id) == group_id)
    )
    return {job_id: job_status for job_id, job_status in rows.all()}
