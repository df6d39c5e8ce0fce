"""The review console over plain HTTP, on the real stack: what a browser would never send
(a missing or foreign CSRF token, another organization's ids, NUL in a form field, a
forwarded https request), and a session that ends on the server: signed out, expired,
its key revoked. The browser's own view is ``tests/test_console.py``."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from stack import Stack
from tests.conftest import new_org_key
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
