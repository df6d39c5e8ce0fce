"""The reconciler's pass (``workflows/reconciler.py``): the outbox of accepted groups.

1. Every group still ``pending`` a few seconds after its acceptance is looked up in
   Temporal: a workflow that exists is noted (``processing``), a missing one is started
   from the group's rows (``starter.py``), exactly as the API would have.
2. Every group whose workflow ended without recording its end (terminated by an operator,
   timed out, failed) is closed: its unfinished jobs fail with
   ``group_workflow_terminated`` and the group gets the status its jobs make.

Also run by hand: ``tolk groups reconcile``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta

from temporalio import activity
from temporalio.client import Client, WorkflowExecutionDescription, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

import contract
from settings import Settings
from starter import oldest_to_start, start_group
from store import groups
from store.db import Database
from store.tables import utcnow
from workflows.event_log import MEMO_KEY, decode_memo
from workflows.messages import RECONCILE_GROUPS, ReconcileInput, ReconcileResult

log = logging.getLogger("tolk.reconciler")

PAGE = 200
ABANDONED = (
    WorkflowExecutionStatus.TERMINATED,
    WorkflowExecutionStatus.TIMED_OUT,
    WorkflowExecutionStatus.FAILED,
)
TERMINATED_ERROR = "group_workflow_terminated"
# Closed workflows are looked for this far back (visibility is eventually consistent: a
# group terminated just now is found by one of the next passes).
ABANDONED_LOOKBACK = timedelta(days=2)


async def _describe(client: Client, group_id: str) -> WorkflowExecutionDescription | None:
    try:
        return await client.get_workflow_handle(group_id).describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return None
        raise


def _nothing() -> None:
    pass


async def reconcile(
    db: Database,
    client: Client,
    settings: Settings,
    grace_seconds: float,
    beat: Callable[[], None] = _nothing,
) -> ReconcileResult:
    """One pass. ``beat`` is called for every group looked at (the activity heartbeats)."""
    result = ReconcileResult()
    await _start_unstarted(db, client, settings, grace_seconds, result, beat)
    await _close_abandoned(db, client, settings, result, beat)
    return result


async def _start_unstarted(
    db: Database,
    client: Client,
    settings: Settings,
    grace_seconds: float,
    out: ReconcileResult,
    beat: Callable[[], None],
) -> None:
    now = utcnow()
    before = now - timedelta(seconds=grace_seconds)
    after = oldest_to_start(settings, now)
    while True:
        async with db.session() as session:
            unstarted = await groups.unstarted_groups(session, after, before, PAGE)
        seen: list[str] = []
        for group in unstarted:
            beat()
            out.checked += 1
            try:
                description = await _describe(client, group.id)
                if description is None:
                    async with db.session() as session:
                        jobs = await groups.group_jobs(session, group.id)
                    await start_group(client, settings, group, jobs)
                    log.warning("started the workflow of accepted group %s (it had none)", group.id)
                    out.started.append(group.id)
                elif description.status in ABANDONED:
                    await _close(db, description, out)
            except RPCError as err:
                if err.status in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED):
                    raise  # Temporal away: this pass ends; the next one tries again
                log.error("reconciling group %s failed: %s", group.id, err)  # the others go on
                continue
            seen.append(group.id)
        async with db.writing() as session:
            await groups.mark_group_started(session, seen)
        if len(unstarted) < PAGE:
            return


async def _close_abandoned(
    db: Database,
    client: Client,
    settings: Settings,
    out: ReconcileResult,
    beat: Callable[[], None],
) -> None:
    since = (utcnow() - ABANDONED_LOOKBACK).strftime("%Y-%m-%dT%H:%M:%SZ")
    statuses = " OR ".join(
        f"ExecutionStatus = '{s.name.title().replace('_', '')}'" for s in ABANDONED
    )
    query = f"WorkflowType = 'GroupWorkflow' AND ({statuses}) AND CloseTime > '{since}'"
    if "TolkGroupStatus" in settings.temporal_search_attributes:  # unfinished ones only
        query += " AND TolkGroupStatus IN ('pending', 'processing')"
    candidates: list[str] = []
    async for execution in client.list_workflows(query):
        beat()
        candidates.append(execution.id)
    open_ids: list[str] = []
    for start in range(0, len(candidates), PAGE):
        async with db.session() as session:
            chunk = await groups.groups_by_id(session, candidates[start : start + PAGE])
        open_ids += [g.id for g in chunk if g.status not in contract.GROUP_TERMINAL]
    for group_id in open_ids:
        beat()
        description = await _describe(client, group_id)  # the latest run: a retry may run
        if description is not None and description.status in ABANDONED:
            await _close(db, description, out)


async def _close(
    db: Database, description: WorkflowExecutionDescription, out: ReconcileResult
) -> None:
    memo = await description.memo_value(MEMO_KEY, default=None)
    async with db.session() as session:
        jobs = await groups.group_jobs(session, description.id)
    event_log = decode_memo(memo, [job.id for job in jobs]) if memo else []
    async with db.writing() as session:
        final = await groups.close_abandoned_group(
            session, description.id, TERMINATED_ERROR, event_log
        )
    if final is not None:
        log.warning(
            "closed group %s as %s: its workflow ended %s",
            description.id,
            final,
            description.status,
        )
        out.closed.append(description.id)


class ReconcileActivities:
    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings

    @activity.defn(name=RECONCILE_GROUPS)
    async def reconcile_groups(self, pass_settings: ReconcileInput) -> ReconcileResult:
        return await reconcile(
            self.db,
            activity.client(),
            self.settings,
            pass_settings.grace_seconds,
            beat=activity.heartbeat,
        )
