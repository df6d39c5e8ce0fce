"""Every Temporal call that starts or steers Tolk's workflows, in one place: starting a
group from its database rows, cancelling and retrying it, redelivering a job's webhook
event, and poking the reconciler. The workflow ids, id policies, inputs, priorities,
search attributes, timeouts and summaries are all here.

Used by the API (``POST /jobs/localization``, cancel, retry, redeliver), by the
reconciler's activity (a group accepted but never started), by ``tolk groups`` and by
every process that starts (the reconciler's poke). Whoever starts a group, it gets the
same input from the same rows, and racing starts land on one execution. Callers decide
what a refusal means to them (an HTTP status, a command's error).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio.client import Client, WithStartWorkflowOperation
from temporalio.common import (
    Priority,
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

import contract
import telemetry
from settings import Settings, job_options, reconcile_options, webhook_options
from store.tables import Job, JobGroup
from workflows.group import GROUP_PRIORITY, GroupWorkflow
from workflows.group_state import (
    SA_ENGINE,
    SA_GROUP_STATUS,
    SA_ORGANIZATION,
    SA_SOURCE_LOCALE,
    SA_TARGET_LOCALES,
)
from workflows.messages import (
    REVIEW_UPDATE,
    DeliverWebhookInput,
    GroupInput,
    JobRef,
    PipelineOptions,
    ReviewInput,
)
from workflows.reconciler import RECONCILER_ID, ReconcilerWorkflow
from workflows.webhooks import WebhookRedeliveryWorkflow, job_event_id

# A start or retry that gets no answer in this long is ambiguous: it may have happened.
START_TIMEOUT = timedelta(seconds=5)
UPDATE_TIMEOUT = timedelta(seconds=15)
REVIEW_UPDATE_TIMEOUT = timedelta(seconds=60)


def oldest_to_start(settings: Settings, now: datetime) -> datetime:
    """Groups created before this are not started on their own (by the reconciler, or a
    replay of their request): rows left by code before the outbox, or a group whose
    history retention removed, must not run again months later; an operator decides."""
    return now - timedelta(seconds=settings.reconcile_max_age_seconds)


def may_start_on_its_own(group: JobGroup, settings: Settings) -> bool:
    """Accepted, its workflow never seen (``pending``), and young enough: what the
    reconciler starts (``store.groups.unstarted_groups``), and what a replay starts."""
    now = datetime.now(UTC)
    created = group.created_at.replace(tzinfo=group.created_at.tzinfo or UTC)
    return group.status == contract.GROUP_PENDING and created > oldest_to_start(settings, now)


def group_input(
    settings: Settings, group: JobGroup, jobs: list[Job], *, later_run: bool = False
) -> GroupInput:
    """The workflow's input. A later run (of a group whose workflow closed) also carries
    the jobs that ended before it and the event log so far, which it continues."""
    finished = {job.id: job.status for job in jobs if job.status in contract.TERMINAL}
    return GroupInput(
        group_id=group.id,
        organization_id=group.organization_id,
        engine_id=group.engine_id,
        source_locale=group.source_locale,
        jobs=[JobRef(job_id=job.id, target_locale=job.target_locale) for job in jobs],
        options=job_options(settings),
        statuses=finished if later_run else {},
        log=[list(entry) for entry in group.event_log or []] if later_run else [],
        pipeline=pipeline_options(group.pipeline),
    )


def pipeline_options(pipeline: Mapping[str, Any] | None) -> PipelineOptions | None:
    """The workflows' form of a group's effective pipeline (``JobGroup.pipeline``, wire
    form): the stages switched on with their settings; None when none is."""
    stages = {stage: (pipeline or {})[stage] for stage in contract.enabled_stages(pipeline)}
    if not stages:
        return None
    ai, human = stages.get(contract.AI_REVIEW, {}), stages.get(contract.HUMAN_REVIEW, {})
    return PipelineOptions(
        ai_review=contract.AI_REVIEW in stages,
        ai_review_threshold=ai.get("threshold"),
        ai_review_model=ai.get("model"),
        human_review=contract.HUMAN_REVIEW in stages,
        human_review_timeout_seconds=human.get("timeoutSeconds"),
        human_review_on_timeout=human.get("onTimeout"),
        back_translation=contract.BACK_TRANSLATION in stages,
    )


def initial_search_attributes(group: GroupInput) -> TypedSearchAttributes:
    """Set at the start so the group is searchable from its first event (the workflow
    keeps ``TolkGroupStatus`` current afterwards)."""
    return TypedSearchAttributes(
        [
            SearchAttributePair(SA_ORGANIZATION, group.organization_id),
            SearchAttributePair(SA_GROUP_STATUS, contract.GROUP_PENDING),
            SearchAttributePair(SA_ENGINE, group.engine_id),
            SearchAttributePair(SA_SOURCE_LOCALE, group.source_locale),
            SearchAttributePair(SA_TARGET_LOCALES, [job.target_locale for job in group.jobs]),
        ]
    )


def _start_options(settings: Settings, group: JobGroup, group_in: GroupInput) -> dict[str, Any]:
    return {
        "id": group.id,
        "task_queue": settings.worker_task_queue,
        "search_attributes": initial_search_attributes(group_in)
        if group_in.options.search_attributes
        else None,
        "static_summary": f"{group.source_locale} -> {', '.join(group.target_locales)}",
        "priority": group_priority(settings, group.organization_id),
    }


def group_priority(settings: Settings, organization_id: str) -> Priority:
    """The group workflow's task-queue priority, with the organization's fairness key (its
    jobs and their activities inherit it), so one organization's flood waits its turn
    instead of everyone's (``settings.temporal_fairness``)."""
    if not settings.temporal_fairness:
        return GROUP_PRIORITY
    return Priority(priority_key=GROUP_PRIORITY.priority_key, fairness_key=organization_id)


async def start_group(client: Client, settings: Settings, group: JobGroup, jobs: list[Job]) -> None:
    """Start the group's first run. Racing and repeated starts land on the same running
    execution (USE_EXISTING); a closed one is never started again by this
    (REJECT_DUPLICATE: an idempotent replay must not redo finished work)."""
    group_in = group_input(settings, group, jobs)
    telemetry.bind_ids(group_id=group.id)  # on the request's log lines and span
    try:
        await client.start_workflow(
            GroupWorkflow.run,
            group_in,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            rpc_timeout=START_TIMEOUT,
            **_start_options(settings, group, group_in),
        )
    except WorkflowAlreadyStartedError:
        pass  # closed already: the group exists


async def retry_group(
    client: Client, settings: Settings, group: JobGroup, jobs: list[Job]
) -> list[str]:
    """Run the group's failed and cancelled jobs again: the ``retry_jobs`` update on the
    running workflow, or, when the workflow has closed (finished and gone, cancelled from
    the ``temporal`` CLI), on a new run started with it that knows the finished jobs.
    Returns the job ids queued again (empty when another retry took them first)."""
    group_in = group_input(settings, group, jobs, later_run=True)
    for attempt in range(2):
        # An operation is used once: a new one for the second try.
        start = WithStartWorkflowOperation(
            GroupWorkflow.run,
            group_in,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            **_start_options(settings, group, group_in),
        )
        try:
            retried: list[str] = await client.execute_update_with_start_workflow(
                "retry_jobs",
                start_workflow_operation=start,
                result_type=list,
                rpc_timeout=UPDATE_TIMEOUT,
            )
            return retried
        except RPCError as err:
            # The run closed between admitting the update and handling it: once more,
            # which starts a new run.
            if err.status != RPCStatusCode.NOT_FOUND or attempt:
                raise
    raise AssertionError("unreachable")


async def cancel_group(client: Client, group_id: str, reason: str | None) -> list[str]:
    """Cancel the group's unfinished jobs: the ``cancel_jobs`` update on its running
    workflow, which answers with the jobs it cancelled. Raises
    ``WorkflowUpdateFailedError`` when the workflow finds the group finished (its
    validator), ``RPCError`` NOT_FOUND when the workflow has closed."""
    cancelled: list[str] = await client.get_workflow_handle(group_id).execute_update(
        GroupWorkflow.cancel_jobs, reason, rpc_timeout=UPDATE_TIMEOUT
    )
    return cancelled


async def send_review(client: Client, job_id: str, action: str, review_id: str, round_: int) -> str:
    """The ``review`` update on the job's workflow (id = job id), with the stored review's
    id and the round it was made in. Raises ``WorkflowUpdateFailedError`` when its
    validator finds the job not awaiting review (or in a later round), ``RPCError``
    NOT_FOUND when the workflow has closed. The wait is
    longer than other updates': with every worker down, the update is taken as soon as
    one returns."""
    review = ReviewInput(action=action, review_id=review_id, round=round_)
    answer: str = await client.get_workflow_handle(job_id).execute_update(
        REVIEW_UPDATE, review, result_type=str, rpc_timeout=REVIEW_UPDATE_TIMEOUT
    )
    return answer


async def redeliver(
    client: Client, settings: Settings, job_id: str, recorded: Sequence[tuple[str, int]]
) -> tuple[str, int]:
    """Send the job's terminal event again: a new series of attempts with the same
    ``webhook-id``. ``recorded`` is the job's delivery log as ``(event id, series)``,
    oldest first. Returns the event id and the new series; raises
    ``WorkflowAlreadyStartedError`` while a redelivery of the job still runs (its workflow
    id is ``<job id>-redeliver``)."""
    try:
        run_id: str | None = (await client.get_workflow_handle(job_id).describe()).run_id
    except RPCError as err:
        if err.status != RPCStatusCode.NOT_FOUND:
            raise
        run_id = None  # gone after retention
    # The event its latest run sends, whether or not an attempt is recorded yet: after a
    # retry, the new run's, not the failure event's before it.
    event_id = job_event_id(job_id, run_id, recorded[-1][0] if recorded else None)
    series = max((s for e, s in recorded if e == event_id), default=0) + 1
    await client.start_workflow(
        WebhookRedeliveryWorkflow.run,
        DeliverWebhookInput(
            job_id=job_id, event_id=event_id, series=series, options=webhook_options(settings)
        ),
        id=f"{job_id}-redeliver",
        task_queue=settings.worker_task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        static_summary=f"redeliver {event_id} (series {series})",
    )
    return event_id, series


async def poke_reconciler(client: Client, settings: Settings) -> None:
    """Make sure the reconciler runs, and have it make a pass now (signal-with-start).
    Every API and worker process calls this when it starts."""
    reconcile = reconcile_options(settings)
    await client.start_workflow(
        ReconcilerWorkflow.run,
        reconcile,
        id=RECONCILER_ID,
        task_queue=settings.worker_task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        start_signal="poke",
        start_signal_args=[reconcile],
        static_summary="starts accepted groups that have no workflow; closes terminated ones",
        rpc_timeout=START_TIMEOUT,
    )
