"""``tolk groups``: the operator's commands on one group, at any age.

``temporal workflow signal --name retry|cancel`` reaches a group only while its workflow
runs; a finished group's workflow closes once its webhooks are delivered. These commands
do what the API does (``activities/starts.py``): a retry of a closed group starts a new run
that knows the finished jobs. ``reconcile`` runs one pass of the reconciler now.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from temporalio.client import WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from activities import starts
from activities.reconcile import reconcile
from settings import Settings, connect_temporal
from store import queries
from store.db import Database
from store.models import JobGroup
from workflows import status
from workflows.group import GroupWorkflow


class GroupCommandError(Exception):
    """What the command could not do, said plainly (exit status 1)."""


@contextlib.asynccontextmanager
async def _connected(settings: Settings) -> AsyncIterator[tuple[Database, Any]]:
    db = Database(settings.database_url)
    try:
        await db.create_schema()
        yield db, await connect_temporal(settings)
    finally:
        await db.close()


async def _rows(db: Database, group_id: str) -> tuple[Any, list[Any]]:
    async with db.session() as session:
        group = await session.get(JobGroup, group_id)
        if group is None:
            raise GroupCommandError(f"unknown group {group_id}")
        return group, await queries.group_jobs(session, group_id)


async def retry_group(settings: Settings, group_id: str) -> list[str]:
    async with _connected(settings) as (db, client):
        group, jobs = await _rows(db, group_id)
        if not any(job.status in (status.FAILED, status.CANCELLED) for job in jobs):
            raise GroupCommandError("no failed or cancelled jobs to retry")
        try:
            return await starts.retry_group(client, settings, group, jobs)
        except WorkflowUpdateFailedError:
            raise GroupCommandError("no failed or cancelled jobs to retry") from None


async def cancel_group(settings: Settings, group_id: str) -> list[str]:
    async with _connected(settings) as (db, client):
        await _rows(db, group_id)
        try:
            cancelled: list[str] = await client.get_workflow_handle(group_id).execute_update(
                GroupWorkflow.cancel_jobs, "operator", rpc_timeout=starts.UPDATE_TIMEOUT
            )
        except WorkflowUpdateFailedError:
            raise GroupCommandError("the group is already finished; nothing to cancel") from None
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                raise GroupCommandError("the group's workflow has closed: nothing runs") from None
            raise
        return cancelled


async def reconcile_now(settings: Settings, max_age_seconds: float | None = None) -> dict[str, Any]:
    """One pass; ``max_age_seconds`` also starts groups older than the reconciler would."""
    if max_age_seconds is not None:
        settings = settings.model_copy(update={"reconcile_max_age_seconds": max_age_seconds})
    async with _connected(settings) as (db, client):
        result = await reconcile(db, client, settings, settings.reconcile_grace_seconds)
    return {"started": result.started, "closed": result.closed, "checked": result.checked}
