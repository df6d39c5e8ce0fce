"""Recording a job's terminal status from workflow code, whatever happens meanwhile: used
by a job's own workflow (``locale_job.py``) and by its group's for a child that could not
record its end (``group.py``)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

from workflows.messages import JOB_ROW_MISSING, RECORD_JOB_RESULT, RecordJobResultInput

RECORD_TIMEOUT = timedelta(seconds=10)
RECORD_RETRY = RetryPolicy(maximum_interval=timedelta(seconds=30))


def error_message(err: ActivityError) -> str:
    cause = err.cause
    while isinstance(cause, ActivityError) and cause.cause is not None:
        cause = cause.cause
    if isinstance(cause, ApplicationError):
        return cause.message
    return str(cause or err)


async def record_job(
    job_id: str, final: str, error: str | None, tell_group: str | None = None
) -> str:
    """Record a job's terminal status; returns the status the job has in the database
    afterwards (a job already terminal keeps its own: the record is conditional). With
    ``tell_group``, the activity tells that group the job's end once it is stored. Once
    decided, an outcome is written even if a cancel arrives meanwhile: the activity is
    shielded and awaited to the end. A record that keeps failing (a defect: the activity
    gives up after a few attempts) is tried again, minutes apart, until it is written; the
    job's row must not stay unfinished. Only a job whose row is gone is not recorded."""
    rounds = 0
    while True:
        handle = workflow.start_activity(
            RECORD_JOB_RESULT,
            RecordJobResultInput(job_id=job_id, status=final, error=error, group_id=tell_group),
            result_type=str,
            start_to_close_timeout=RECORD_TIMEOUT,
            retry_policy=RECORD_RETRY,
            summary=f"record {final}",
        )
        while True:
            try:
                stored: str | None = await asyncio.shield(handle)
                return stored or final  # histories from before the record answered: None
            except asyncio.CancelledError:
                continue
            except ActivityError as err:
                failure = err.cause
                if isinstance(failure, ApplicationError) and failure.type == JOB_ROW_MISSING:
                    workflow.logger.error("job %s has no row: not recorded as %s", job_id, final)
                    return final
                break
        rounds += 1
        workflow.logger.error(
            "could not record %s as %s (round %d): %s", job_id, final, rounds, failure
        )
        await _sleep_shielded(timedelta(seconds=min(600, 30 * 2 ** min(rounds, 5))))


async def _sleep_shielded(duration: timedelta) -> None:
    """A pause that a cancel does not cut short (an outcome being recorded stands)."""
    sleeping = asyncio.ensure_future(workflow.sleep(duration, summary="record failing"))
    while True:
        try:
            await asyncio.shield(sleeping)
            return
        except asyncio.CancelledError:
            continue
