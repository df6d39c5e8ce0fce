"""Cancel and retry a group. Both are workflow updates on GroupWorkflow, so the workflow
itself decides (no race with jobs finishing meanwhile) and the 409 cases come from its
validators; a retry of a group whose workflow has closed starts a new run with the update
(update-with-start). Operators can do the same with signals from the ``temporal`` CLI.
The console's buttons call the same ``cancel`` and ``retry`` as the routes."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from temporalio.client import WorkflowUpdateFailedError, WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.service import RPCError, RPCStatusCode

import contract
import starter
from api.auth import owned
from api.errors import ConflictError, ServiceUnavailableError
from api.jobs import group_out
from api.requests import app_state, parse_json, read_body, validate, wire
from api.schemas import CancelGroupRequest
from api.state import AppState
from store import groups


async def _load(request: Request) -> tuple[str, str]:
    async with app_state(request).db.session() as session:
        group = await owned(request, session, "group", groups.get_group)
    return group.organization_id, group.id


async def _respond(request: Request, org_id: str, group_id: str) -> JSONResponse:
    async with app_state(request).db.session() as session:
        group = await groups.get_group(session, org_id, group_id)
        assert group is not None
        jobs = await groups.group_jobs(session, group_id)
    return wire(group_out(group, jobs), 202)


def _map_rpc_error(err: RPCError, action: str) -> Exception:
    if err.status == RPCStatusCode.NOT_FOUND:
        return ConflictError(f"the group is closed; it can no longer {action}")
    return ServiceUnavailableError("the workflow service did not answer; retry")


async def cancel_group(request: Request) -> JSONResponse:
    org_id, group_id = await _load(request)
    body = await read_body(request, 64 * 1024)
    reason = validate(CancelGroupRequest, parse_json(body)).reason if body.strip() else None
    await cancel(app_state(request), group_id, reason)
    return await _respond(request, org_id, group_id)


async def retry_group(request: Request) -> JSONResponse:
    """Failed and cancelled jobs run again, at any age of the group: on its running
    workflow, or on a new run when the workflow has closed (starter.py)."""
    org_id, group_id = await _load(request)
    await retry(app_state(request), org_id, group_id)
    return await _respond(request, org_id, group_id)


# --- the actions, for the API's routes and the console's buttons alike -------------------


async def cancel(state: AppState, group_id: str, reason: str | None) -> None:
    """Cancel the group (known to be the caller's): 409 when nothing is left to cancel."""
    async with state.db.session() as session:
        jobs = await groups.group_jobs(session, group_id)
    if refused := contract.cancel_refused(job.status for job in jobs):
        raise ConflictError(refused)
    try:
        await starter.cancel_group(state.temporal, group_id, reason)
    except WorkflowUpdateFailedError:
        raise ConflictError(contract.NOTHING_TO_CANCEL) from None
    except RPCError as err:
        raise _map_rpc_error(err, "be cancelled") from None


async def retry(state: AppState, org_id: str, group_id: str) -> None:
    """Retry the group's failed and cancelled jobs (the group known to be the caller's):
    409 when there are none."""
    async with state.db.session() as session:
        group = await groups.get_group(session, org_id, group_id)
        assert group is not None
        jobs = await groups.group_jobs(session, group_id)
    if refused := contract.retry_refused(job.status for job in jobs):
        raise ConflictError(refused)
    try:
        await starter.retry_group(state.temporal, state.settings, group, jobs)
    except WorkflowUpdateFailedError:
        raise ConflictError(contract.NOTHING_TO_RETRY) from None
    except WorkflowUpdateRPCTimeoutOrCancelledError:
        raise ServiceUnavailableError("the workflow service did not answer; retry") from None
    except RPCError as err:
        raise _map_rpc_error(err, "be retried") from None
