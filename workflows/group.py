"""GroupWorkflow: one job group.

Starts a LocaleJobWorkflow per target locale, keeps the group's live state for the
``snapshot`` query, records the terminal state, and completes once its job workflows have
closed (their webhooks delivered or given up) and ``linger_seconds`` have passed. A retry
later lands here while it runs, or on a new run that knows the finished jobs
(``GroupInput.statuses`` and ``log``; starter.py).
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import Priority
from temporalio.exceptions import (
    ActivityError,
    CancelledError,
    ChildWorkflowError,
    WorkflowAlreadyStartedError,
)
from temporalio.workflow import ChildWorkflowCancellationType, ParentClosePolicy

import contract
from workflows.event_log import LogEntry
from workflows.group_state import GROUP_EVENT_AFTER_RECORD, GroupState
from workflows.job_records import RECORD_RETRY, RECORD_TIMEOUT, record_job
from workflows.locale_job import LocaleJobWorkflow
from workflows.messages import (
    RECORD_GROUP_RESULT,
    RESET_JOBS,
    SIGNAL_JOB_FINISHED,
    SIGNAL_JOB_REVIEW,
    GroupInput,
    JobFinished,
    LocaleJobInput,
    LocaleJobResult,
    RecordGroupResultInput,
    ResetJobsInput,
)

# Workflow change markers (``workflow.patched``): groups started before a change replay
# with the old behaviour (and GROUP_EVENT_AFTER_RECORD, in workflows/group_state.py).
# A retry marks its jobs queued before its first await, so a second retry racing it finds
# nothing to retry (instead of starting the same job workflow twice).
RETRY_MARKS_FIRST = "retry-marks-first"
# The group closes once its job workflows have closed (webhooks delivered or given up) and
# the linger window, usually short, has passed; before, it lingered for days.
CLOSE_AFTER_JOBS = "close-after-jobs"
# A job workflow that cannot start because its previous run is still closing is started
# again a moment later (before, the start error was lost and the job stayed queued).
CHILD_START_CONFLICT = "child-start-conflict"
CHILD_START_ATTEMPTS = 30
# Jobs are lean: the activity that stores a job's success makes the first attempt of its
# webhook, and the group hears of the end from the job workflow's completion (a signal only
# when that completion will be late); the group's memo is written once per workflow task.
# Groups with it have every change above, without asking for their markers (each first
# ``workflow.patched`` costs two history events).
LEAN_JOBS = "lean-jobs"

# Task-queue priority (1 runs first, 3 is the default): a group's workflow tasks only record
# news and answer progress, so they go ahead of the translation work of its jobs, which
# keeps live progress prompt while a burst of submissions backs the queue up.
GROUP_PRIORITY = Priority(priority_key=2)
JOB_PRIORITY = Priority(priority_key=3)


@workflow.defn(name="GroupWorkflow")
class GroupWorkflow:
    @workflow.init
    def __init__(self, group: GroupInput) -> None:
        self._group = group
        self._state = GroupState(group)  # the jobs' statuses and the event log
        self._tasks: dict[str, asyncio.Task[None]] = {}
        # A job's retries so far: a task of an earlier generation that ends late (its child
        # stopped by the retry) changes nothing.
        self._generation: dict[str, int] = {}
        # Set by a cancel; jobs that have not started yet see it and never start.
        self._cancel_requested = False
        self._recorded: tuple[str, int] | None = None  # (status, log length) last recorded
        self._lean = workflow.patched(LEAN_JOBS)
        self._state.lean = self._lean

    def _patched(self, change: str) -> bool:
        """``workflow.patched(change)``, true without a marker for a lean group (LEAN_JOBS
        came after every change)."""
        return self._lean or workflow.patched(change)

    @workflow.run
    async def run(self, group: GroupInput) -> str:
        for job in group.jobs:
            # By the input, not the state: a retry handled before this line (the update of
            # an update-with-start) starts its jobs itself.
            if job.job_id not in group.statuses:
                self._start_job(job.job_id)
        try:
            while True:
                await workflow.wait_condition(self._state.all_terminal)
                await self._record_group()
                if self._patched(CLOSE_AFTER_JOBS):
                    if await self._closable():
                        return self._closing()
                    continue
                # Stay open, idle (no worker needed), until the linger window ends or a
                # retry makes jobs non-terminal again.
                try:
                    await workflow.wait_condition(
                        lambda: not self._state.all_terminal(),
                        timeout=timedelta(seconds=group.options.linger_seconds),
                        timeout_summary="linger",
                    )
                except TimeoutError:
                    return self._closing()
        except asyncio.CancelledError:
            # `temporal workflow cancel`: cancel what is still running, record, and close.
            self._cancel_jobs()
            await workflow.wait_condition(self._state.all_terminal)
            await self._record_group()
            return self._closing()

    def _closing(self) -> str:
        """The group's result, once its memo is written."""
        self._state.flush_memo()
        return self._state.group_status()

    async def _closable(self) -> bool:
        """After the group's end is recorded: wait until every job workflow has closed
        (its webhook delivered or given up: closing the group earlier would cancel them)
        and no retry or cancel is being handled, then for the linger window. True when the
        group may close now; False when a retry made jobs run again."""
        await workflow.wait_condition(
            lambda: (
                not self._state.all_terminal()
                or (
                    all(task.done() for task in self._tasks.values())
                    and workflow.all_handlers_finished()
                )
            )
        )
        if not self._state.all_terminal():
            return False
        linger = self._group.options.linger_seconds
        if linger > 0:
            try:
                await workflow.wait_condition(
                    lambda: not self._state.all_terminal(),
                    timeout=timedelta(seconds=linger),
                    timeout_summary="linger",
                )
                return False
            except TimeoutError:
                pass
        return self._state.all_terminal() and workflow.all_handlers_finished()

    # --- jobs ----------------------------------------------------------------------------

    def _start_job(self, job_id: str) -> None:
        self._tasks[job_id] = asyncio.create_task(self._run_job(job_id))

    async def _run_job(self, job_id: str) -> None:
        state = self._state.jobs[job_id]
        generation = self._generation.get(job_id, 0)
        if self._cancel_requested:
            await self._record_job(job_id, contract.CANCELLED, None)
            return
        try:
            handle = await self._start_child(job_id, generation)
            if handle is None:
                if self._generation.get(job_id, 0) == generation:  # its last run never closed
                    await self._record_job(job_id, contract.FAILED, "job_workflow_still_running")
                return
            # Started is as close to "processing" as the group needs to know; the job's own
            # row says processing once translation really begins.
            if state.status == contract.QUEUED:
                self._state.set(job_id, contract.PROCESSING)
            result: LocaleJobResult = await handle
            if self._generation.get(job_id, 0) != generation:
                return  # stopped by a retry, which runs the job again
            self._state.set(job_id, result.status, result.error)
        except (ChildWorkflowError, asyncio.CancelledError) as err:
            if self._generation.get(job_id, 0) != generation or state.status in contract.TERMINAL:
                # The child told us its end already (job_finished) and was then cancelled
                # while delivering its webhook (by a retry): nothing changes for the job.
                return
            # The child could not record its own end: cancelled before it started,
            # terminated by an operator, or failed as a workflow. Record it here.
            cause = err.cause if isinstance(err, ChildWorkflowError) else err
            cancelled = isinstance(cause, (asyncio.CancelledError, CancelledError))
            final = contract.CANCELLED if cancelled else contract.FAILED
            error = None if cancelled else f"job workflow ended: {cause or err}"
            await self._record_job(job_id, final, error)

    async def _start_child(
        self, job_id: str, generation: int
    ) -> workflow.ChildWorkflowHandle[Any, Any] | None:
        """Start the job's workflow (id = job id). A previous run of it that is still
        closing (stopped by a retry, or left by a closed run of this group) is waited for,
        a little while; None if it never closes, or if a retry took over meanwhile."""
        group, state = self._group, self._state.jobs[job_id]
        for attempt in range(CHILD_START_ATTEMPTS):
            try:
                return await workflow.start_child_workflow(
                    LocaleJobWorkflow.run,
                    LocaleJobInput(
                        job_id=job_id,
                        group_id=group.group_id,
                        organization_id=group.organization_id,
                        source_locale=group.source_locale,
                        target_locale=state.locale,
                        options=group.options,
                        pipeline=group.pipeline,
                        deliver_on_store=self._lean,
                    ),
                    id=job_id,
                    parent_close_policy=ParentClosePolicy.REQUEST_CANCEL,
                    cancellation_type=ChildWorkflowCancellationType.WAIT_CANCELLATION_COMPLETED,
                    static_summary=f"{group.source_locale} -> {state.locale}",
                    priority=JOB_PRIORITY,
                )
            except WorkflowAlreadyStartedError:
                if not self._patched(CHILD_START_CONFLICT):
                    raise
                workflow.logger.warning("job workflow %s still running (%d)", job_id, attempt)
                await workflow.sleep(timedelta(seconds=min(2**attempt, 30)))
                if self._generation.get(job_id, 0) != generation:
                    return None
        return None

    async def _record_job(self, job_id: str, final: str, error: str | None) -> None:
        """Record a job's end for a child that could not (or never ran)."""
        stored = await record_job(job_id, final, error)
        self._state.set(job_id, stored, error if stored == contract.FAILED else None)

    def _cancel_jobs(self) -> list[str]:
        self._cancel_requested = True
        pending = [
            job_id for job_id, s in self._state.jobs.items() if s.status not in contract.TERMINAL
        ]
        for job_id in pending:
            task = self._tasks.get(job_id)
            if task is not None and not task.done():
                task.cancel()
        return pending

    async def _retry_jobs(self) -> list[str]:
        job_ids = [
            job_id
            for job_id, state in self._state.jobs.items()
            if state.status in contract.RETRYABLE
        ]
        if not job_ids:
            return []
        self._cancel_requested = False
        before = {job_id: self._state.jobs[job_id].status for job_id in job_ids}
        for job_id in job_ids:
            self._generation[job_id] = self._generation.get(job_id, 0) + 1
        # Queued before the first await: a second retry arriving meanwhile (a double click,
        # the API and an operator) finds nothing left to retry.
        marks_first = self._patched(RETRY_MARKS_FIRST)
        if marks_first:
            for job_id in job_ids:
                self._state.set(job_id, contract.QUEUED)
        # A failed job's workflow may still be delivering its failure webhook. The retry
        # supersedes that event: stop it, and let the old run close before a new one starts
        # under the same workflow id.
        for job_id in job_ids:
            previous = self._tasks.get(job_id)
            if previous is not None and not previous.done():
                previous.cancel()
                with contextlib.suppress(asyncio.CancelledError, ChildWorkflowError):
                    await previous
        if not marks_first:
            for job_id in job_ids:
                self._state.set(job_id, contract.QUEUED)
        try:
            # Each job's status afterwards (None in histories from before it answered).
            after: dict[str, str] | None = await workflow.execute_activity(
                RESET_JOBS,
                ResetJobsInput(group_id=self._group.group_id, job_ids=job_ids),
                result_type=dict,
                start_to_close_timeout=RECORD_TIMEOUT,
                retry_policy=RECORD_RETRY,
                summary=f"requeue {len(job_ids)} jobs",
            )
        except ActivityError as err:  # a defect: nothing was requeued; say so, change nothing
            workflow.logger.error("could not requeue %s: %s", job_ids, err.cause)
            self._state.restore(before)
            return []
        retried = []
        for job_id in job_ids:
            stands = (after or {}).get(job_id, contract.QUEUED)
            if stands != contract.QUEUED:
                # It ended meanwhile in the database (another retry ran it first): it stands,
                # and is not run twice.
                self._state.set(job_id, stands)
                continue
            self._start_job(job_id)
            retried.append(job_id)
        return retried

    # --- the group's end -----------------------------------------------------------------

    async def _record_group(self) -> None:
        """Record the terminal group in the database, then announce it (the group event of
        the log). In this order, a client told ``group.completed`` by the stream always finds
        the group finished over REST too, which reads the database."""
        final = self._state.group_status()
        if not self._patched(GROUP_EVENT_AFTER_RECORD):
            await self._record_group_row(final, self._state.log)
            return
        log = [*self._state.log, [None, final]]
        if self._state.log and self._state.log[-1] == [None, final]:
            return  # nothing new (e.g. an operator cancelled an already finished group)
        await self._record_group_row(final, log)
        if self._state.all_terminal() and self._state.group_status() == final:  # no retry meanwhile
            self._state.announce(final)

    async def _record_group_row(self, final: str, log: list[LogEntry]) -> None:
        if self._recorded == (final, len(log)):
            return
        await workflow.execute_activity(
            RECORD_GROUP_RESULT,
            RecordGroupResultInput(group_id=self._group.group_id, status=final, log=log),
            start_to_close_timeout=RECORD_TIMEOUT,
            retry_policy=RECORD_RETRY,
            summary=f"record group {final}",
        )
        self._recorded = (final, len(log))

    # --- messages ------------------------------------------------------------------------

    @workflow.signal(name=SIGNAL_JOB_FINISHED)
    def job_finished(self, finished: JobFinished) -> None:
        """A job's terminal status, the moment it is stored: from the activity that stored it
        (``translate_job`` on success, ``record_job_result`` on failure; the job's workflow
        itself in histories from before that), before its webhook goes out. The job's
        workflow reports the same status again when it completes."""
        state = self._state.jobs.get(finished.job_id)
        if (
            state is not None
            and state.status not in contract.TERMINAL
            and finished.status in contract.TERMINAL
        ):
            self._state.set(finished.job_id, finished.status, finished.error)

    @workflow.signal(name=SIGNAL_JOB_REVIEW)
    def job_review(self, change: JobFinished) -> None:
        """A job entering awaiting_review (``await_review_job``: an event of the log, the
        stream's ``job.review_requested``) or leaving it for another round after a reject
        (``translate_job``: processing again). A job already ended keeps its end."""
        state = self._state.jobs.get(change.job_id)
        reviewing = (contract.AWAITING_REVIEW, contract.PROCESSING)
        if state is not None and state.status in reviewing and change.status in reviewing:
            self._state.set(change.job_id, change.status)

    @workflow.signal
    def cancel(self, reason: str | None = None) -> None:
        """Cancel every job not yet terminal; finished jobs keep their results.
        ``temporal workflow signal --workflow-id ljg_... --name cancel``"""
        self._cancel_jobs()

    @workflow.signal
    async def retry(self) -> None:
        """Run failed and cancelled jobs again, same job ids.
        ``temporal workflow signal --workflow-id ljg_... --name retry``"""
        await self._retry_jobs()

    @workflow.update(name="cancel_jobs")
    def cancel_jobs(self, reason: str | None = None) -> list[str]:
        """The API's cancel: like the signal, but answers with the jobs it cancelled."""
        return self._cancel_jobs()

    @cancel_jobs.validator
    def _validate_cancel(self, reason: str | None = None) -> None:
        if refused := contract.cancel_refused(self._state.statuses()):
            raise ValueError(refused)

    @workflow.update(name="retry_jobs")
    async def retry_jobs(self) -> list[str]:
        """The API's retry: answers once the jobs are queued again (database included)."""
        return await self._retry_jobs()

    @retry_jobs.validator
    def _validate_retry(self) -> None:
        if refused := contract.retry_refused(self._state.statuses()):
            raise ValueError(refused)

    @workflow.query
    def snapshot(self) -> dict[str, Any]:
        """The WebSocket snapshot shape of the API contract, plus the group status."""
        return self._state.snapshot(self._group.group_id)

    @workflow.query
    def progress(self) -> dict[str, Any]:
        """What the API's progress hub polls: the snapshot and the event log."""
        return {"snapshot": self.snapshot(), "log": self._state.log}
