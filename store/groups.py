"""Job groups: inserting one with its jobs and source, reading it and its jobs, recording
its end, and the outbox that makes an accepted group's workflow start however the
accepting process ended."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, case, func, or_, update
from sqlalchemy import select as select_columns
from sqlalchemy.exc import IntegrityError
from sqlmodel import SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from contract import FAILED, GROUP_PENDING, GROUP_PROCESSING, GROUP_TERMINAL
from contract import group_status as derive_group_status
from store.documents import put_blob
from store.ids import looks_like
from store.jobs import UNFINISHED
from store.tables import Job, JobGroup, utcnow


async def insert_group(
    session: AsyncSession,
    group: JobGroup,
    jobs: list[Job],
    body: bytes,
    extra: Sequence[SQLModel] = (),
) -> bool:
    """Insert a group, its jobs and its source document (and ``extra`` rows of the group,
    such as its spending limit) in one transaction.

    Returns False when a group with this id already exists (an idempotent replay, possibly
    racing this request); nothing is written then.
    """
    await put_blob(session, group.organization_id, body)
    try:
        session.add(group)
        await session.flush()
        session.add_all(jobs)
        session.add_all(extra)
        await session.commit()
    except IntegrityError:
        await session.rollback()
        return False
    return True


async def get_group(session: AsyncSession, organization_id: str, group_id: str) -> JobGroup | None:
    if not looks_like("ljg_", group_id):
        return None
    group = await session.get(JobGroup, group_id)
    return group if group and group.organization_id == organization_id else None


async def group_jobs(session: AsyncSession, group_id: str) -> list[Job]:
    result = await session.exec(select(Job).where(Job.group_id == group_id).order_by(col(Job.id)))
    jobs = list(result.all())
    group = await session.get(JobGroup, group_id)
    if group is not None:  # keep the order the client asked for
        _in_client_order(group, jobs)
    return jobs


def _in_client_order(group: JobGroup, jobs: list[Job]) -> None:
    """Sort ``jobs`` in place in the order of the group's target locales."""
    order = {locale: i for i, locale in enumerate(group.target_locales)}
    jobs.sort(key=lambda job: order.get(job.target_locale, len(order)))


async def record_group_result(
    session: AsyncSession, group_id: str, status: str, event_log: list[list[Any]]
) -> None:
    """Record the group's terminal status and event log. Recorded again with the same
    status (a retried activity), its ``completedAt`` stays. LookupError: no such row."""
    result = await session.execute(
        update(JobGroup)
        .where(col(JobGroup.id) == group_id)
        .values(
            status=status,
            event_log=event_log,
            completed_at=case(
                (
                    col(JobGroup.status) == status,
                    func.coalesce(col(JobGroup.completed_at), utcnow()),
                ),
                else_=utcnow(),
            ),
        )
    )
    await session.commit()
    if not getattr(result, "rowcount", 1):
        raise LookupError(group_id)


# --- the outbox: accepted groups and their workflows (activities/reconcile.py) -------------
#
# ``JobGroup.status`` is ``pending`` from acceptance until someone has seen the group's
# workflow exist (``mark_group_started``: the reconciler does, so the API's accept path
# writes nothing more); then ``processing``; the terminal status once the workflow records
# it. So ``pending`` rows older than a few seconds are exactly the groups to check.


async def unstarted_groups(
    session: AsyncSession, created_after: datetime, created_before: datetime, limit: int
) -> list[JobGroup]:
    """Accepted groups not yet seen started, created between the two times, oldest first."""
    result = await session.exec(
        select(JobGroup)
        .where(
            JobGroup.status == GROUP_PENDING,
            col(JobGroup.created_at) > created_after,
            col(JobGroup.created_at) < created_before,
        )
        .order_by(col(JobGroup.created_at), col(JobGroup.id))
        .limit(limit)
    )
    return list(result.all())


async def mark_group_started(session: AsyncSession, group_ids: list[str]) -> None:
    if group_ids:
        await session.execute(
            update(JobGroup)
            .where(col(JobGroup.id).in_(group_ids), col(JobGroup.status) == GROUP_PENDING)
            .values(status=GROUP_PROCESSING)
        )
        await session.commit()


async def groups_by_id(session: AsyncSession, group_ids: list[str]) -> list[JobGroup]:
    if not group_ids:
        return []
    result = await session.exec(select(JobGroup).where(col(JobGroup.id).in_(group_ids)))
    return list(result.all())


async def close_abandoned_group(
    session: AsyncSession, group_id: str, error: str, event_log: list[list[Any]]
) -> str | None:
    """Close a group whose workflow ended without recording it (terminated by an
    operator): its unfinished jobs fail with ``error``, the group gets the status its jobs
    make, and its event log (``event_log``, what the workflow had published) gains the
    jobs' ends it lacks and the group's. Returns that status; None when the group is
    already terminal (nothing to do)."""
    group = await session.get(JobGroup, group_id)
    if group is None or group.status in GROUP_TERMINAL:
        return None
    now = utcnow()
    await session.execute(
        update(Job)
        .where(col(Job.group_id) == group_id, col(Job.status).in_(UNFINISHED))
        .values(status=FAILED, error=error, completed_at=now)
    )
    jobs = await group_jobs(session, group_id)
    # A run terminated before its first event published no log: the one recorded stands.
    event_log = event_log or list(group.event_log or [])
    logged = {job_id: entry_status for job_id, entry_status in event_log if job_id}
    log = [list(entry) for entry in event_log]
    for job in sorted(jobs, key=lambda job: (job.completed_at or now, job.id)):
        if logged.get(job.id) != job.status:
            log.append([job.id, job.status])
    final = derive_group_status(job.status for job in jobs)
    group.status, group.completed_at, group.event_log = final, now, [*log, [None, final]]
    session.add(group)
    await session.commit()
    return final


# --- the console's list of groups --------------------------------------------------------


async def list_groups(
    session: AsyncSession,
    organization_id: str,
    *,
    limit: int,
    statuses: tuple[str, ...] | None = None,
    with_job_status: str | None = None,
    before: tuple[datetime, str] | None = None,
) -> list[JobGroup]:
    """An organization's groups, newest first, whose recorded status is one of ``statuses``
    (all when None) and, with ``with_job_status``, that have a job in it; ``before`` is the
    (created_at, id) of the last row of the previous page. A terminal status is recorded
    exactly when the API starts showing it, so a filter on it agrees with what each group
    shows."""
    query = select(JobGroup).where(JobGroup.organization_id == organization_id)
    if statuses is not None:
        query = query.where(col(JobGroup.status).in_(statuses))
    if with_job_status is not None:
        having = select(Job.id).where(Job.group_id == JobGroup.id, Job.status == with_job_status)
        query = query.where(having.exists())
    if before:
        created, group_id = before
        query = query.where(
            or_(
                col(JobGroup.created_at) < created,
                and_(col(JobGroup.created_at) == created, col(JobGroup.id) < group_id),
            )
        )
    query = query.order_by(col(JobGroup.created_at).desc(), col(JobGroup.id).desc()).limit(limit)
    return list((await session.exec(query)).all())


async def jobs_of_groups(session: AsyncSession, groups: list[JobGroup]) -> dict[str, list[Job]]:
    """Each group's jobs in the client's order, for a page of groups in one query."""
    found: dict[str, list[Job]] = {group.id: [] for group in groups}
    if groups:
        result = await session.exec(
            select(Job).where(col(Job.group_id).in_(list(found))).order_by(col(Job.id))
        )
        for job in result.all():
            found[job.group_id].append(job)
    for group in groups:
        _in_client_order(group, found[group.id])
    return found


def active_groups_query(organization_id: str) -> Select[int]:
    """How many of the organization's groups are not yet terminal: those with a job that
    has not ended (queued, processing or awaiting review), as clients see them."""
    return select_columns(func.count(func.distinct(Job.group_id))).where(
        col(Job.organization_id) == organization_id,
        col(Job.status).in_(UNFINISHED),
    )


async def active_groups(session: AsyncSession, organization_id: str) -> int:
    """``active_groups_query``'s count."""
    return int((await session.execute(active_groups_query(organization_id))).scalar_one())
