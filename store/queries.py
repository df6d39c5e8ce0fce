"""The queries the API, the activities and the admin CLI share. Every read that takes an id
from a client also takes the caller's organization, so another organization's rows are
simply not found."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, delete, func, or_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from contract import (
    CANCELLED,
    FAILED,
    GROUP_PENDING,
    GROUP_PROCESSING,
    GROUP_TERMINAL,
    PROCESSING,
    QUEUED,
    TERMINAL,
)
from contract import group_status as derive_group_status
from localization.engine_plan import fallback_provider
from store import api_keys
from store.db import dialect_insert
from store.ids import looks_like, new_id
from store.tables import (
    ApiKey,
    Blob,
    Delivery,
    Engine,
    Job,
    JobGroup,
    Organization,
    ProcessUsage,
    WebhookConfig,
    utcnow,
)

# --- organizations and keys -------------------------------------------------------------


async def create_organization(session: AsyncSession, name: str) -> Organization:
    org = Organization(id=new_id("org_"), name=name)
    session.add(org)
    await session.flush()
    session.add(
        Engine(
            id=new_id("eng_"),
            organization_id=org.id,
            name="Default",
            description="Offline pseudo-localization",
            is_default=True,
            provider="pseudo",
        )
    )
    await session.commit()
    return org


async def create_engine(
    session: AsyncSession,
    organization_id: str,
    name: str,
    *,
    models: list[dict[str, Any]] | None = None,
    is_default: bool = False,
) -> Engine:
    if await session.get(Organization, organization_id) is None:
        raise LookupError(organization_id)
    if is_default:  # one default per organization
        await session.execute(
            update(Engine)
            .where(col(Engine.organization_id) == organization_id)
            .values(is_default=False)
        )
    engine = Engine(
        id=new_id("eng_"),
        organization_id=organization_id,
        name=name,
        is_default=is_default,
        provider=fallback_provider(models or []),
        config={"models": models or []},
    )
    session.add(engine)
    await session.commit()
    return engine


async def list_engines(session: AsyncSession, organization_id: str) -> list[Engine]:
    result = await session.exec(
        select(Engine)
        .where(Engine.organization_id == organization_id)
        .order_by(col(Engine.created_at), col(Engine.id))
    )
    return list(result.all())


async def save_engine(session: AsyncSession, engine: Engine, *, make_default: bool) -> None:
    """Insert or update ``engine``; with ``make_default`` it becomes the organization's only
    default, in the same transaction."""
    if make_default:
        await session.execute(
            update(Engine)
            .where(
                col(Engine.organization_id) == engine.organization_id, col(Engine.id) != engine.id
            )
            .values(is_default=False)
        )
        engine.is_default = True
    session.add(engine)
    await session.commit()


async def unfinished_jobs_of_engine(session: AsyncSession, engine_id: str) -> int:
    count = await session.scalar(
        select(func.count())
        .select_from(Job)
        .where(col(Job.engine_id) == engine_id, col(Job.status).in_(("queued", "processing")))
    )
    return int(count or 0)


async def delete_engine(session: AsyncSession, engine_id: str) -> None:
    await session.exec(delete(Engine).where(col(Engine.id) == engine_id))
    await session.commit()


async def create_api_key(session: AsyncSession, organization_id: str, email: str) -> str:
    """Create a key and return it in full; only its hash and visible prefix are stored."""
    if await session.get(Organization, organization_id) is None:
        raise LookupError(organization_id)
    prefix, key = api_keys.new_key()
    session.add(
        ApiKey(
            id=prefix,
            organization_id=organization_id,
            key_hash=api_keys.hash_key(key),
            email=email,
        )
    )
    await session.commit()
    return key


def _live(row: ApiKey | None, key: str, revoked: bool = False) -> ApiKey | None:
    """The row of ``key`` when the whole key matches its hash and it is not revoked; with
    ``revoked``, a revoked key's row too (its ``revoked_at`` set), so that a caller can tell
    a revoked key (403) from an unknown one (401)."""
    if row is None or not api_keys.matches(key, row.key_hash):
        return None
    return row if revoked or row.revoked_at is None else None


async def authenticate(session: AsyncSession, key: str, *, revoked: bool = False) -> ApiKey | None:
    """The live key's row, or None. With ``revoked``, a revoked key's row as well (see
    ``_live``)."""
    prefix = api_keys.key_prefix(key)
    return _live(await session.get(ApiKey, prefix), key, revoked) if prefix else None


async def revoke_api_key(session: AsyncSession, key_or_id: str) -> ApiKey | None:
    """Revoke a key, named by its id (the visible prefix, ``tolk_ab12cd34``) or in full; it
    opens nothing from the next request on. None when there is no such key. Revoking again
    keeps the first revocation time."""
    row = await session.get(ApiKey, api_keys.key_prefix(key_or_id) or key_or_id)
    if row is not None and row.revoked_at is None:
        row.revoked_at = utcnow()
        session.add(row)
        await session.commit()
    return row


async def list_api_keys(session: AsyncSession, organization_id: str | None = None) -> list[ApiKey]:
    """Every key (or one organization's), oldest first: ids and dates, for an operator to
    find the one to revoke. Only hashes are stored, so no key can be shown again."""
    query = select(ApiKey).order_by(col(ApiKey.created_at), col(ApiKey.id))
    if organization_id is not None:
        query = query.where(ApiKey.organization_id == organization_id)
    return list((await session.exec(query)).all())


def key_organization(session: Session, key: str) -> tuple[str, bool] | None:
    """The organization of an API key and whether the key was revoked; None for an unknown
    key. Synchronous: progress streams, which connect by the thousand, look it up on the
    database's reader thread (``Database.read``)."""
    prefix = api_keys.key_prefix(key)
    row = _live(session.get(ApiKey, prefix), key, revoked=True) if prefix else None
    return (row.organization_id, row.revoked_at is not None) if row else None


async def default_engine(session: AsyncSession, organization_id: str) -> Engine | None:
    result = await session.exec(
        select(Engine).where(Engine.organization_id == organization_id, Engine.is_default)
    )
    return result.first()


async def get_engine(session: AsyncSession, organization_id: str, engine_id: str) -> Engine | None:
    if not looks_like("eng_", engine_id):  # not an id: not found, without asking the database
        return None
    engine = await session.get(Engine, engine_id)
    return engine if engine and engine.organization_id == organization_id else None


# --- content-addressed documents ----------------------------------------------------------


def encode_document(data: Any) -> bytes:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()


async def put_blob(session: AsyncSession, organization_id: str, body: bytes) -> str:
    """Store ``body`` once per organization; return its sha256 reference. Caller commits."""
    digest = hashlib.sha256(body).hexdigest()
    insert = dialect_insert(session.get_bind().dialect.name)
    # Concurrent writers may store the same document: the second insert is a no-op.
    await session.exec(
        insert(Blob)
        .values(
            organization_id=organization_id,
            sha256=digest,
            body=body,
            size=len(body),
            created_at=utcnow(),
        )
        .on_conflict_do_nothing()
    )
    return digest


async def get_blob(session: AsyncSession, organization_id: str, ref: str) -> bytes:
    blob = await session.get(Blob, (organization_id, ref))
    if blob is None:
        raise LookupError(f"blob {ref}")
    return blob.body


async def blob_size(session: AsyncSession, organization_id: str, ref: str) -> int:
    size = await session.scalar(
        select(Blob.size).where(Blob.organization_id == organization_id, Blob.sha256 == ref)
    )
    if size is None:
        raise LookupError(f"blob {ref}")
    return int(size)


async def get_document(session: AsyncSession, organization_id: str, ref: str) -> Any:
    return json.loads(await get_blob(session, organization_id, ref))


# --- groups and jobs ---------------------------------------------------------------------


async def insert_group(
    session: AsyncSession, group: JobGroup, jobs: list[Job], body: bytes
) -> bool:
    """Insert a group, its jobs and its source document in one transaction.

    Returns False when a group with this id already exists (an idempotent replay, possibly
    racing this request); nothing is written then.
    """
    await put_blob(session, group.organization_id, body)
    try:
        session.add(group)
        await session.flush()
        session.add_all(jobs)
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


def group_organization(session: Session, group_id: str) -> str | None:
    """The organization that owns a group (one column, no row object). Synchronous, for the
    reader thread, like ``key_organization``."""
    if not looks_like("ljg_", group_id):
        return None
    result = session.execute(select(JobGroup.organization_id).where(col(JobGroup.id) == group_id))
    return result.scalar_one_or_none()


async def group_jobs(session: AsyncSession, group_id: str) -> list[Job]:
    result = await session.exec(select(Job).where(Job.group_id == group_id).order_by(col(Job.id)))
    jobs = list(result.all())
    group = await session.get(JobGroup, group_id)
    if group is not None:  # keep the order the client asked for
        order = {locale: i for i, locale in enumerate(group.target_locales)}
        jobs.sort(key=lambda job: order.get(job.target_locale, len(order)))
    return jobs


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

UNFINISHED = (QUEUED, PROCESSING)


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
    Returns the job's status afterwards: a job that ended meanwhile keeps its end."""
    job = await session.get(Job, job_id)
    if job is None:
        raise LookupError(job_id)
    output_ref = await put_blob(session, job.organization_id, output)
    await session.execute(
        update(Job)
        .where(col(Job.id) == job_id, col(Job.status).in_(UNFINISHED))
        .values(
            output_ref=output_ref,
            warnings=warnings,
            usage=usage,
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
    session: AsyncSession, job_id: str, *, status: str, error: str | None
) -> str:
    """Record a job's end unless it has one; returns the status the job has afterwards.
    LookupError when the job has no row."""
    await session.execute(
        update(Job)
        .where(col(Job.id) == job_id, col(Job.status).in_(UNFINISHED))
        .values(status=status, error=error, completed_at=utcnow())
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
        .values(status=QUEUED, error=None, completed_at=None, output_ref=None, warnings=[])
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


# The progress hub's reads are plain functions of a synchronous session, run by
# ``Database.read`` (on SQLite in one hop to a reader thread; see store/db.py).


def progress_markers(session: Session, group_ids: list[str]) -> dict[str, tuple[int, int, bool]]:
    """For each group: how many of its jobs have started (any status but queued), how many
    are terminal, and whether the group is recorded as finished. One indexed statement for
    all watched groups at once (the progress hub runs it ten times a second and compares
    it with what each group's workflow last told it)."""
    terminal = sorted(TERMINAL)
    markers: dict[str, tuple[int, int, bool]] = {}
    for start in range(0, len(group_ids), 500):
        chunk = group_ids[start : start + 500]
        rows = session.execute(
            select(
                JobGroup.id,
                JobGroup.status,
                func.count(col(Job.id)).filter(col(Job.status) != QUEUED),
                func.count(col(Job.id)).filter(col(Job.status).in_(terminal)),
            )
            .select_from(JobGroup)
            .outerjoin(Job, col(Job.group_id) == col(JobGroup.id))
            .where(col(JobGroup.id).in_(chunk))
            .group_by(col(JobGroup.id), col(JobGroup.status))
        )
        for group_id, group_status, started, done in rows.all():
            finished = group_status in GROUP_TERMINAL
            markers[group_id] = (int(started), int(done), finished)
    return markers


def job_states(session: Session, group_id: str) -> dict[str, tuple[str, str | None]]:
    """Each job's status and error, in one statement with no row objects."""
    rows = session.execute(
        select(Job.id, Job.status, Job.error).where(col(Job.group_id) == group_id)
    )
    return {job_id: (job_status, error) for job_id, job_status, error in rows.all()}


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


# --- webhooks -----------------------------------------------------------------------------


async def webhook_config(
    session: AsyncSession, organization_id: str, new_secret: Callable[[], str]
) -> WebhookConfig:
    """The organization's webhook settings, created (with a new secret) on first use."""
    config = await session.get(WebhookConfig, organization_id)
    if config is not None:
        return config
    try:
        config = WebhookConfig(organization_id=organization_id, secret=new_secret())
        session.add(config)
        await session.commit()
        return config
    except IntegrityError:  # another process created it first: use theirs
        await session.rollback()
        existing = await session.get(WebhookConfig, organization_id)
        if existing is None:
            raise
        return existing


async def set_default_webhook_url(
    session: AsyncSession, organization_id: str, url: str | None, new_secret: Callable[[], str]
) -> WebhookConfig:
    config = await webhook_config(session, organization_id, new_secret)
    config.default_url, config.updated_at = url, utcnow()
    session.add(config)
    await session.commit()
    return config


async def rotate_webhook_secret(
    session: AsyncSession,
    organization_id: str,
    overlap: timedelta,
    new_secret: Callable[[], str],
) -> WebhookConfig:
    config = await webhook_config(session, organization_id, new_secret)
    now = utcnow()
    config.previous_secret, config.previous_until = config.secret, now + overlap
    config.secret, config.updated_at = new_secret(), now
    session.add(config)
    await session.commit()
    return config


async def record_delivery(session: AsyncSession, delivery: Delivery) -> None:
    if delivery.series == 1 and delivery.attempt == 1:
        # A job's new event (its run after a retry) supersedes the previous run's event,
        # whose pending retries were stopped by that retry.
        await session.execute(
            update(Delivery)
            .where(
                col(Delivery.job_id) == delivery.job_id,
                col(Delivery.event_id) != delivery.event_id,
                col(Delivery.outcome) == "retrying",
            )
            .values(outcome="superseded", next_attempt_at=None)
        )
    session.add(delivery)
    await session.commit()


async def job_deliveries(
    session: AsyncSession, organization_id: str, job_id: str
) -> list[Delivery]:
    result = await session.exec(
        select(Delivery)
        .where(Delivery.organization_id == organization_id, Delivery.job_id == job_id)
        .order_by(col(Delivery.id))
    )
    return list(result.all())


async def record_process_usage(session: AsyncSession, usage: ProcessUsage) -> None:
    """Keep one ``/process/localize`` call's usage. Text is cut to its column's length (the
    request models bound it already; this keeps every row within its columns whatever)."""
    for column in ProcessUsage.__table__.columns:  # type: ignore[attr-defined]
        limit = getattr(column.type, "length", None)
        value = getattr(usage, column.name)
        if limit is not None and isinstance(value, str) and len(value) > limit:
            setattr(usage, column.name, value[:limit])
    session.add(usage)
    await session.commit()
