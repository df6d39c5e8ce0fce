"""Per-organization quotas on the real stack: the request rate on every keyed route (429
RateLimitError with Retry-After and RateLimit-* headers, counted in the database so that
two API processes share one limit), the active-groups limit on POST /jobs/localization,
and ``tolk orgs limits`` that sets them."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func
from sqlmodel import select

import contract
from api.quotas import LIMITS_TTL_SECONDS
from stack import Stack, free_port
from store.db import Database
from store.tables import JobGroup
from tests.conftest import new_org_key, run_tolk, wait_for_group


def limits(stack: Stack, org: str, *options: str) -> dict[str, Any]:
    shown: dict[str, Any] = json.loads(run_tolk(stack, "orgs", "limits", org, *options, "--json"))
    return shown


@pytest.fixture()
def second_api(stack: Stack) -> Iterator[str]:
    """A second API process on the same database and Temporal."""
    port = free_port()
    env = {**stack.env, "TOLK_API_PORT": str(port)}
    proc = subprocess.Popen([sys.executable, "-m", "cli.main", "api"], env=env)
    url = f"http://{stack.settings.api_host}:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_the_rate_limit_is_shared_by_api_processes_and_says_when_to_retry(
    stack: Stack, second_api: str
) -> None:
    org, key = new_org_key(stack, "Rate Co")
    assert limits(stack, org, "--requests-per-minute", "6")["limits"]["requestsPerMinute"] == 6
    other_org, other_key = new_org_key(stack, "Unlimited Co")
    limits(stack, other_org, "--requests-per-minute", "none")
    urls = [stack.api_url, second_api]
    answers = [
        httpx.get(f"{urls[n % 2]}/jobs/localization", headers={"X-API-Key": key}) for n in range(7)
    ]
    assert [a.status_code for a in answers] == [200] * 6 + [429], [a.text for a in answers]
    assert [int(a.headers["RateLimit-Remaining"]) for a in answers[:6]] == [5, 4, 3, 2, 1, 0]
    assert all(a.headers["RateLimit-Limit"] == "6" for a in answers)
    refused = answers[6]
    body = refused.json()
    assert body["_tag"] == "RateLimitError" and "6 requests per minute" in body["message"]
    retry_after = int(refused.headers["Retry-After"])
    assert 1 <= retry_after <= 60 and body["retryAfter"] == retry_after
    assert refused.headers["RateLimit-Remaining"] == "0"
    assert 1 <= int(refused.headers["RateLimit-Reset"]) <= 60
    # Another organization is not counted with it, and one without a limit has no headers.
    free = httpx.get(f"{stack.api_url}/jobs/localization", headers={"X-API-Key": other_key})
    assert free.status_code == 200 and "RateLimit-Limit" not in free.headers
    # Public routes are not counted.
    assert httpx.get(f"{stack.api_url}/healthz").status_code == 200


def org_groups(stack: Stack, org: str) -> int:
    """How many groups the organization has, read from the database itself."""

    async def run() -> int:
        db = Database(stack.settings.database_url)
        try:
            async with db.session() as session:
                query = select(func.count()).select_from(JobGroup)
                return int(await session.scalar(query.where(JobGroup.organization_id == org)) or 0)
        finally:
            await db.close()

    return asyncio.run(run())


def test_a_new_group_is_counted_in_the_write_that_stores_it_and_every_refusal_counts(
    stack: Stack, second_api: str
) -> None:
    """POST /jobs/localization counts its request in the transaction that stores the
    group: the limit still holds exactly across API processes, a request refused for any
    reason (a bad body, a replay) is counted all the same, and once over the limit every
    request is the 429, whatever else is wrong with it, with nothing stored."""
    org, key = new_org_key(stack, "Posting Co")
    limits(stack, org, "--requests-per-minute", "5")
    body = {"sourceLocale": "en", "targetLocales": ["de"], "data": {"t": "Hello"}}
    urls = [stack.api_url, second_api]

    def post(n: int, payload: dict[str, Any]) -> httpx.Response:
        return httpx.post(
            f"{urls[n % 2]}/jobs/localization", json=payload, headers={"X-API-Key": key}, timeout=60
        )

    first = post(0, {**body, "idempotencyKey": "count-1"})
    assert first.status_code == 202, first.text
    assert first.headers["RateLimit-Remaining"] == "4"
    bad = post(1, {**body, "targetLocales": []})
    assert bad.status_code == 400, bad.text
    replay = post(0, {**body, "idempotencyKey": "count-1"})
    assert replay.status_code == 202 and replay.headers["Idempotent-Replayed"] == "true"
    assert replay.headers["RateLimit-Remaining"] == "2"  # the 400 counted too
    fourth = post(1, body)
    assert fourth.status_code == 202 and fourth.headers["RateLimit-Remaining"] == "1"
    fifth = post(0, body)
    assert fifth.status_code == 202 and fifth.headers["RateLimit-Remaining"] == "0"
    stored = org_groups(stack, org)
    assert stored == 3
    for n, payload in enumerate(
        [body, {**body, "targetLocales": []}, {**body, "idempotencyKey": "x"}]
    ):
        over = post(n, payload)
        assert over.status_code == 429, over.text
        assert over.json()["_tag"] == "RateLimitError" and "5 requests per minute" in over.text
        assert over.headers["RateLimit-Remaining"] == "0" and int(over.headers["Retry-After"]) >= 1
    assert org_groups(stack, org) == stored  # nothing stored once over
    # A process that refused remembers until when no request fits, but not past a raised
    # limit (an organization's limits reach every process within LIMITS_TTL_SECONDS).
    limits(stack, org, "--requests-per-minute", "100")
    time.sleep(LIMITS_TTL_SECONDS + 0.5)
    for n in range(2):
        assert post(n, body).status_code == 202


def test_active_groups_are_limited_but_a_replay_is_not(stack: Stack) -> None:
    org, key = new_org_key(stack, "Busy Co")
    limits(stack, org, "--active-groups", "1", "--requests-per-minute", "none")
    http = httpx.Client(base_url=stack.api_url, headers={"X-API-Key": key}, timeout=60)
    waiting = {"humanReview": {"enabled": True}}
    body = {"sourceLocale": "en", "targetLocales": ["de"], "data": {"t": "Hello"}}
    first = http.post(
        "/jobs/localization", json={**body, "pipelineConfig": waiting, "idempotencyKey": "a-1"}
    )
    assert first.status_code == 202, first.text
    second = http.post("/jobs/localization", json=body)
    assert second.status_code == 429, second.text
    assert second.json()["_tag"] == "RateLimitError" and "active groups" in second.json()["message"]
    assert second.headers["Retry-After"] == "10"
    replay = http.post(
        "/jobs/localization", json={**body, "pipelineConfig": waiting, "idempotencyKey": "a-1"}
    )
    assert replay.status_code == 202 and replay.json()["groupId"] == first.json()["groupId"]
    job_id = first.json()["jobs"][0]["id"]
    deadline = time.monotonic() + 60
    while http.get(f"/jobs/localization/{job_id}").json()["status"] != "awaiting_review":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert http.post(f"/jobs/localization/{job_id}/review", json={"action": "approve"}).is_success
    wait_for_group(http, first.json()["groupId"])
    assert http.post("/jobs/localization", json=body).status_code == 202


def test_limits_are_set_shown_and_refused_when_bad(stack: Stack) -> None:
    org, _ = new_org_key(stack, "Limits Co")
    shown = limits(stack, org)
    assert shown["own"] == [] and set(shown["limits"]) == set(contract.QUOTAS)
    set_ = limits(stack, org, "--monthly-budget-usd", "12.5", "--active-groups", "none")
    assert set_["limits"]["monthlyBudgetUsd"] == 12.5 and set_["limits"]["activeGroups"] is None
    assert set_["own"] == ["activeGroups", "monthlyBudgetUsd"]
    back = limits(stack, org, "--active-groups", "default")
    assert back["limits"]["activeGroups"] == shown["limits"]["activeGroups"]
    assert back["own"] == ["monthlyBudgetUsd"]
    plain = run_tolk(stack, "orgs", "limits", org)
    assert "monthlyBudgetUsd: 12.5\n" in plain and "activeGroups: " in plain
    for bad in (["--monthly-tokens", "-3"], ["--requests-per-minute", "lots"]):
        result = subprocess.run(
            [sys.executable, "-m", "cli.main", "orgs", "limits", org, *bad],
            env=stack.env,
            capture_output=True,
            text=True,
        )
        assert result.returncode == 2 and result.stderr.strip(), result
    assert limits(stack, org) == back  # nothing changed
    unknown = subprocess.run(
        [sys.executable, "-m", "cli.main", "orgs", "limits", "org_unknownunknown1"],
        env=stack.env,
        capture_output=True,
        text=True,
    )
    assert unknown.returncode == 1 and "unknown organization" in unknown.stderr
