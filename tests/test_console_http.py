"""The review console over plain HTTP, on the real stack: what a browser would never send
(a missing or foreign CSRF token, another organization's ids, NUL in a form field, a
forwarded https request), and a session that ends on the server: signed out, expired,
its key revoked. The browser's own view is ``tests/test_console.py``."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import update
from sqlmodel import col

from stack import Stack
from store.tables import ConsoleSession
from tests.conftest import new_org_key, run_sql, run_tolk, wait_for_group
from tests.test_human_review import wait_for_status

pytestmark = pytest.mark.stack

DOCUMENT = {"title": "Welcome, {name}!", "body": "Open <b>Settings</b>."}
REVIEWED = {"humanReview": {"enabled": True}}
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


class Console:
    """A signed-in console session over HTTP: its cookie and its pages' CSRF token."""

    def __init__(self, stack: Stack, key: str, **headers: str) -> None:
        self.http = httpx.Client(base_url=stack.api_url, headers=headers, timeout=30)
        form = self.http.get("/console/login")
        self.signed_in = self.http.post(
            "/console/login", data={"csrf_token": csrf_of(form), "api_key": key}
        )
        assert self.signed_in.status_code == 303, self.signed_in.text
        self.token = csrf_of(self.http.get("/console"))

    def post(self, path: str, **fields: str) -> httpx.Response:
        return self.http.post(path, data={"csrf_token": self.token, **fields})


def csrf_of(page: httpx.Response) -> str:
    found = TOKEN.search(page.text)
    assert found, page.text[:500]
    return found.group(1)


@pytest.fixture(scope="module")
def org(stack: Stack) -> tuple[str, str]:
    return new_org_key(stack, "Console HTTP Co")


@pytest.fixture(scope="module")
def api(stack: Stack, org: tuple[str, str]) -> httpx.Client:
    return httpx.Client(base_url=stack.api_url, headers={"X-API-Key": org[1]}, timeout=30)


def create_group(api: httpx.Client, **extra: Any) -> dict[str, Any]:
    body = {"sourceLocale": "en", "targetLocales": ["de"], "data": DOCUMENT, **extra}
    created = api.post("/jobs/localization", json=body)
    assert created.status_code == 202, created.text
    group: dict[str, Any] = created.json()
    return group


def awaiting(api: httpx.Client) -> tuple[str, dict[str, Any]]:
    """A new job waiting for a reviewer, and its draft."""
    job_id: str = create_group(api, pipelineConfig=REVIEWED)["jobs"][0]["id"]
    return job_id, wait_for_status(api, job_id, "awaiting_review")["draftData"]


def approved_in_first_round(api: httpx.Client, job_id: str) -> dict[str, Any]:
    """Approve the job through the API: it was still in its first round, unchanged."""
    assert (
        api.post(f"/jobs/localization/{job_id}/review", json={"action": "approve"}).status_code
        == 202
    )
    job = wait_for_status(api, job_id, "completed")
    assert [s["rounds"] for s in job["steps"] if s["stepId"] == "humanReview"] == [1]
    return job


def test_nul_in_a_form_field_is_refused_and_changes_nothing(
    stack: Stack, org: tuple[str, str], api: httpx.Client
) -> None:
    """The API refuses U+0000 in any text (a database cannot store it); a console form
    that carries one is refused the same way, before it reaches a review."""
    job_id, draft = awaiting(api)
    console = Console(stack, org[1])
    for fields in (
        {"action": "reject", "comment": "Use\x00the polite form"},
        {"action": "approve", "t.0": "Hallo {name}\x00!"},
    ):
        refused = console.post(f"/console/reviews/{job_id}", **fields)
        assert refused.status_code == 400, refused.text
        assert "U+0000" in refused.text
    assert approved_in_first_round(api, job_id)["outputData"] == draft


def test_another_organizations_groups_jobs_and_reviews_are_not_found(
    stack: Stack, org: tuple[str, str], api: httpx.Client
) -> None:
    job_id, draft = awaiting(api)
    group_id = group_of(api, job_id)
    other = Console(stack, new_org_key(stack, "Console Other Co")[1])
    for path in (f"/console/groups/{group_id}", f"/console/jobs/{job_id}"):
        shown = other.http.get(path)
        assert shown.status_code == 404 and shown.json()["_tag"] == "NotFoundError", path
    for path, fields in (
        (f"/console/groups/{group_id}/cancel", {}),
        (f"/console/groups/{group_id}/retry", {}),
        (f"/console/reviews/{job_id}", {"action": "reject", "comment": "Mine now"}),
    ):
        acted = other.post(path, **fields)
        assert acted.status_code == 404 and acted.json()["_tag"] == "NotFoundError", path
    for path in ("/console", f"/console/reviews?groupId={group_id}", "/console/reviews"):
        listed = other.http.get(path)
        assert listed.status_code == 200 and job_id not in listed.text, path
        assert f"/console/groups/{group_id}" not in listed.text, path
    assert approved_in_first_round(api, job_id)["outputData"] == draft


def test_the_csrf_token_is_the_sessions_own(
    stack: Stack, org: tuple[str, str], api: httpx.Client
) -> None:
    """Another session's token, of the same organization, or none: refused (403), and the
    group is not cancelled; its own token cancels it."""
    mine, theirs = Console(stack, org[1]), Console(stack, org[1])
    assert mine.token != theirs.token
    kept, draft = awaiting(api)
    cancel = f"/console/groups/{group_of(api, kept)}/cancel"
    for refused in (
        mine.http.post(cancel, data={"csrf_token": theirs.token}),
        mine.http.post(cancel, headers={"X-CSRF-Token": theirs.token}),
        mine.http.post(cancel),
        mine.http.post("/console/logout", data={"csrf_token": theirs.token}),
    ):
        assert refused.status_code == 403 and refused.json()["_tag"] == "ForbiddenError"
    assert approved_in_first_round(api, kept)["outputData"] == draft  # never cancelled
    assert mine.http.get("/console").status_code == 200  # still signed in

    cancelled_job, _ = awaiting(api)
    group_id = group_of(api, cancelled_job)
    cancelled = mine.post(f"/console/groups/{group_id}/cancel")
    assert cancelled.status_code == 303, cancelled.text
    assert cancelled.headers["location"].endswith("notice=cancelled")
    assert wait_for_group(api, group_id, timeout=120)["status"] == "cancelled"


def group_of(api: httpx.Client, job_id: str) -> str:
    group_id: str = api.get(f"/jobs/localization/{job_id}").json()["groupId"]
    return group_id


def expire_sessions(stack: Stack, organization_id: str) -> None:
    """Move the organization's console sessions past their end, in the database itself."""
    run_sql(
        stack,
        update(ConsoleSession)
        .where(col(ConsoleSession.organization_id) == organization_id)
        .values(expires_at=datetime.now(UTC) - timedelta(seconds=1)),
    )


def test_a_session_ends_when_it_expires_and_when_its_key_is_revoked(stack: Stack) -> None:
    org_id, key = new_org_key(stack, "Console Sessions Co")
    expiring = Console(stack, key)
    assert expiring.http.get("/console").status_code == 200
    expire_sessions(stack, org_id)
    assert expiring.http.get("/console").status_code == 303  # to the sign-in form
    ended = expiring.post("/console/logout")
    assert ended.status_code == 401 and ended.json()["_tag"] == "UnauthorizedError"

    revoked = Console(stack, key)
    assert revoked.http.get("/console").status_code == 200
    run_tolk(stack, "keys", "revoke", key)
    assert revoked.http.get("/console").status_code == 303
    assert revoked.post("/console/logout").status_code == 401


def test_the_session_cookie_is_httponly_strict_scoped_and_secure_behind_https(
    stack: Stack, org: tuple[str, str]
) -> None:
    """Secure when the request came over https: here through a proxy on this host that
    says so (``X-Forwarded-Proto``, which the server trusts from its allowed proxies)."""
    plain = Console(stack, org[1])
    cookie = plain.signed_in.headers["set-cookie"]
    assert org[1] not in cookie and "Path=/console;" in cookie, cookie
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Secure" not in cookie
    assert "Max-Age=28800" in cookie  # the session's lifetime, 8 hours by default
    assert plain.signed_in.headers["location"] == "/console"

    https = {"X-Forwarded-Proto": "https"}
    with httpx.Client(base_url=stack.api_url, headers=https, timeout=30) as http:
        form = http.get("/console/login")
        assert "Secure" in form.headers["set-cookie"]
        nonce = form.cookies["tolk_console_login"]  # sent back as a browser would over https
        signed_in = http.post(
            "/console/login",
            data={"csrf_token": csrf_of(form), "api_key": org[1]},
            headers={"Cookie": f"tolk_console_login={nonce}"},
        )
    assert signed_in.status_code == 303, signed_in.text
    secure = signed_in.headers["set-cookie"]
    assert "Secure" in secure and "HttpOnly" in secure and "SameSite=strict" in secure


def test_signing_in_again_ends_the_browsers_previous_session(
    stack: Stack, org: tuple[str, str]
) -> None:
    """A sign-in form opened before and posted while signed in (another tab): the new
    session replaces the old one, which opens nothing any more."""
    console = Console(stack, org[1])
    first = console.http.cookies["tolk_console"]
    with httpx.Client(base_url=stack.api_url, timeout=30) as tab:
        form = tab.get("/console/login")
    console.http.cookies.set("tolk_console_login", form.cookies["tolk_console_login"])
    again = console.http.post(
        "/console/login", data={"csrf_token": csrf_of(form), "api_key": org[1]}
    )
    assert again.status_code == 303, again.text
    second = console.http.cookies["tolk_console"]
    assert second != first
    assert console.http.get("/console").status_code == 200
    with httpx.Client(base_url=stack.api_url, timeout=30) as stolen:
        stolen.cookies.set("tolk_console", first)
        assert stolen.get("/console").status_code == 303


def test_a_review_from_a_page_of_an_earlier_round_is_refused_and_changes_nothing(
    stack: Stack, org: tuple[str, str], api: httpx.Client
) -> None:
    """A reviewer who approves the draft they were shown must not approve the one a
    rejection made meanwhile: the form carries the round its page showed."""
    job_id, _ = awaiting(api)
    console = Console(stack, org[1])
    page = console.http.get("/console/reviews")
    assert 'name="round" value="1"' in page.text.split(f'id="review-{job_id}"')[1]
    rejected = api.post(
        f"/jobs/localization/{job_id}/review", json={"action": "reject", "comment": "Formal"}
    )
    assert rejected.status_code == 202, rejected.text
    second = wait_for_status(api, job_id, "awaiting_review", rounds=2)
    stale = console.post(f"/console/reviews/{job_id}", action="approve", round="1")
    assert stale.status_code == 409, stale.text
    assert "earlier round" in stale.text
    assert api.get(f"/jobs/localization/{job_id}").json()["status"] == "awaiting_review"
    current = console.post(f"/console/reviews/{job_id}", action="approve", round="2")
    assert current.status_code == 303, current.text
    done = wait_for_status(api, job_id, "completed")
    assert done["outputData"] == second["draftData"]
