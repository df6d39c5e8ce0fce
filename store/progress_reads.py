"""The synchronous reads behind progress streams: the hub's check for news and a group's
job states, and a stream's API-key and group-owner lookups at connect.

They live together rather than with their aggregates because they share what sets them
apart: each is a plain function of a synchronous ``Session``, run by ``Database.read`` (on
SQLite in one hop to a reader thread of its own; see store/db.py), one statement with no
row objects where it can be, on the API's hottest paths (ten times a second, or by the
thousand when streams connect). Kept apart from the async reads and writes, none is awaited
on the event loop by mistake, and a coroutine is never handed to the reader thread."""

from __future__ import annotations

from sqlalchemy import func
from sqlalchemy import select as select_columns  # five columns: more than sqlmodel types
from sqlalchemy.orm import Session
from sqlmodel import col, select

from contract import AWAITING_REVIEW, GROUP_TERMINAL, QUEUED, TERMINAL
from store import api_keys
from store.ids import looks_like
from store.tables import ApiKey, Job, JobGroup


def key_organization(session: Session, key: str) -> tuple[str, bool] | None:
    """The organization of an API key and whether the key was revoked; None for an unknown
    key. Synchronous: progress streams, which connect by the thousand, look it up on the
    database's reader thread (``Database.read``)."""
    prefix = api_keys.key_prefix(key)
    row = session.get(ApiKey, prefix) if prefix else None
    if row is None or not api_keys.matches(key, row.key_hash):
        return None
    return row.organization_id, row.revoked_at is not None


def group_organization(session: Session, group_id: str) -> str | None:
    """The organization that owns a group (one column, no row object). Synchronous, for the
    reader thread, like ``key_organization``."""
    if not looks_like("ljg_", group_id):
        return None
    result = session.execute(select(JobGroup.organization_id).where(col(JobGroup.id) == group_id))
    return result.scalar_one_or_none()


def progress_markers(
    session: Session, group_ids: list[str]
) -> dict[str, tuple[int, int, bool, int]]:
    """For each group: how many of its jobs have started (any status but queued), how many
    are terminal, whether the group is recorded as finished, and how many jobs await
    review (an entry into awaiting_review is a stream event too). One indexed statement for
    all watched groups at once (the progress hub runs it ten times a second and compares
    it with what each group's workflow last told it)."""
    terminal = sorted(TERMINAL)
    markers: dict[str, tuple[int, int, bool, int]] = {}
    for start in range(0, len(group_ids), 500):
        chunk = group_ids[start : start + 500]
        rows = session.execute(
            select_columns(
                col(JobGroup.id),
                col(JobGroup.status),
                func.count(col(Job.id)).filter(col(Job.status) != QUEUED),
                func.count(col(Job.id)).filter(col(Job.status).in_(terminal)),
                func.count(col(Job.id)).filter(col(Job.status) == AWAITING_REVIEW),
            )
            .select_from(JobGroup)
            .outerjoin(Job, col(Job.group_id) == col(JobGroup.id))
            .where(col(JobGroup.id).in_(chunk))
            .group_by(col(JobGroup.id), col(JobGroup.status))
        )
        for group_id, group_status, started, done, awaiting in rows.all():
            finished = group_status in GROUP_TERMINAL
            markers[group_id] = (int(started), int(done), finished, int(awaiting))
    return markers


def job_states(session: Session, group_id: str) -> dict[str, tuple[str, str | None]]:
    """Each job's status and error, in one statement with no row objects."""
    rows = session.execute(
        select(Job.id, Job.status, Job.error).where(col(Job.group_id) == group_id)
    )
    return {job_id: (job_status, error) for job_id, job_status, error in rows.all()}
