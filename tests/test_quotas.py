"""Per-organization quotas on the real stack: the request rate on every keyed route (429
RateLimitError with Retry-After and RateLimit-* headers, counted in the database so that
two API processes share one limit), the active-groups limit on POST /jobs/localization,
and ``tolk orgs limits`` that sets them."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

import contract
from stack import Stack, free_port
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
