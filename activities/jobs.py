"""Activities of one job group: translate a locale, record results in the database.

Inputs and outputs are references (job and group ids); documents are read from and written
to the database here, so no user content ever enters workflow history.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio import activity
from temporalio.exceptions import ApplicationError

import contract
from activities import metrics
from activities.engine_activities import (
    EngineActivities,
    attempt_failed,
    engine_unusable,
    group_and_engine,
    heartbeating,
    job_ended,
    job_row_missing,
    provider_busy,
    spend_stopped,
    stored_result,
    tell_group,
    told_result,
)
from activities.step_records import (
    added_usage,
    current,
    iso,
    of_earlier_round,
    priced,
    review_ended,
)
from activities.translation import EngineTranslationFailed, translate_with_engine
from localization.batch import ProviderBusy
from localization.dispatch import SpendStopped
from localization.engine_plan import EngineUnusable
from store import documents, groups, jobs, reviews
from store.tables import Job
from workflows.messages import (
    RECORD_GROUP_RESULT,
    RECORD_JOB_RESULT,
    RESET_JOBS,
    SIGNAL_JOB_REVIEW,
    TRANSLATE_JOB,
    RecordGroupResultInput,
    RecordJobResultInput,
    ResetJobsInput,
    TranslateJobInput,
    TranslateJobResult,
)


def _step(
    outcome: str,
    started: datetime,
    model: str,
    models: list[str],
    fallbacks: list[dict[str, str]],
) -> dict[str, Any]:
    """The job's ``translate`` step record (API: ``steps[]``)."""
    return {
        "stepId": contract.TRANSLATE_STEP,
        "status": outcome,
        "model": model,
        "models": models,
        "fallbacks": fallbacks,
        "startedAt": iso(started),
        "completedAt": iso(datetime.now(UTC)),
    }


async def _with_review_comment(
    session: AsyncSession, job: Job, review_id: str, context: str | None
) -> str | None:
    """The group's context with a reject's comment added as the reviewer's instruction
    (a different context also keeps translation memory from answering as before)."""
    review = await reviews.get_review(session, job.id, review_id)
    if review is None or not review.comment:
        return context
    instruction = f"A reviewer rejected the previous translation: {review.comment}"
    return f"{context}\n\n{instruction}" if context else instruction


class JobActivities(EngineActivities):
    @activity.defn(name=TRANSLATE_JOB)
    async def translate_job(self, job_input: TranslateJobInput) -> TranslateJobResult:
        """Translate the job's document and store the output with the success status (with
        ``draft``, as the job's draft for the stages after it, the job still processing and
        its group not told). Idempotent: a job whose output (or draft) is stored already (an
        earlier attempt stored it, then its worker died before answering) gets that
        output's result at once."""
        async with self.db.writing() as session:
            job = await jobs.mark_job_processing(session, job_input.job_id)
            if job is None:
                raise job_row_missing(job_input.job_id)
            ended = job.status in contract.TERMINAL
        if ended:  # outside the write: announcing it may record a webhook attempt
            return await self._already_done(job, job_input)
        async with self.db.session() as session:  # reads only: no need of the write lock
            translated = next(
                (
                    st
                    for st in current(job.steps or [])
                    if st.get("stepId") == contract.TRANSLATE_STEP
                ),
                {},
            )
            # This round's translation is stored already (an attempt died after storing it).
            already = job_input.draft and job.draft_ref is not None
            already = already and translated.get("review") == job_input.review_id
            if not already:
                group, engine = await group_and_engine(session, job)
                org = group.organization_id
                data = await documents.get_document(session, org, group.source_ref)
                context = group.context
                if job_input.review_id is not None:
                    context = await _with_review_comment(session, job, job_input.review_id, context)
        if job_input.review_id is not None:  # out of awaiting_review: the group hears of it
            await tell_group(
                job.group_id,
                job.id,
                contract.PROCESSING,
                signal=SIGNAL_JOB_REVIEW,
                best_effort=False,
            )
        if already:
            return stored_result(job)
        # After a reject: the rejected round's records stay, with their round, and what
        # they used still counts.
        kept: list[dict[str, Any]] = []
        used: dict[str, Any] = {}
        if job_input.review_id is not None:
            rejected = reviews.waiting_step(job) or {}
            kept = of_earlier_round(job.steps or [], int(rejected.get("rounds") or 1))
            used = job.usage or {}

        started = datetime.now(UTC)
        run = self.engine_run(job, group, engine, context)
        try:
            # Heartbeat so that an attempt on a worker that died is retried elsewhere
            # quickly; a cancel arrives as CancelledError at the next await.
            async with heartbeating():
                result = await translate_with_engine(data, run)
        except EngineUnusable as err:
            raise engine_unusable(err) from None
        except ProviderBusy as err:
            raise provider_busy(err) from None
        except SpendStopped as err:
            # A budget or the group's cost fuse: what the batches in flight translated is in
            # memory; the job fails for good (its error names the limit).
            step = _step(contract.STEP_FAILED, started, run.plan().chain[0].label, [], [])
            await self.keep_failed_steps(job.id, [*kept, {**step, "error": err.code}])
            raise spend_stopped(err) from None
        except EngineTranslationFailed as err:
            step = _step(contract.STEP_FAILED, started, err.planned, [], err.fallbacks)
            await self.keep_failed_steps(job.id, [*kept, step])
            raise attempt_failed(err, "TranslationFailed") from None
        step = _step(
            contract.STEP_COMPLETED, started, result.model, result.models, result.fallbacks
        )
        step.update(priced(result.model, result.input_tokens, result.output_tokens, self.prices))
        if job_input.review_id is not None:
            step["review"] = job_input.review_id
        if job_input.draft:
            await self.store_draft(
                job.id,
                result.output,
                warnings=result.warnings,
                usage=added_usage(result.usage(), used),
                steps=[*kept, step],
            )
            return TranslateJobResult(
                strings=result.strings, warnings=len(result.warnings), status=contract.PROCESSING
            )
        final = contract.success_status(result.warnings)
        async with self.db.writing() as session:
            stored = await jobs.complete_job(
                session,
                job.id,
                status=final,
                output=documents.encode_document(result.output),
                warnings=result.warnings,
                usage=result.usage(),
                steps=[step],
            )
        if stored not in contract.SUCCEEDED:  # cancelled or failed meanwhile: that stands
            raise job_ended(job.id, stored)
        metrics.job_ended(final)
        done = TranslateJobResult(
            strings=result.strings, warnings=len(result.warnings), status=final
        )
        return await self.announce_success(job, done, job_input.deliver)

    async def _already_done(self, job: Job, job_input: TranslateJobInput) -> TranslateJobResult:
        """The result of a job that ended before this attempt: its stored output when it
        succeeded (announced again, in case the attempt that stored it died before
        telling the group or making the webhook's first attempt), else the end that stands."""
        if job.status not in contract.SUCCEEDED:
            raise job_ended(job.id, job.status)
        if job_input.draft:  # a draft's job is told by finish_job
            return await told_result(job)
        return await self.announce_success(job, stored_result(job), job_input.deliver)

    @activity.defn(name=RECORD_JOB_RESULT)
    async def record_job_result(self, record: RecordJobResultInput) -> str:
        """Record a job's end unless it has one; answers with the status that stands, and
        tells ``record.group_id`` when it is the one recorded (again, on a retried
        attempt: the one that stored it may have died before telling)."""
        async with self.db.writing() as session:
            job = await session.get(Job, record.job_id)
            if job is None:
                raise job_row_missing(record.job_id)
            steps = review_ended(job.steps or [], record.status, record.error, datetime.now(UTC))
            try:
                stored = await jobs.record_job_result(
                    session, record.job_id, status=record.status, error=record.error, steps=steps
                )
            except LookupError:
                raise job_row_missing(record.job_id) from None
        if stored == record.status:  # this attempt recorded it (or an earlier one died after)
            metrics.job_ended(stored)
        if record.group_id is not None and stored == record.status:
            await tell_group(record.group_id, record.job_id, stored, record.error)
        return stored

    @activity.defn(name=RESET_JOBS)
    async def reset_jobs(self, reset: ResetJobsInput) -> dict[str, str]:
        """Requeue failed and cancelled jobs; answers each job's status afterwards (one
        that ended otherwise meanwhile keeps its end and is not run again)."""
        async with self.db.writing() as session:
            return await jobs.reset_jobs(session, reset.group_id, reset.job_ids)

    @activity.defn(name=RECORD_GROUP_RESULT)
    async def record_group_result(self, record: RecordGroupResultInput) -> None:
        async with self.db.writing() as session:
            try:
                await groups.record_group_result(
                    session, record.group_id, record.status, record.log
                )
            except LookupError:  # the group's workflow then fails, visibly
                raise ApplicationError(
                    f"group {record.group_id} has no row in the database",
                    type="GroupRowMissing",
                    non_retryable=True,
                ) from None
