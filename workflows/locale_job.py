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
from workflows.job_records import RECORD_RETRY, RECORD_TIMEOUT, error_message, record_job
from workflows.messages import (
    AWAIT_REVIEW_JOB,
    BACK_TRANSLATE_JOB,
    FINISH_JOB,
    REVIEW_JOB,
    REVIEW_UPDATE,
    SIGNAL_JOB_FINISHED,
    STORE_REVIEW,
    TRANSLATE_JOB,
    AwaitReviewInput,
    DeliverWebhookInput,
    FinishJobInput,
    FirstAttempt,
    JobFinished,
    JobOptions,
    LocaleJobInput,
    LocaleJobResult,
    ReviewInput,
    StageJobInput,
    StageJobResult,
    StoreReviewInput,
    TranslateJobInput,
    TranslateJobResult,
)
from workflows.outages import database_unavailable, provider_busy, wait_for_database
from workflows.review import (
    Decision,
    ReviewEnd,
    review_refused,
    review_settings,
    show_review_status,
)
from workflows.webhooks import deliver_event, job_event_id, review_event_id

# Workflow change markers (``workflow.patched``): jobs started before webhooks existed end
# without delivering one.
WEBHOOK_DELIVERY = "webhook-delivery"
# A failure is told to the group by the record activity the moment it is stored, as the
# translate activity tells a success; before, this workflow signalled the group itself.
FAILURE_TOLD_ON_RECORD = "failure-told-on-record"
# Jobs whose pipeline switches on aiReview or backTranslation translate into a draft, run
# those stages on it and then store it; before, every job stored its translation at once.
PIPELINE_STAGES = "pipeline-stages"
# Jobs whose pipeline switches on humanReview wait for a person after aiReview and before
# backTranslation, then store their draft (workflows/review.py).
HUMAN_REVIEW = "human-review"


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


@workflow.defn(name="LocaleJobWorkflow")
class LocaleJobWorkflow:
    def __init__(self) -> None:
        # Whether the record activity told the group of this job's failure.
        self._failure_told = False
        self._job_id = ""
        # humanReview: the round waiting for a review (None while not waiting), the
        # decision the ``review`` update brought, the review-requested webhooks sent.
        self._review_round: int | None = None
        self._decision: Decision | None = None
        self._notices: list[asyncio.Future[bool]] = []
        # The digest of the source's structure (await_review_job's answer), which an edit
        # sent with the update must have; None in histories from before it was answered.
        self._structure: str | None = None
        # Whether the job went into review (its end is then shown as TolkJobStatus), and
        # whether a cancel came while its terminal webhook was being delivered.
        self._reviewed = False
        self._cancel_came = False
        # How the first attempt of the terminal webhook went, when the activity that stored
        # the job's success made it (``LocaleJobInput.deliver_on_store``).
        self._first: FirstAttempt | None = None

    @workflow.run
    async def run(self, job: LocaleJobInput) -> LocaleJobResult:
        self._job_id = job.job_id
        final, error = await self._translate(job)
        if final != contract.CANCELLED and (
            job.deliver_on_store or workflow.patched(WEBHOOK_DELIVERY)
        ):
            if final == contract.FAILED and not self._failure_told:
                await self._tell_group(job, final, error)
            await self._deliver(job, final)
        await self._notices_done(final)
        if self._reviewed:
            show_review_status(job, final, f"review over; the job is {final}")
        return LocaleJobResult(status=final, error=error)

    async def _translate(self, job: LocaleJobInput) -> tuple[str, str | None]:
        """Translate and store the output (with stages after translate: into a draft that
        they improve, then stored); on failure or cancel, record that instead. Returns the
        job's terminal status and error."""
        stages = job.pipeline
        try:
            if (
                stages is not None
                and (stages.ai_review or stages.back_translation or stages.human_review)
                and (job.deliver_on_store or workflow.patched(PIPELINE_STAGES))
            ):
                return await self._staged(job)
            result: TranslateJobResult = await self._execute(
                job,
                TRANSLATE_JOB,
                TranslateJobInput(job_id=job.job_id, deliver=self._first_delivery(job)),
                TranslateJobResult,
                f"translate {job.source_locale} -> {job.target_locale}",
            )
            # The activity stored the output and the success status together (and, asked
            # to, made the first attempt of the webhook).
            self._first = result.webhook
            return result.status, None
        except _Ended as ended:
            final, error = ended.final, ended.error

        # The group hears of a failure now, not when this workflow completes: it may be busy
        # delivering the webhook for hours. (A success was told by the translate activity;
        # a cancel came from the group.)
        self._failure_told = final == contract.FAILED and (
            job.deliver_on_store or workflow.patched(FAILURE_TOLD_ON_RECORD)
        )
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
                busy = provider_busy(err)
                if busy is not None:
                    try:
                        await workflow.sleep(timedelta(seconds=busy), summary="provider busy")
                    except asyncio.CancelledError:
                        raise _Ended(contract.CANCELLED) from None
                    continue
                if not database_unavailable(err):
                    raise _Ended(contract.FAILED, error_message(err)) from None
                rounds += 1
                try:
                    await wait_for_database(rounds, f"{activity} {job.job_id}")
                except asyncio.CancelledError:
                    raise _Ended(contract.CANCELLED) from None
            except asyncio.CancelledError:
                # The group (or an operator) cancelled this job: record it and end normally.
                raise _Ended(contract.CANCELLED) from None

    async def _staged(self, job: LocaleJobInput) -> tuple[str, str | None]:
        """Translate into a draft and run the stages switched on in pipeline order
        (``translate -> aiReview -> humanReview -> backTranslation``), then store it as the
        output (``finish_job`` tells the group). backTranslation runs once, on the output
        the review ended with (the approved edit, else the draft). A stage that fails for
        good leaves the draft as it was and a warning: never a failed job."""
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
        failed = await self._ai_review(job, pair)
        review = ReviewEnd()
        if stages.human_review and (job.deliver_on_store or workflow.patched(HUMAN_REVIEW)):
            review, failed = await self._human_review(job, pair, failed)
        if stages.back_translation:
            arg = StageJobInput(job_id=job.job_id, review_id=review.review_id)
            failed += await self._stage(job, pair, contract.BACK_TRANSLATION, arg)
        result: TranslateJobResult = await self._execute(
            job,
            FINISH_JOB,
            FinishJobInput(
                job_id=job.job_id,
                failed_stages=failed,
                review_id=review.review_id,
                review_timed_out=review.timed_out,
                review_rounds=review.rounds,
                deliver=self._first_delivery(job),
            ),
            TranslateJobResult,
            f"finish {pair}",
        )
        self._first = result.webhook
        return result.status, None

    async def _ai_review(self, job: LocaleJobInput, pair: str) -> list[str]:
        """aiReview of the draft, when switched on; returns ``[aiReview]`` if it failed for
        good, else nothing."""
        stages = job.pipeline
        assert stages is not None
        if not stages.ai_review:
            return []
        arg = StageJobInput(
            job_id=job.job_id, threshold=stages.ai_review_threshold, model=stages.ai_review_model
        )
        return await self._stage(job, pair, contract.AI_REVIEW, arg)

    async def _stage(
        self, job: LocaleJobInput, pair: str, stage: str, arg: StageJobInput
    ) -> list[str]:
        """Run one optional stage's activity; returns ``[stage]`` if it failed for good (a
        cancel still ends the job), else nothing."""
        activity = REVIEW_JOB if stage == contract.AI_REVIEW else BACK_TRANSLATE_JOB
        try:
            await self._execute(job, activity, arg, StageJobResult, f"{stage} {pair}")
        except _Ended as ended:
            if ended.final == contract.CANCELLED:
                raise
            workflow.logger.warning("%s of %s failed: %s", stage, job.job_id, ended.error)
            return [stage]
        return []

    async def _human_review(
        self, job: LocaleJobInput, pair: str, failed: list[str]
    ) -> tuple[ReviewEnd, list[str]]:
        """Wait for a review, round after round: each round marks the job awaiting_review
        (the activity tells the group), sends ``translation.review_requested`` without
        waiting for it, and waits on the ``review`` update or the timeout's timer (no
        worker is held). A reject translates again with its comment and reruns aiReview
        before asking again; the last round's reject, or a timeout with ``onTimeout:
        fail``, fails the job (raises ``_Ended``). Returns how the review ended and the
        failed stages."""
        timeout, on_timeout = review_settings(job)
        for round_ in range(1, contract.REVIEW_MAX_ROUNDS + 1):
            decision = await self._review_round_of(job, pair, round_, timeout)
            if decision is None:  # the timeout came first
                if on_timeout == contract.ON_TIMEOUT_FAIL:
                    raise _Ended(contract.FAILED, contract.REVIEW_TIMED_OUT_ERROR)
                return ReviewEnd(timed_out=True, rounds=round_), failed
            if decision.action == contract.APPROVE:
                return ReviewEnd(review_id=decision.review_id, rounds=round_), failed
            if round_ == contract.REVIEW_MAX_ROUNDS:
                raise _Ended(contract.FAILED, contract.REVIEW_REJECTED_OUT)
            again = TranslateJobInput(job_id=job.job_id, draft=True, review_id=decision.review_id)
            await self._execute(
                job, TRANSLATE_JOB, again, TranslateJobResult, f"translate {pair} (review)"
            )
            failed = await self._ai_review(job, pair)
        raise AssertionError("unreachable: the last round returns or raises")

    async def _review_round_of(
        self, job: LocaleJobInput, pair: str, round_: int, timeout_seconds: int
    ) -> Decision | None:
        """One round: mark the job awaiting review, send its webhook beside the wait, and
        wait for the ``review`` update's decision, or None when the timeout came first. The
        job is open to reviews only inside this round (its row says awaiting_review, which
        the API checks, before this workflow hears that the activity is done)."""
        self._review_round, self._decision, self._reviewed = round_, None, True
        try:
            waiting = AwaitReviewInput(job.job_id, job.group_id, round_, timeout_seconds)
            answer = await self._execute(
                job, AWAIT_REVIEW_JOB, waiting, str, f"await review {pair}"
            )
            self._structure = answer if answer.startswith(contract.STRUCTURE_PREFIX) else None
            due = workflow.now() + timedelta(seconds=timeout_seconds)
            show_review_status(
                job,
                contract.AWAITING_REVIEW,
                f"awaiting review, round {round_} of {contract.REVIEW_MAX_ROUNDS},"
                f" due {due:%Y-%m-%d %H:%M} UTC",
            )
            self._notices.append(asyncio.ensure_future(self._notify_review(job, round_)))
            try:
                await workflow.wait_condition(
                    lambda: self._decision is not None,
                    timeout=timedelta(seconds=timeout_seconds),
                    timeout_summary="review timeout",
                )
            except TimeoutError:
                # A review taken in the same activation as the timer stands.
                if self._decision is None:
                    show_review_status(job, contract.PROCESSING, "review timed out")
                    return None
            except asyncio.CancelledError:
                raise _Ended(contract.CANCELLED) from None
            decision = self._decision
            assert decision is not None
            show_review_status(
                job, contract.PROCESSING, f"review round {round_}: {decision.action}"
            )
            return decision
        finally:
            self._review_round = None  # closed to reviews, however the round ended

    async def _notify_review(self, job: LocaleJobInput, round_: int) -> bool:
        """``translation.review_requested`` for this round (its own webhook-id)."""
        delivery = DeliverWebhookInput(
            job_id=job.job_id,
            event_id=review_event_id(job.job_id, workflow.info().run_id, round_),
            options=job.options.webhook,
            event=contract.TRANSLATION_REVIEW_REQUESTED,
        )
        return await deliver_event(delivery, f"webhook {contract.TRANSLATION_REVIEW_REQUESTED}")

    async def _notices_done(self, final: str) -> None:
        """Let the review-requested webhooks finish before the workflow closes (which would
        abandon them). A cancel drops those still being tried, whenever it came: a
        cancelled job, a retry of the group cancelling this run (which waits for it to
        close), a cancel while they finish."""
        drop = final == contract.CANCELLED or self._cancel_came
        for notice in self._notices:
            if drop:
                notice.cancel()
            try:
                await notice
            except asyncio.CancelledError:
                drop = True

    @workflow.update(name=REVIEW_UPDATE)
    async def review(self, review: ReviewInput) -> str:
        """A person's review of the job awaiting it: approve (with an optional edit) or
        reject (with a comment). The API stores the review first and sends its id only; an
        operator may send ``data``/``comment`` here directly (``temporal workflow update
        execute --name review``), which then enter this workflow's history, and an
        activity validates and stores them."""
        round_ = self._review_round
        assert round_ is not None  # the validator let it in
        review_id = review.review_id
        if review_id is None:
            try:
                review_id = await workflow.execute_activity(
                    STORE_REVIEW,
                    StoreReviewInput(job_id=self._job_id, round=round_, review=review),
                    result_type=str,
                    start_to_close_timeout=RECORD_TIMEOUT,
                    retry_policy=RECORD_RETRY,
                    summary="store review",
                )
            except ActivityError as err:
                raise ApplicationError(error_message(err), type="ReviewRefused") from None
        if self._review_round != round_ or self._decision is not None:
            raise ApplicationError(contract.NOT_AWAITING_REVIEW, type="NotAwaitingReview")
        self._decision = Decision(action=review.action, review_id=review_id)
        return review.action

    @review.validator
    def _validate_review(self, review: ReviewInput) -> None:
        waiting = self._review_round if self._decision is None else None
        refused = review_refused(review, waiting, self._structure)
        if refused:
            raise ValueError(refused)

    async def _deliver_later(
        self, delivery: DeliverWebhookInput, delay_seconds: float, summary: str
    ) -> bool:
        if delay_seconds > 0:
            await workflow.sleep(timedelta(seconds=delay_seconds), summary="webhook retry")
        return await deliver_event(delivery, summary)

    async def _tell_group(self, job: LocaleJobInput, final: str, error: str | None) -> None:
        """Tell the group of a failure, as jobs started before ``FAILURE_TOLD_ON_RECORD``
        did (their histories replay this signal)."""
        try:
            group = workflow.get_external_workflow_handle(job.group_id)
            await group.signal(SIGNAL_JOB_FINISHED, JobFinished(job.job_id, final, error))
        except Exception as err:  # a closed group: its rows are recorded all the same
            workflow.logger.warning("could not tell %s about %s: %s", job.group_id, job.job_id, err)

    def _terminal_delivery(self, job: LocaleJobInput) -> DeliverWebhookInput:
        return DeliverWebhookInput(
            job_id=job.job_id,
            event_id=job_event_id(job.job_id, workflow.info().run_id),
            options=job.options.webhook,
        )

    def _first_delivery(self, job: LocaleJobInput) -> DeliverWebhookInput | None:
        """The terminal event, for the activity storing the job's success to make its first
        attempt (``deliver_on_store``); None: this workflow delivers it all."""
        return self._terminal_delivery(job) if job.deliver_on_store else None

    async def _deliver(self, job: LocaleJobInput, final: str) -> None:
        """Deliver the terminal event; its outcome never changes the job's status. When the
        activity that stored the job made the first attempt, what is left of the series:
        nothing once delivered, skipped or ended for good, else attempt 2 after its delay.

        A success event is delivered even if this workflow is cancelled meanwhile (the
        receiver is owed it). A failure event stops when cancelled: that happens when the
        group retries the job, whose new run will have its own event."""
        first = self._first
        if first is not None and first.outcome != contract.RETRYING:
            return
        delivery = self._terminal_delivery(job)
        summary = f"webhook {contract.webhook_event(final)}"
        if first is not None:
            delivery.first_attempt = 2
            sending = asyncio.ensure_future(
                self._deliver_later(delivery, first.retry_in_seconds, summary)
            )
        else:
            sending = asyncio.ensure_future(deliver_event(delivery, summary))
        while True:
            try:
                await asyncio.shield(sending)
                return
            except asyncio.CancelledError:
                self._cancel_came = True
                if final == contract.FAILED:
                    sending.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await sending
                    return
