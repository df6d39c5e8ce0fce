"""What the activities that run a job's engine share: ``translate_job`` (``jobs.py``) and
the stages after it (``stages.py``). An attempt heartbeats while the engine works, tells
the job's group of a status change at once, and answers a job that an earlier attempt
stored with that stored result."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from temporalio import activity

from store.tables import Job
from workflows.messages import SIGNAL_JOB_FINISHED, JobFinished, TranslateJobResult


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
) -> None:
    """Let the group know of a job's end at once, from the activity that stored it (its
    progress stream is waiting), rather than after this job's workflow has run again,
    delivered its webhook and completed. Best effort: the child's completion reports the
    same status anyway. A signal from here adds no event to the job's history. (With
    ``SIGNAL_JOB_REVIEW``: a job that leaves awaiting_review for another round.)"""
    try:
        handle = activity.client().get_workflow_handle(group_id)
        await handle.signal(signal, JobFinished(job_id, final, error))
    except Exception as err:  # never fail a finished translation over a notification
        activity.logger.warning("could not signal %s about %s: %s", group_id, job_id, err)


def stored_result(job: Job) -> TranslateJobResult:
    """The result of a translate whose output or draft an earlier attempt stored."""
    return TranslateJobResult(
        strings=int((job.usage or {}).get("strings", 0)),
        warnings=len(job.warnings or []),
        status=job.status,
    )
