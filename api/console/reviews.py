"""The review queue (``/console/reviews``): the organization's jobs awaiting review, oldest
first, each with its source and draft side by side per key, editable in place, and its
approve and reject buttons.

A review from here is the API's (``api/reviews.apply_review``): the same check that an
edit keeps every placeholder and tag, the same stored review and workflow update. A
refused review shows the queue again with the reason beside its job and the reviewer's
edit kept, so nothing typed is lost and nothing changed."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from api.console.render import page
from api.console.sessions import Browser, acting_with, signed_in
from api.console_schemas import MAX_REVIEW_FORM_BYTES, ReviewForm, ReviewsQuery
from api.errors import ConflictError, NotFoundError, ValidationError
from api.jobs import decode_cursor, encode_cursor
from api.requests import app_state, validate
from api.review_schemas import ReviewRequest
from api.reviews import apply_review
from api.state import AppState
from contract import REJECT
from localization.payload import Path, iter_strings, map_strings, path_str
from localization.review_edit import chip_segments
from settings import console_options
from store import documents, jobs, reviews
from store.tables import Job, JobGroup

HERE = "/console/reviews"
NOTICES = {"approved": "Approved: the job goes on.",
           "rejected": "Rejected: the job is translated again with the comment."}  # fmt: skip


@dataclass
class ReviewRow:
    """One string of a job under review: its key, source, and the draft (or the edit
    being made) cut into text and chips."""

    index: int
    key: str
    source: str
    text: str
    segments: list[tuple[str, bool]]


async def _draft_and_source(state: AppState, job: Job) -> tuple[Any, Any]:
    async with state.db.session() as session:
        group = await session.get(JobGroup, job.group_id)
        assert group is not None
        source = await documents.get_document(session, job.organization_id, group.source_ref)
        draft = None
        if job.draft_ref:
            draft = await documents.get_document(session, job.organization_id, job.draft_ref)
    return source, draft


def _rows(source: Any, draft: Any, edits: dict[int, str] | None) -> list[ReviewRow]:
    # By path, not by its printed key: "a.b" and "b" inside "a" print alike.
    drafted = dict(iter_strings(draft)) if draft else {}
    rows = []
    for index, (path, text) in enumerate(iter_strings(source)):
        shown = (edits or {}).get(index, drafted.get(path, ""))
        rows.append(ReviewRow(index, path_str(path), text, shown, chip_segments(shown, text)))
    return rows


LINE_BREAK = re.compile(r"\r\n?|\n")


def as_drafted(sent: str, drafted: str) -> str:
    """A string as the form sent it, with the draft's line breaks: a browser sends each
    line break of a textarea as CRLF, so a string the reviewer left alone is the draft's
    own, and an edited one keeps the draft's kind of line break."""
    lines = LINE_BREAK.split(sent)
    if lines == LINE_BREAK.split(drafted):
        return drafted
    return ("\r\n" if "\r\n" in drafted else "\n").join(lines)


def edited_data(source: Any, draft: Any, texts: dict[int, str]) -> Any | None:
    """The draft with the strings the form sent (``t.<n>``: the n-th string of the source,
    in document order, put at that string's path); None when they are the draft's own, an
    approve without an edit."""
    paths = [path for path, _ in iter_strings(source)]
    sent = {paths[index]: text for index, text in texts.items() if index < len(paths)}

    def replace(path: Path, text: str) -> str:
        return as_drafted(sent[path], text) if path in sent else text

    edited = map_strings(draft, replace)
    return None if edited == draft else edited


def _query_string(query: ReviewsQuery) -> str:
    kept = {"groupId": query.group_id, "targetLocale": query.target_locale}
    return urlencode({name: value for name, value in kept.items() if value})


async def _queue(
    request: Request,
    browser: Browser,
    query: ReviewsQuery,
    *,
    refused: tuple[str, str, dict[int, str], str] | None = None,
    status_code: int = 200,
) -> Response:
    """The queue page; ``refused`` is (job id, reason, the edit sent, the comment sent)
    of a review that was refused, shown beside its job."""
    state = app_state(request)
    size = console_options(state.settings).page_size
    async with state.db.session() as session:
        rows = await reviews.pending_reviews(
            session,
            browser.organization_id,
            limit=size + 1,
            group_id=query.group_id,
            target_locale=query.target_locale,
            after=decode_cursor(query.cursor) if query.cursor else None,
        )
    shown, more = rows[:size], len(rows) > size
    items: list[dict[str, Any]] = []
    listed = {job.id for job in shown}
    for job in shown:
        source, draft = await _draft_and_source(state, job)
        mine = refused is not None and refused[0] == job.id
        waiting = reviews.waiting_step(job) or {}
        items.append(
            {
                "job": job,
                "due": waiting.get("reviewDueAt"),
                "round": waiting.get("rounds") or 1,
                "rows": _rows(source, draft, refused[2] if mine and refused else None),
                "error": refused[1] if mine and refused else None,
                "comment": refused[3] if mine and refused else "",
            }
        )
    if refused is not None and refused[0] not in listed:  # no longer waiting: said on top
        items.insert(0, {"job": None, "job_id": refused[0], "error": refused[1], "rows": []})
    context = _page_context(
        browser, query, items, encode_cursor(shown[-1]) if more else None, request
    )
    return page(request, "reviews.html", context, status_code)


def _page_context(
    browser: Browser,
    query: ReviewsQuery,
    items: list[dict[str, Any]],
    more: str | None,
    request: Request,
) -> dict[str, Any]:
    typed = {"groupId": query.group_id or "", "targetLocale": query.target_locale or ""}
    return {
        "csrf_token": browser.csrf_token,
        "organization_id": browser.organization_id,
        "nav": "reviews",
        "items": items,
        "query": query,
        "typed": typed,
        "filter_error": None,
        "query_string": _query_string(query),
        "more": more,
        "notice": NOTICES.get(request.query_params.get("notice", "")),
    }


def _filters(request: Request) -> ReviewsQuery:
    """The queue's filters, without the spaces around what was typed or pasted; a field
    the filter form left empty filters nothing."""
    params = {k: v.strip() for k, v in request.query_params.items() if k != "notice"}
    return validate(ReviewsQuery, {k: v for k, v in params.items() if v})


@signed_in
async def queue_page(request: Request, browser: Browser) -> Response:
    """The queue; filters that cannot be used are said beside the filter form (400),
    what was typed kept in it."""
    try:
        query = _filters(request)
    except ValidationError as err:
        typed = {k: request.query_params.get(k, "") for k in ("groupId", "targetLocale")}
        context = _page_context(browser, ReviewsQuery(), [], None, request)
        context.update(filter_error=err.message, typed=typed)
        return page(request, "reviews.html", context, 400)
    return await _queue(request, browser, query)


@acting_with(ReviewForm, MAX_REVIEW_FORM_BYTES)
async def review(request: Request, browser: Browser, form: ReviewForm) -> Response:
    """Approve (with the edit, when the strings differ from the draft) or reject one job;
    a refusal (an edit that drops a placeholder, a job no longer waiting) is the queue
    again, with the reason beside the job, as 400 or 409."""
    state = app_state(request)
    query = _filters(request)
    job_id = request.path_params["jobId"]
    async with state.db.session() as session:
        job = await jobs.get_job(session, browser.organization_id, job_id)
    if job is None:
        raise NotFoundError("job", job_id)
    rejecting = form.action == REJECT
    data = None
    if not rejecting:
        source, draft = await _draft_and_source(state, job)
        data = edited_data(source, draft, form.texts()) if draft is not None else None
    comment = form.comment.strip() or None
    try:
        given = validate(ReviewRequest, {"action": form.action, "data": data, "comment": comment})
        await apply_review(state, job, given, reviewer=browser.api_key_id, seen_round=form.round)
    except (ValidationError, ConflictError) as err:
        code = 409 if isinstance(err, ConflictError) else 400
        refused = (job_id, err.message, form.texts(), form.comment)
        return await _queue(request, browser, query, refused=refused, status_code=code)
    notice = "rejected" if rejecting else "approved"
    back = "&".join(part for part in (_query_string(query), f"notice={notice}") if part)
    return RedirectResponse(f"{HERE}?{back}", status_code=303)
