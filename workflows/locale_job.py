"""LocaleJobWorkflow: one target locale of a group, from queued to a terminal status."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

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

SIGNAL_JOB_STARTED = "job_started"
RECORD_TIMEOUT = timedelta(seconds=10)


def _error_message(err: ActivityError) -> str:
    cause = err.cause
    while isinstance(cause, ActivityError) and cause.cause is not None:
        cause = cause.cause
    if isinstance(cause, ApplicationError):
        return cause.message
    return str(cause or err)


@workflow.defn(name="LocaleJobWorkflow")
class LocaleJobWorkflow:
    @workflow.run
    async def run(self, job: LocaleJobInput) -> LocaleJobResult:
        parent = workflow.info().parent
        if parent is not None:
            await workflow.get_external_workflow_handle(parent.workflow_id).signal(
                SIGNAL_JOB_STARTED, job.job_id
            )

        options = job.options
        error: str | None = None
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
            )
            final = status.COMPLETED_WITH_WARNINGS if result.warnings else status.COMPLETED
        except ActivityError as err:
            final, error = status.FAILED, _error_message(err)

        await workflow.execute_activity(
            RECORD_JOB_RESULT,
            RecordJobResultInput(job_id=job.job_id, status=final, error=error),
            start_to_close_timeout=RECORD_TIMEOUT,
            retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=30)),
            summary=f"record {final}",
        )
        return LocaleJobResult(status=final, error=error)
