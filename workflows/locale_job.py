"""LocaleJobWorkflow: one target locale of a group, from queued to a terminal status."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError
from temporalio.workflow import ActivityCancellationType

from workflows import status
from workflows.models import (
    RECORD_JOB_RESULT,
    TRANSLATE_JOB,
    LocaleJobInput,
    LocaleJobResult,
    RecordJobResultInput,
    TranslateJobInput,
    TranslateJobResult,
)

RECORD_TIMEOUT = timedelta(seconds=10)
RECORD_RETRY = RetryPolicy(maximum_interval=timedelta(seconds=30))


def _error_message(err: ActivityError) -> str:
    cause = err.cause
    while isinstance(cause, ActivityError) and cause.cause is not None:
        cause = cause.cause
    if isinstance(cause, ApplicationError):
        return cause.message
    return str(cause or err)


async def record_job(job_id: str, final: str, error: str | None) -> None:
    """Record a job's terminal status. Once decided, an outcome is written even if a cancel
    arrives meanwhile: the activity is shielded and awaited to the end."""
    handle = workflow.start_activity(
        RECORD_JOB_RESULT,
        RecordJobResultInput(job_id=job_id, status=final, error=error),
        start_to_close_timeout=RECORD_TIMEOUT,
        retry_policy=RECORD_RETRY,
        summary=f"record {final}",
    )
    while True:
        try:
            await asyncio.shield(handle)
            return
        except asyncio.CancelledError:
            continue


@workflow.defn(name="LocaleJobWorkflow")
class LocaleJobWorkflow:
    @workflow.run
    async def run(self, job: LocaleJobInput) -> LocaleJobResult:
        options = job.options
        error: str | None = None
        final = status.FAILED
        try:
            result: TranslateJobResult = await workflow.execute_activity(
                TRANSLATE_JOB,
                TranslateJobInput(job_id=job.job_id),
                result_type=TranslateJobResult,
                start_to_close_timeout=timedelta(seconds=options.translate_timeout_seconds),
                heartbeat_timeout=timedelta(seconds=options.translate_heartbeat_seconds),
                retry_policy=RetryPolicy(
                    initial_interval=timedelta(seconds=options.translate_initial_interval_seconds),
                    backoff_coefficient=2.0,
                    maximum_interval=timedelta(minutes=1),
                    maximum_attempts=options.translate_max_attempts,
                ),
                summary=f"translate {job.source_locale} -> {job.target_locale}",
                # On cancel, wait until the activity has really stopped.
                cancellation_type=ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
            )
            # The activity stored the output and the success status together.
            return LocaleJobResult(status=result.status)
        except ActivityError as err:
            if isinstance(err.cause, CancelledError):
                final = status.CANCELLED
            else:
                final, error = status.FAILED, _error_message(err)
        except asyncio.CancelledError:
            # The group (or an operator) cancelled this job: record it and end normally.
            final = status.CANCELLED

        await record_job(job.job_id, final, error)
        return LocaleJobResult(status=final, error=error)
