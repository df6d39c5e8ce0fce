"""Activities of a job's stages after translate (API.md "Pipeline stages"): ``review_job``
(``aiReview``), ``back_translate_job`` (``backTranslation``) and ``finish_job``.

A job whose pipeline switches a stage on is translated into a draft (``translate_job`` with
``draft``); each stage reads the source and the draft here, replaces the draft and appends
its step record and warnings; ``finish_job`` stores the draft as the output with the
success status and tells the group, as ``translate_job`` does for a job without stages.
Inputs are job ids and stage settings, so no user content enters workflow history. Every
write is conditional: a job that ended meanwhile (a cancel) keeps its end.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

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
)
from activities.step_records import added_usage, current, iso, priced
from activities.translation import run_stage_with_engine
from localization.batch import ProviderBusy
from localization.dispatch import SpendStopped
from localization.engine_plan import EngineUnusable
from localization.pipeline import TranslationFailed
from localization.review import StageOutcome
from store import documents, jobs, reviews
from store.tables import Job
from workflows.messages import (
    BACK_TRANSLATE_JOB,
    FINISH_JOB,
    REVIEW_JOB,
    SIGNAL_JOB_REVIEW,
    FinishJobInput,
    StageJobInput,
    StageJobResult,
    TranslateJobResult,
)


def _with_step(steps: list[dict[str, Any]], step: dict[str, Any]) -> list[dict[str, Any]]:
    """``steps`` with ``step`` in place of a current record of its stage (an attempt that
    failed before, humanReview's waiting record), else appended: the records stay in the
    order the stages started, those of earlier review rounds as they are."""

    def replaced(s: dict[str, Any]) -> bool:
        return s.get("stepId") == step["stepId"] and "round" not in s

    if not any(replaced(s) for s in steps):
        return [*steps, step]
    return [step if replaced(s) else s for s in steps]


def _stage_step(
    stage: str, status: str, started: datetime, outcome: StageOutcome | None, **extra: Any
) -> dict[str, Any]:
    """A stage's step record: its models, the models that gave up, times, its figures."""
    step: dict[str, Any] = {"stepId": stage, "status": status}
    if outcome is not None:
        step.update(model=outcome.model, models=outcome.models, fallbacks=outcome.fallbacks)
    step.update(startedAt=iso(started), completedAt=iso(datetime.now(UTC)))
    step.update(outcome.figures if outcome is not None else {})
    return {**step, **extra}


def _usage(usage: dict[str, Any], outcome: StageOutcome) -> dict[str, Any]:
    added = {
        "inputTokens": outcome.input_tokens,
        "outputTokens": outcome.output_tokens,
        "providerCalls": outcome.calls,
    }
    return added_usage(usage, added)


class StageActivities(EngineActivities):
    @activity.defn(name=REVIEW_JOB)
    async def review_job(self, stage: StageJobInput) -> StageJobResult:
        """``aiReview`` of the job's draft (``localization/review.py::review_document``)."""
        return await self._run(contract.AI_REVIEW, stage)

    @activity.defn(name=BACK_TRANSLATE_JOB)
    async def back_translate_job(self, stage: StageJobInput) -> StageJobResult:
        """``backTranslation`` of the job's draft (``review.py::back_translate``)."""
        return await self._run(contract.BACK_TRANSLATION, stage)

    async def _load(self, job_id: str) -> Job:
        async with self.db.session() as session:
            job = await session.get(Job, job_id)
        if job is None:
            raise job_row_missing(job_id)
        return job

    async def _run(self, stage: str, stage_input: StageJobInput) -> StageJobResult:
        """Run ``stage`` on the draft and store its result as the new draft. Idempotent: a
        stage whose completed step is stored already answers at once. On a failure, the
        attempt's failed step is kept (the draft is not touched) and the error raised:
        retryable when a provider was unreachable."""
        job = await self._load(stage_input.job_id)
        if job.status == contract.AWAITING_REVIEW and stage == contract.BACK_TRANSLATION:
            job = await self._leave_review(job)
        if job.status != contract.PROCESSING:
            raise job_ended(job.id, job.status)
        done = [s for s in current(job.steps or []) if s.get("stepId") == stage]
        if done and done[-1].get("status") == contract.STEP_COMPLETED:
            return StageJobResult(status=contract.STEP_COMPLETED, warnings=0)
        if job.draft_ref is None:
            raise ApplicationError(f"job {job.id} has no draft", type="NoDraft", non_retryable=True)
        async with self.db.session() as session:
            group, engine = await group_and_engine(session, job)
            org = group.organization_id
            source = await documents.get_document(session, org, group.source_ref)
            draft_ref = await self._reviewed_ref(session, job, stage_input.review_id)
            draft = await documents.get_document(session, org, draft_ref)

        started = datetime.now(UTC)
        try:
            async with heartbeating():
                outcome = await run_stage_with_engine(
                    stage,
                    source,
                    draft,
                    self.engine_run(job, group, engine, group.context),
                    threshold=stage_input.threshold,
                    reviewer=stage_input.model,
                )
        except EngineUnusable as err:
            step = _stage_step(stage, contract.STEP_FAILED, started, None, error=str(err))
            await self.keep_failed_steps(job.id, _with_step(job.steps or [], step))
            raise engine_unusable(err) from None
        except ProviderBusy as err:
            raise provider_busy(err) from None
        except SpendStopped as err:
            # A spending limit fails the job, not only the stage (whose failure would leave
            # the draft as the output): recorded here, so the stages after it and finish_job
            # find the job ended.
            step = _stage_step(stage, contract.STEP_FAILED, started, None, error=err.code)
            steps = _with_step(job.steps or [], step)
            async with self.db.writing() as session:
                stored = await jobs.record_job_result(
                    session, job.id, status=contract.FAILED, error=str(err), steps=steps
                )
            if stored == contract.FAILED:
                metrics.job_ended(stored)
                await tell_group(job.group_id, job.id, stored, str(err))
            raise spend_stopped(err) from None
        except TranslationFailed as err:
            step = _stage_step(
                stage, contract.STEP_FAILED, started, None, fallbacks=err.fallbacks, error=str(err)
            )
            await self.keep_failed_steps(job.id, _with_step(job.steps or [], step))
            raise attempt_failed(err, "StageFailed") from None
        step = _stage_step(stage, contract.STEP_COMPLETED, started, outcome)
        step.update(priced(outcome.model, outcome.input_tokens, outcome.output_tokens, self.prices))
        if stage_input.review_id is not None:
            step["review"] = stage_input.review_id  # it checked that review's output
        await self.store_draft(
            job.id,
            outcome.output,
            warnings=[*(job.warnings or []), *outcome.warnings],
            usage=_usage(job.usage or {}, outcome),
            steps=_with_step(job.steps or [], step),
        )
        return StageJobResult(status=contract.STEP_COMPLETED, warnings=len(outcome.warnings))

    async def _leave_review(self, job: Job) -> Job:
        """A job whose review ended goes back to processing for the stages after it (the
        group hears that it left awaiting_review)."""
        async with self.db.writing() as session:
            await reviews.leave_review(session, job.id)
        await tell_group(job.group_id, job.id, contract.PROCESSING, signal=SIGNAL_JOB_REVIEW)
        return await self._load(job.id)

    async def _reviewed_ref(self, session: Any, job: Job, review_id: str | None) -> str:
        """The translation a stage works on: the approving review's edit, else the draft."""
        assert job.draft_ref is not None
        if review_id is None:
            return job.draft_ref
        review = await reviews.get_review(session, job.id, review_id)
        return (review.data_ref if review is not None else None) or job.draft_ref

    async def _reviewed(
        self, job: Job, finish: FinishJobInput, now: datetime
    ) -> tuple[str | None, dict[str, Any], dict[str, Any] | None]:
        """What humanReview leaves: the approved output (the reviewer's edit, or None for
        the draft), its step record, and a review_timed_out warning when no one came."""
        waiting = reviews.waiting_step(job) or {}
        started = waiting.get("startedAt") or iso(now)
        step: dict[str, Any] = {
            "stepId": contract.HUMAN_REVIEW,
            "status": contract.STEP_COMPLETED,
            "startedAt": started,
            "completedAt": iso(datetime.now(UTC)),
            "rounds": finish.review_rounds,
        }
        if finish.review_timed_out:
            message = "no review came before the review timeout; the output is unreviewed"
            step["action"] = "timeout"
            return None, step, {"code": contract.REVIEW_TIMED_OUT, "key": None, "message": message}
        async with self.db.session() as session:
            review = await reviews.get_review(session, job.id, finish.review_id or "")
        if review is None:
            raise ApplicationError(
                f"review {finish.review_id} of {job.id} not found",
                type="NoReview",
                non_retryable=True,
            )
        step.update(action=review.action, reviewer=review.reviewer)
        checked = any(
            s.get("stepId") == contract.BACK_TRANSLATION
            and s.get("status") == contract.STEP_COMPLETED
            and s.get("review") == review.id
            for s in job.steps or []
        )
        # backTranslation stored its check of the edit as the draft: that is the output.
        return (None if checked else review.data_ref), step, None

    @activity.defn(name=FINISH_JOB)
    async def finish_job(self, finish: FinishJobInput) -> TranslateJobResult:
        """Store the job's draft as its output with the success status, with a warning (and
        a failed step, if it has none) per stage that failed for good, and tell the group.
        Idempotent: a job that succeeded already answers so (and tells the group again, in
        case the attempt that stored it died before telling); one that ended otherwise
        keeps its end."""
        job = await self._load(finish.job_id)
        if job.status not in contract.SUCCEEDED:
            if job.status not in (contract.PROCESSING, contract.AWAITING_REVIEW):
                raise job_ended(job.id, job.status)
            if job.draft_ref is None:
                raise ApplicationError(
                    f"job {job.id} has no draft", type="NoDraft", non_retryable=True
                )
            warnings, steps = list(job.warnings or []), list(job.steps or [])
            now = datetime.now(UTC)
            for stage in finish.failed_stages:
                failed = next((s for s in current(steps) if s.get("stepId") == stage), None)
                if failed is None or failed.get("status") != contract.STEP_FAILED:
                    failed = _stage_step(stage, contract.STEP_FAILED, now, None)
                    steps = _with_step(steps, failed)
                reason = failed.get("error") or "it did not finish"
                message = f"the {stage} stage failed ({reason}); the output is the one before it"
                warnings.append({"code": contract.STAGE_FAILED, "key": None, "message": message})
            output_ref = None
            if finish.review_id is not None or finish.review_timed_out:
                output_ref, step, warning = await self._reviewed(job, finish, now)
                steps = _with_step(steps, step)
                warnings += [warning] if warning else []
            async with self.db.writing() as session:
                stored = await jobs.finish_draft(
                    session,
                    job.id,
                    draft_ref=job.draft_ref,
                    status=contract.success_status(warnings),
                    warnings=warnings,
                    steps=steps,
                    output_ref=output_ref,
                )
            job = await self._load(finish.job_id)
            if stored not in contract.SUCCEEDED:
                raise job_ended(job.id, job.status)
            metrics.job_ended(stored)
        return await self.announce_success(job, stored_result(job), finish.deliver)
