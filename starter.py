"""Starting a group's workflow from its database rows: the one place that knows the
workflow id, the id policies, the input, the priority and the search attributes.

Used by the API (``POST /jobs/localization``, a retry of a group whose workflow has
closed) and by the reconciler's activity (a group accepted but never started). Whoever
starts it, a group gets the same input from the same rows, and racing starts land on one
execution.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio.client import Client, WithStartWorkflowOperation
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

import contract
from settings import Settings
from store.tables import Job, JobGroup
from workflows.group import GROUP_PRIORITY, GroupWorkflow, initial_search_attributes
from workflows.messages import GroupInput, JobOptions, JobRef, ReconcileInput, WebhookOptions
from workflows.reconciler import RECONCILER_ID, ReconcilerWorkflow

# A start or retry that gets no answer in this long is ambiguous: it may have happened.
START_TIMEOUT = timedelta(seconds=5)
UPDATE_TIMEOUT = timedelta(seconds=15)


def webhook_options(settings: Settings) -> WebhookOptions:
    """The delivery schedule the workflows get (they cannot read configuration)."""
    return WebhookOptions(
        delays_seconds=list(settings.webhooks_retry_delays_seconds),
        timeout_seconds=settings.webhooks_timeout_seconds,
    )


def job_options(settings: Settings) -> JobOptions:
    return JobOptions(
        translate_max_attempts=settings.translate_max_attempts,
        translate_initial_interval_seconds=settings.translate_initial_interval_seconds,
        translate_timeout_seconds=settings.translate_timeout_seconds,
        translate_heartbeat_seconds=settings.translate_heartbeat_seconds,
        linger_seconds=settings.groups_linger_seconds,
        search_attributes=bool(settings.temporal_search_attributes),
        webhook=webhook_options(settings),
    )


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
    )


def _start_options(settings: Settings, group: JobGroup, group_in: GroupInput) -> dict[str, Any]:
    return {
        "id": group.id,
        "task_queue": settings.worker_task_queue,
        "search_attributes": initial_search_attributes(group_in)
        if group_in.options.search_attributes
        else None,
        "static_summary": f"{group.source_locale} -> {', '.join(group.target_locales)}",
        "priority": GROUP_PRIORITY,
    }


async def start_group(client: Client, settings: Settings, group: JobGroup, jobs: list[Job]) -> None:
    """Start the group's first run. Racing and repeated starts land on the same running
    execution (USE_EXISTING); a closed one is never started again by this
    (REJECT_DUPLICATE: an idempotent replay must not redo finished work)."""
    group_in = group_input(settings, group, jobs)
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


async def poke_reconciler(client: Client, settings: Settings) -> None:
    """Make sure the reconciler runs, and have it make a pass now (signal-with-start).
    Every API and worker process calls this when it starts."""
    reconcile = ReconcileInput(
        interval_seconds=settings.reconcile_interval_seconds,
        grace_seconds=settings.reconcile_grace_seconds,
    )
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
