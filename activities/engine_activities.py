"""What the activities that run a job's engine share: ``translate_job`` (``jobs.py``) and
the stages after it (``stages.py``). An attempt runs the engine with the job's group
settings while it heartbeats; a failure keeps the attempt's failed step and raises an
error that says whether a later attempt may succeed; a draft is stored only while the job
is still processing; the job's group hears of a status change at once; a job that an
earlier attempt stored answers with that stored result."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio import activity
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

import contract
from activities.spending import LedgerMeter
from activities.translation import EngineRun
from localization.batch import Provider, ProviderBusy
from localization.dispatch import BatchLimits, SpendStopped
from localization.engine_plan import EngineUnusable
from localization.pipeline import TranslationFailed
from store import documents, jobs
from store.db import Database
from store.tables import Engine, Job, JobGroup
from workflows.messages import (
    JOB_ROW_MISSING,
    PROVIDER_BUSY,
    SIGNAL_JOB_FINISHED,
    DeliverWebhookInput,
    JobFinished,
    TranslateJobResult,
)

if TYPE_CHECKING:
    from activities.webhooks import WebhookActivities


def job_row_missing(job_id: str) -> ApplicationError:
    return ApplicationError(
        f"job {job_id} has no row in the database", type=JOB_ROW_MISSING, non_retryable=True
    )


def job_ended(job_id: str, status: str) -> ApplicationError:
    """A job that ended (a cancel, a failure) before this attempt could store its work:
    that end stands."""
    return ApplicationError(f"job {job_id} is {status}", type="JobEnded", non_retryable=True)


def engine_unusable(err: EngineUnusable) -> ApplicationError:
    return ApplicationError(str(err), type="EngineConfigurationError", non_retryable=True)


def provider_busy(err: ProviderBusy) -> ApplicationError:
    """No place at a provider's rate limit: the attempt ends (final for Temporal, whose
    retries would use up the job's attempts) and its workflow waits ``retry_after``."""
    return ApplicationError(
        str(err),
        round(err.retry_after or 1.0, 3),
        type=PROVIDER_BUSY,
        non_retryable=True,
        category=ApplicationErrorCategory.BENIGN,  # expected: no WARN with a traceback
    )


def spend_stopped(err: SpendStopped) -> ApplicationError:
    """A spending limit reached: final (a retry would stop again), its message the job's
    error, starting with its code (``budget_exceeded``, ``cost_limit_reached``)."""
    return ApplicationError(str(err), type="SpendLimitReached", non_retryable=True)


def attempt_failed(err: TranslationFailed, final_type: str) -> ApplicationError:
    """``err`` as the attempt's error: ``ProviderUnavailable`` when a provider was
    unreachable (retried), else ``final_type`` (final). The message names models, counts
    and statuses only; each model's full error is kept with the job's step record."""
    # A provider that asked for a long wait (429 Retry-After) gets it before the next
    # attempt, instead of the retry policy's short backoff.
    wait = timedelta(seconds=err.retry_after) if err.retry_after else None
    return ApplicationError(
        str(err),
        type="ProviderUnavailable" if err.retryable else final_type,
        non_retryable=not err.retryable,
        next_retry_delay=wait if err.retryable else None,
    )


async def group_and_engine(session: AsyncSession, job: Job) -> tuple[JobGroup, Engine]:
    group = await session.get(JobGroup, job.group_id)
    engine = await session.get(Engine, job.engine_id)
    if group is None or engine is None:
        raise ApplicationError(
            "job's group or engine no longer exists", type=JOB_ROW_MISSING, non_retryable=True
        )
    return group, engine


@contextlib.asynccontextmanager
async def heartbeating() -> AsyncIterator[None]:
    """Heartbeat every second (more often for a heartbeat timeout under 3 s) while the body
    runs: a cancel reaches the activity only in a heartbeat's answer."""
    timeout = activity.info().heartbeat_timeout
    interval = min(1.0, timeout.total_seconds() / 3) if timeout else 1.0

    async def beat() -> None:
        while True:
            activity.heartbeat()
            await asyncio.sleep(interval)

    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        task.cancel()


async def tell_group(
    group_id: str,
    job_id: str,
    final: str,
    error: str | None = None,
    signal: str = SIGNAL_JOB_FINISHED,
    *,
    best_effort: bool = True,
) -> None:
    """Let the group know of a job's end at once, from the activity that stored it (its
    progress stream is waiting), rather than after this job's workflow has run again,
    delivered its webhook and completed. Best effort: the child's completion reports the
    same status anyway. A signal from here adds no event to the job's history. (With
    ``SIGNAL_JOB_REVIEW``: a job that leaves awaiting_review for another round; not
    ``best_effort`` there, as nothing else would tell it, so a failure fails the attempt.)"""
    try:
        handle = activity.client().get_workflow_handle(group_id)
        await handle.signal(signal, JobFinished(job_id, final, error))
    except Exception as err:  # never fail a finished translation over a notification
        if not best_effort:
            raise
        activity.logger.warning("could not signal %s about %s: %s", group_id, job_id, err)


def stored_result(job: Job) -> TranslateJobResult:
    """The result of a translate whose output or draft an earlier attempt stored."""
    return TranslateJobResult(
        strings=int((job.usage or {}).get("strings", 0)),
        warnings=len(job.warnings or []),
        status=job.status,
    )


async def told_result(job: Job) -> TranslateJobResult:
    """The stored result of a job that succeeded, told to its group first (again, when an
    earlier attempt stored it and died before telling)."""
    await tell_group(job.group_id, job.id, job.status)
    return stored_result(job)


class EngineActivities:
    """The activities of a worker that run engines: its database, providers, batch limits
    and model prices (``settings.llm_prices``: a step's ``costUsd``, the spend ledger's),
    and the server's default quotas (``settings.quota_defaults``: the monthly budgets)."""

    def __init__(
        self,
        db: Database,
        providers: dict[str, Provider],
        limits: BatchLimits,
        prices: Mapping[str, Mapping[str, float]] | None = None,
        quota_defaults: Mapping[str, Any] | None = None,
        webhooks: WebhookActivities | None = None,
    ) -> None:
        self.db = db
        self.providers = providers
        self.limits = limits
        self.prices = prices or {}
        self.quota_defaults = quota_defaults or {}
        self.webhooks = webhooks  # for the first attempt of a job's webhook (announce_success)

    async def announce_success(
        self,
        job: Job,
        result: TranslateJobResult,
        deliver: DeliverWebhookInput | None,
    ) -> TranslateJobResult:
        """What follows a job's stored success: with ``deliver``, the first attempt of its
        webhook (``WebhookActivities.first_attempt``, which tells the group when the job's
        workflow cannot complete at once); without, the group is told now."""
        if deliver is None or self.webhooks is None:
            await tell_group(job.group_id, job.id, result.status)
            return result
        attempt = asyncio.ensure_future(
            self.webhooks.first_attempt(
                deliver, lambda: tell_group(job.group_id, job.id, result.status)
            )
        )
        async with heartbeating():
            try:
                result.webhook = await asyncio.shield(attempt)
            except asyncio.CancelledError:
                # The job is stored: a cancel now changes nothing, but cutting the attempt
                # short could leave a POST the receiver got unrecorded (and sent again as a
                # new attempt 1). Finish it, record it, and answer as done.
                result.webhook = await attempt
        return result

    def engine_run(
        self, job: Job, group: JobGroup, engine: Engine, context: str | None
    ) -> EngineRun:
        """The job's engine for its pair, with the group's hints and locked keys."""
        return EngineRun(
            engine=engine,
            source_locale=job.source_locale,
            target_locale=job.target_locale,
            providers=self.providers,
            db=self.db,
            organization_id=group.organization_id,
            limits=self.limits,
            context=context,
            hints=group.hints,
            locked_keys=group.locked_keys,
            meter=LedgerMeter(
                self.db,
                group.organization_id,
                engine.id,
                job.target_locale,
                self.prices,
                self.quota_defaults,
                group_id=group.id,
                job_id=job.id,
            ),
        )

    async def keep_failed_steps(self, job_id: str, steps: list[dict[str, Any]]) -> None:
        """Keep a failed attempt's step records on a job not yet terminal."""
        async with self.db.writing() as session:
            await jobs.record_failed_attempt(session, job_id, steps)

    async def store_draft(
        self,
        job_id: str,
        output: Any,
        *,
        warnings: list[dict[str, Any]],
        usage: dict[str, Any],
        steps: list[dict[str, Any]],
    ) -> None:
        """Store ``output`` as the job's draft, the job still processing; ``job_ended`` when
        it ended meanwhile (a cancel: that stands, and no draft is stored)."""
        async with self.db.writing() as session:
            stored = await jobs.store_draft(
                session,
                job_id,
                draft=documents.encode_document(output),
                warnings=warnings,
                usage=usage,
                steps=steps,
            )
        if stored != contract.PROCESSING:
            raise job_ended(job_id, stored)
