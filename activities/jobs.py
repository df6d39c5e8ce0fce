"""Activities of one job group: translate a locale, record results in the database.

Inputs and outputs are references (job and group ids); documents are read from and written
to the database here, so no user content ever enters workflow history.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator
from datetime import UTC, datetime

from temporalio import activity
from temporalio.exceptions import ApplicationError

from localization.document import translate_document
from localization.models import EngineUnusable, pick_model
from store import queries
from store.db import Database
from store.models import Engine, JobGroup
from workflows import status
from workflows.models import (
    RECORD_GROUP_RESULT,
    RECORD_JOB_RESULT,
    RESET_JOBS,
    SIGNAL_JOB_FINISHED,
    TRANSLATE_JOB,
    JobFinished,
    RecordGroupResultInput,
    RecordJobResultInput,
    ResetJobsInput,
    TranslateJobInput,
    TranslateJobResult,
)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@contextlib.asynccontextmanager
async def heartbeating() -> AsyncIterator[None]:
    """Heartbeat at a third of the activity's heartbeat timeout while the body runs."""
    timeout = activity.info().heartbeat_timeout
    interval = timeout.total_seconds() / 3 if timeout else 5.0

    async def beat() -> None:
        while True:
            activity.heartbeat()
            await asyncio.sleep(interval)

    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        task.cancel()


async def _tell_group(group_id: str, job_id: str, final: str) -> None:
    """Let the group know at once (its progress stream is waiting), rather than after this
    job's workflow has run again and completed. Best effort: the child's completion reports
    the same status anyway."""
    try:
        handle = activity.client().get_workflow_handle(group_id)
        await handle.signal(SIGNAL_JOB_FINISHED, JobFinished(job_id=job_id, status=final))
    except Exception as err:  # never fail a finished translation over a notification
        activity.logger.warning("could not signal %s about %s: %s", group_id, job_id, err)


class JobActivities:
    def __init__(self, db: Database) -> None:
        self.db = db

    @activity.defn(name=TRANSLATE_JOB)
    async def translate_job(self, job_input: TranslateJobInput) -> TranslateJobResult:
        async with self.db.writing() as session:
            job = await queries.mark_job_processing(session, job_input.job_id)
            group = await session.get(JobGroup, job.group_id)
            engine = await session.get(Engine, job.engine_id)
            if group is None or engine is None:
                raise ApplicationError("job's group or engine no longer exists", non_retryable=True)
            data = await queries.get_document(session, group.organization_id, group.source_ref)

        try:
            choice, provider = pick_model(
                engine.id,
                engine.config.get("models", []),
                engine.provider,
                job.source_locale,
                job.target_locale,
            )
        except EngineUnusable as err:
            raise ApplicationError(
                str(err), type="EngineConfigurationError", non_retryable=True
            ) from None
        started = datetime.now(UTC)
        # CPU-bound for large documents: keep the worker's event loop free, and heartbeat
        # so that an attempt on a worker that died is retried elsewhere quickly.
        # A cancelled await leaves the thread running: tell it to stop, or it would hold
        # the GIL for seconds and starve every other activity's heartbeats.
        stop = threading.Event()
        try:
            async with heartbeating():
                result = await asyncio.to_thread(
                    translate_document,
                    data,
                    job.source_locale,
                    job.target_locale,
                    provider,
                    group.locked_keys,
                    stop.is_set,
                )
        except asyncio.CancelledError:
            stop.set()
            raise
        step = {
            "stepId": "translate",
            "status": "completed",
            "model": choice.label,
            "startedAt": _iso(started),
            "completedAt": _iso(datetime.now(UTC)),
        }
        final = status.COMPLETED_WITH_WARNINGS if result.warnings else status.COMPLETED
        async with self.db.writing() as session:
            await queries.complete_job(
                session,
                job.id,
                status=final,
                output=queries.encode_document(result.output),
                warnings=result.warnings,
                usage={
                    "strings": result.strings,
                    "lockedStrings": result.locked,
                    "memoryHits": 0,
                    "inputTokens": 0,
                    "outputTokens": 0,
                },
                steps=[step],
            )
        await _tell_group(job.group_id, job.id, final)
        return TranslateJobResult(
            strings=result.strings, warnings=len(result.warnings), status=final
        )

    @activity.defn(name=RECORD_JOB_RESULT)
    async def record_job_result(self, record: RecordJobResultInput) -> None:
        async with self.db.writing() as session:
            await queries.record_job_result(
                session, record.job_id, status=record.status, error=record.error
            )

    @activity.defn(name=RESET_JOBS)
    async def reset_jobs(self, reset: ResetJobsInput) -> None:
        async with self.db.writing() as session:
            await queries.reset_jobs(session, reset.group_id, reset.job_ids)

    @activity.defn(name=RECORD_GROUP_RESULT)
    async def record_group_result(self, record: RecordGroupResultInput) -> None:
        async with self.db.writing() as session:
            await queries.record_group_result(session, record.group_id, record.status, record.log)
