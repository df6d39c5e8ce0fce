"""The console's pages and buttons: the organization's groups, one group, one job; cancel
and retry. Each reads what the API's routes read (``store/``) and shows it in the API's
own wire shapes (``api/jobs.py``), so the console and the JSON API never disagree.

A page that follows a group's progress gets a group read token minted here
(``api/tokens.py``): its script opens the group's SSE stream with it, so the browser
holds a token for that one group's progress, never a key."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from api import control, tokens
from api.console import views
from api.console.render import page
from api.console.sessions import Browser, acting, signed_in
from api.console_schemas import ACTIVE, GroupsQuery
from api.errors import ConflictError, NotFoundError
from api.jobs import decode_cursor, encode_cursor, group_out, job_out
from api.requests import app_state, validate
from api.schemas import JobGroupOut
from contract import AWAITING_REVIEW, SUCCEEDED, cancel_refused, retry_refused
from settings import console_options
from store import documents, groups, jobs


def _stream_token(request: Request, browser: Browser, group: JobGroupOut) -> str | None:
    """A read token for the group's stream while it is live (None once it has finished)."""
    if not views.is_live(group):
        return None
    state = app_state(request)
    ttl = console_options(state.settings).stream_token_ttl_seconds
    issued = tokens.issue(state.secret_key, group.group_id, browser.organization_id, ttl)
    return tokens.encode(state.secret_key, issued)


def _context(browser: Browser, **shown: Any) -> dict[str, Any]:
    return {"csrf_token": browser.csrf_token, "organization_id": browser.organization_id, **shown}


@signed_in
async def groups_page(request: Request, browser: Browser) -> Response:
    """The organization's groups, newest first, one status filter and page at a time."""
    state = app_state(request)
    size = console_options(state.settings).page_size
    # An empty field filters nothing (as a form or the "Older groups" link may send it).
    query = validate(GroupsQuery, {k: v for k, v in request.query_params.items() if v})
    statuses: tuple[str, ...] | None = None
    with_job: str | None = None  # awaiting_review: groups with a job waiting for a reviewer
    if query.status == AWAITING_REVIEW:
        statuses, with_job = views.ACTIVE_STATUSES, AWAITING_REVIEW
    elif query.status is not None:
        statuses = views.ACTIVE_STATUSES if query.status == ACTIVE else (query.status,)
    async with state.db.session() as session:
        rows = await groups.list_groups(
            session,
            browser.organization_id,
            limit=size + 1,
            statuses=statuses,
            with_job_status=with_job,
            before=decode_cursor(query.cursor) if query.cursor else None,
        )
        shown = rows[:size]
        jobs_by_group = await groups.jobs_of_groups(session, shown)
    items = []
    for row in shown:
        group = group_out(row, jobs_by_group[row.id])
        items.append(
            {"group": group, "bar": views.bar(group),
             "token": _stream_token(request, browser, group)}
        )  # fmt: skip
    more = encode_cursor(shown[-1]) if len(rows) > size else None
    context = _context(
        browser, items=items, status=query.status, filters=views.FILTER_LABELS, more=more
    )
    return page(request, "groups.html", context)


@signed_in
async def group_page(request: Request, browser: Browser) -> Response:
    """One group: each locale's status, warnings and counts, and its buttons."""
    group_id = request.path_params["groupId"]
    async with app_state(request).db.session() as session:
        row = await groups.get_group(session, browser.organization_id, group_id)
        if row is None:
            raise NotFoundError("group", group_id)
        group_jobs = await groups.group_jobs(session, group_id)
    group = group_out(row, group_jobs)
    statuses = [job.status for job in group_jobs]
    context = _context(
        browser,
        group=group,
        bar=views.bar(group),
        jobs=[job_out(job) for job in group_jobs],
        token=_stream_token(request, browser, group),
        can_cancel=cancel_refused(statuses) is None,
        can_retry=retry_refused(statuses) is None,
        notice=views.NOTICES.get(request.query_params.get("notice", "")),
    )
    return page(request, "group.html", context)


@signed_in
async def job_page(request: Request, browser: Browser) -> Response:
    """One job: source and translation side by side per key, warnings beside their keys,
    the steps with their models (and costs, once steps record them)."""
    job_id = request.path_params["jobId"]
    async with app_state(request).db.session() as session:
        job = await jobs.get_job(session, browser.organization_id, job_id)
        if job is None:
            raise NotFoundError("job", job_id)
        group = await groups.get_group(session, browser.organization_id, job.group_id)
        assert group is not None
        source = await documents.get_document(session, job.organization_id, group.source_ref)
        output = draft = None
        if job.status in SUCCEEDED and job.output_ref:
            output = await documents.get_document(session, job.organization_id, job.output_ref)
        if job.status == AWAITING_REVIEW and job.draft_ref:  # what the reviewer is shown
            draft = await documents.get_document(session, job.organization_id, job.draft_ref)
    shown = job_out(job, output, draft)
    rows, general = views.side_by_side(source, output or draft, shown.warnings)
    steps = [
        {"step": step, "cost": views.step_cost(raw)}
        for step, raw in zip(shown.steps, job.steps or [], strict=True)
    ]
    context = _context(browser, job=shown, rows=rows, general_warnings=general, steps=steps,
                       is_draft=draft is not None)  # fmt: skip
    return page(request, "job.html", context)


async def _owned_group(browser: Browser, request: Request) -> str:
    group_id: str = request.path_params["groupId"]
    async with app_state(request).db.session() as session:
        if await groups.get_group(session, browser.organization_id, group_id) is None:
            raise NotFoundError("group", group_id)
    return group_id


def _back_to(group_id: str, notice: str) -> RedirectResponse:
    return RedirectResponse(f"/console/groups/{group_id}?notice={notice}", status_code=303)


@acting
async def cancel(request: Request, browser: Browser) -> Response:
    group_id = await _owned_group(browser, request)
    try:
        await control.cancel(app_state(request), group_id, "cancelled from the console")
    except ConflictError:
        return _back_to(group_id, "cancel_refused")
    return _back_to(group_id, "cancelled")


@acting
async def retry(request: Request, browser: Browser) -> Response:
    group_id = await _owned_group(browser, request)
    try:
        await control.retry(app_state(request), browser.organization_id, group_id)
    except ConflictError:
        return _back_to(group_id, "retry_refused")
    return _back_to(group_id, "retried")
