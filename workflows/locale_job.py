"""LocaleJobWorkflow: one target locale of a group, from queued to a terminal status."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError
from temporalio.workflow import ActivityCancellationType

import contract
from workflows.messages import (
    BACK_TRANSLATE_JOB,
    FINISH_JOB,
    JOB_ROW_MISSING,
    RECORD_JOB_RESULT,
    REVIEW_JOB,
    SIGNAL_JOB_FINISHED,
    TRANSLATE_JOB,
    DeliverWebhookInput,
    FinishJobInput,
    JobFinished,
    JobOptions,
    LocaleJobInput,
    LocaleJobResult,
    RecordJobResultInput,
    StageJobInput,
    StageJobResult,
    TranslateJobInput,
    TranslateJobResult,
)
from workflows.outages import database_unavailable, wait_for_database
from workflows.webhooks import deliver_event, job_event_id

# Workflow change markers (``workflow.patched``): jobs started before webhooks existed end
# without delivering one.
WEBHOOK_DELIVERY = "webhook-delivery"
# A failure is told to the group by the record activity the moment it is stored, as the
# translate activity tells a success; before, this workflow signalled the group itself.
FAILURE_TOLD_ON_RECORD = "failure-told-on-record"
# Jobs whose pipeline switches on aiReview or backTranslation translate into a draft, run
# those stages on it and then store it; before, every job stored its translation at once.
PIPELINE_STAGES = "pipeline-stages"

RECORD_TIMEOUT = timedelta(seconds=10)
RECORD_RETRY = RetryPolicy(maximum_interval=timedelta(seconds=30))


class _Ended(Exception):
    """An activity of the job ended it (or a cancel came): the status to record, the error."""

    def __init__(self, final: str, error: str | None = None) -> None:
        super().__init__(final)
        self.final, self.error = final, error


def _retry(options: JobOptions) -> RetryPolicy:
    """The retry policy of the job's translate and of each stage after it."""
    return RetryPolicy(
        initial_interval=timedelta(seconds=options.translate_initial_interval_seconds),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(minutes=1),
        maximum_attempts=options.translate_max_attempts,
    )


def _error_message(err: ActivityError) -> str:
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


@workflow.defn(name="LocaleJobWorkflow")
class LocaleJobWorkflow:
    def __init__(self) -> None:
        # Whether the record activity told the group of this job's failure.
        self._failure_told = False

    @workflow.run
    async def run(self, job: LocaleJobInput) -> LocaleJobResult:
        final, error = await self._translate(job)
        if final != contract.CANCELLED and workflow.patched(WEBHOOK_DELIVERY):
            if final == contract.FAILED and not self._failure_told:
                await self._tell_group(job, final, error)
            await self._deliver(job, final)
        return LocaleJobResult(status=final, error=error)

    async def _translate(self, job: LocaleJobInput) -> tuple[str, str | None]:
        """Translate and store the output (with stages after translate: into a draft that
        they improve, then stored); on failure or cancel, record that instead. Returns the
        job's terminal status and error."""
        stages = job.pipeline
        try:
            if (
                stages is not None
                and (stages.ai_review or stages.back_translation)
                and workflow.patched(PIPELINE_STAGES)
            ):
                return await self._staged(job)
            result: TranslateJobResult = await self._execute(
                job,
                TRANSLATE_JOB,
                TranslateJobInput(job_id=job.job_id),
                TranslateJobResult,
                f"translate {job.source_locale} -> {job.target_locale}",
            )
            # The activity stored the output and the success status together.
            return result.status, None
        except _Ended as ended:
            final, error = ended.final, ended.error

        # The group hears of a failure now, not when this workflow completes: it may be busy
        # delivering the webhook for hours. (A success was told by the translate activity;
        # a cancel came from the group.)
        self._failure_told = final == contract.FAILED and workflow.patched(FAILURE_TOLD_ON_RECORD)
        tell = job.group_id if self._failure_told else None
        stored = await record_job(job.job_id, final, error, tell_group=tell)
        return stored, error if stored == contract.FAILED else None

    async def _execute(
        self, job: LocaleJobInput, activity: str, arg: Any, result_type: type[Any], summary: str
    ) -> Any:
        """Run one of the job's activities to its end; a database outage is waited out.
        Raises ``_Ended`` when it failed for good (``failed`` with its error) or a cancel
        came (``cancelled``)."""
        options = job.options
        rounds = 0
        while True:
            try:
                return await workflow.execute_activity(
                    activity,
                    arg,
                    result_type=result_type,
                    start_to_close_timeout=timedelta(seconds=options.translate_timeout_seconds),
                    heartbeat_timeout=timedelta(seconds=options.translate_heartbeat_seconds),
                    retry_policy=_retry(options),
                    summary=summary,
                    # On cancel, wait until the activity has really stopped.
                    cancellation_type=ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
                )
            except ActivityError as err:
                if isinstance(err.cause, CancelledError):
                    raise _Ended(contract.CANCELLED) from None
                if not database_unavailable(err):
                    raise _Ended(contract.FAILED, _error_message(err)) from None
                rounds += 1
                try:
                    await wait_for_database(rounds, f"{activity} {job.job_id}")
                except asyncio.CancelledError:
                    raise _Ended(contract.CANCELLED) from None
            except asyncio.CancelledError:
                # The group (or an operator) cancelled this job: record it and end normally.
                raise _Ended(contract.CANCELLED) from None

    async def _staged(self, job: LocaleJobInput) -> tuple[str, str | None]:
        """Translate into a draft, run the stages switched on over it in pipeline order,
        then store it as the output (``finish_job`` tells the group). A stage that fails
        for good leaves the draft as it was and a warning: never a failed job."""
        stages = job.pipeline
        assert stages is not None
        pair = f"{job.source_locale} -> {job.target_locale}"
        await self._execute(
            job,
            TRANSLATE_JOB,
            TranslateJobInput(job_id=job.job_id, draft=True),
            TranslateJobResult,
            f"translate {pair} (draft)",
        )
        failed: list[str] = []
        steps = [
            (stages.ai_review, contract.AI_REVIEW, REVIEW_JOB),
            (stages.back_translation, contract.BACK_TRANSLATION, BACK_TRANSLATE_JOB),
        ]
        for enabled, stage, activity in steps:
            if not enabled:
                continue
            arg = StageJobInput(job_id=job.job_id)
            if stage == contract.AI_REVIEW:
                arg.threshold, arg.model = stages.ai_review_threshold, stages.ai_review_model
            try:
                await self._execute(job, activity, arg, StageJobResult, f"{stage} {pair}")
            except _Ended as ended:
                if ended.final == contract.CANCELLED:
                    raise
                workflow.logger.warning("%s of %s failed: %s", stage, job.job_id, ended.error)
                failed.append(stage)
        result: TranslateJobResult = await self._execute(
            job,
            FINISH_JOB,
            FinishJobInput(job_id=job.job_id, failed_stages=failed),
            TranslateJobResult,
            f"finish {pair}",
        )
        return result.status, None

    async def _tell_group(self, job: LocaleJobInput, final: str, error: str | None) -> None:
        """Tell the group of a failure, as jobs started before ``FAILURE_TOLD_ON_RECORD``
        did (their histories replay this signal)."""
        try:
            group = workflow.get_external_workflow_handle(job.group_id)
            await group.signal(SIGNAL_JOB_FINISHED, JobFinished(job.job_id, final, error))
        except Exception as err:  # a closed group: its rows are recorded all the same
            workflow.logger.warning("could not tell %s about %s: %s", job.group_id, job.job_id, err)

    async def _deliver(self, job: LocaleJobInput, final: str) -> None:
        """Deliver the terminal event; its outcome never changes the job's status.

        A success event is delivered even if this workflow is cancelled meanwhile (the
        receiver is owed it). A failure event stops when cancelled: that happens when the
        group retries the job, whose new run will have its own event."""
        delivery = DeliverWebhookInput(
            job_id=job.job_id,
            event_id=job_event_id(job.job_id, workflow.info().run_id),
            options=job.options.webhook,
        )
        summary = f"webhook {contract.webhook_event(final)}"
        sending = asyncio.ensure_future(deliver_event(delivery, summary))
        while True:
            try:
                await asyncio.shield(sending)
                return
            except asyncio.CancelledError:
                if final == contract.FAILED:
                    sending.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await sending
                    return
