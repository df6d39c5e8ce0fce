"""``tolk groups``: the operator's commands on one group, at any age.

``temporal workflow signal --name retry|cancel`` reaches a group only while its workflow
runs; a finished group's workflow closes once its webhooks are delivered. These commands
do what the API does (``starter.py``): a retry of a closed group starts a new run
that knows the finished jobs. ``reconcile`` runs one pass of the reconciler now.

Temporal and the database layer are imported when a command runs: every ``tolk`` command
imports this module to build its command line.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cli import output

if TYPE_CHECKING:
    from settings import Settings
    from store.db import Database

app = typer.Typer(help="job groups, at any age", no_args_is_help=True)

GroupId = Annotated[str, typer.Argument(metavar="GROUP_ID", help="group id (ljg_...)")]


class GroupCommandError(Exception):
    """What the command could not do, said plainly (exit status 1)."""


@contextlib.asynccontextmanager
async def _connected(settings: Settings) -> AsyncIterator[tuple[Database, Any]]:
    from connections import connect_temporal
    from store import schema
    from store.db import Database

    await schema.upgrade(settings.database_url)  # quietly, as cli/admin.py's commands
    db = Database(settings.database_url)
    try:
        yield db, await connect_temporal(settings)
    finally:
        await db.close()


async def _rows(db: Database, group_id: str) -> tuple[Any, list[Any]]:
    from store import groups
    from store.tables import JobGroup

    async with db.session() as session:
        group = await session.get(JobGroup, group_id)
        if group is None:
            raise GroupCommandError(f"unknown group {group_id}")
        return group, await groups.group_jobs(session, group_id)


async def retry_group(settings: Settings, group_id: str) -> list[str]:
    from temporalio.client import WorkflowUpdateFailedError

    import contract
    import starter

    async with _connected(settings) as (db, client):
        group, jobs = await _rows(db, group_id)
        if refused := contract.retry_refused(job.status for job in jobs):
            raise GroupCommandError(refused)
        try:
            return await starter.retry_group(client, settings, group, jobs)
        except WorkflowUpdateFailedError:
            raise GroupCommandError(contract.NOTHING_TO_RETRY) from None


async def cancel_group(settings: Settings, group_id: str) -> list[str]:
    from temporalio.client import WorkflowUpdateFailedError
    from temporalio.service import RPCError, RPCStatusCode

    import contract
    import starter

    async with _connected(settings) as (db, client):
        await _rows(db, group_id)
        try:
            cancelled = await starter.cancel_group(client, group_id, "operator")
        except WorkflowUpdateFailedError:
            raise GroupCommandError(contract.NOTHING_TO_CANCEL) from None
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                raise GroupCommandError("the group's workflow has closed: nothing runs") from None
            raise
        return cancelled


async def reconcile_now(settings: Settings, max_age_seconds: float | None = None) -> dict[str, Any]:
    """One pass; ``max_age_seconds`` also starts groups older than the reconciler would."""
    from activities.reconcile import reconcile

    if max_age_seconds is not None:
        settings = settings.model_copy(update={"reconcile_max_age_seconds": max_age_seconds})
    async with _connected(settings) as (db, client):
        result = await reconcile(db, client, settings, settings.reconcile_grace_seconds)
    return {"started": result.started, "closed": result.closed, "checked": result.checked}


def _on_group(action: str, group_id: str, as_json: bool) -> None:
    from settings import get_settings

    run = retry_group if action == "retry" else cancel_group
    try:
        jobs = asyncio.run(run(get_settings(), group_id))
    except GroupCommandError as err:
        output.fail(str(err), 1)
    result = {"groupId": group_id, "jobs": jobs}
    print(json.dumps(result) if as_json else f"{action}: {len(jobs)} jobs of {group_id}")


@app.command(
    "retry", help="run a group's failed and cancelled jobs again (also once it has closed)"
)
def retry(group: GroupId, as_json: output.json_mode = False) -> None:
    _on_group("retry", group, as_json)


@app.command("cancel", help="cancel a group's unfinished jobs")
def cancel(group: GroupId, as_json: output.json_mode = False) -> None:
    _on_group("cancel", group, as_json)


@app.command("reconcile", help="start accepted groups that have no workflow; close terminated ones")
def reconcile_command(
    max_age: Annotated[
        float | None,
        typer.Option(
            "--max-age",
            metavar="SECONDS",
            help="also start accepted groups without a workflow up to this old "
            "(default: reconcile.max_age_seconds)",
        ),
    ] = None,
    as_json: output.json_mode = False,
) -> None:
    from settings import get_settings

    try:
        result = asyncio.run(reconcile_now(get_settings(), max_age))
    except GroupCommandError as err:
        output.fail(str(err), 1)
    text = f"started {len(result['started'])}, closed {len(result['closed'])}"
    print(json.dumps(result) if as_json else text)
