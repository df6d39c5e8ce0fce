"""Idempotency keys: racing duplicates make one group; a different body is refused."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

import httpx

from stack import Stack
from tests.conftest import wait_for_group


def body(key: str, title: str = "Hello {name}") -> dict[str, object]:
    return {
        "sourceLocale": "en",
        "targetLocales": ["de", "fr", "ja"],
        "data": {"title": title, "items": ["one", "two"]},
        "idempotencyKey": key,
    }


def test_twenty_racing_duplicates_make_one_group(
    stack: Stack, api_key: str, client: httpx.Client, db_counts: Callable[[], dict[str, int]]
) -> None:
    key = f"race-{uuid.uuid4()}"
    before = db_counts()

    async def race() -> list[httpx.Response]:
        async with httpx.AsyncClient(
            base_url=stack.api_url, headers={"X-API-Key": api_key}, timeout=30
        ) as http:
            return await asyncio.gather(
                *(http.post("/jobs/localization", json=body(key)) for _ in range(20))
            )

    responses = asyncio.run(race())
    assert [r.status_code for r in responses] == [202] * 20, [r.text for r in responses]
    group_ids = {r.json()["groupId"] for r in responses}
    assert len(group_ids) == 1
    job_id_sets = {tuple(job["id"] for job in r.json()["jobs"]) for r in responses}
    assert len(job_id_sets) == 1, "every replay reports the same jobs"
    fresh = [r for r in responses if r.headers.get("Idempotent-Replayed") != "true"]
    assert len(fresh) == 1, "exactly one request created the group"

    after = db_counts()
    assert after["jobgroup"] == before["jobgroup"] + 1
    assert after["job"] == before["job"] + 3

    group = wait_for_group(client, group_ids.pop())
    assert group["status"] == "completed"

    # A replay after completion returns the same group with its current statuses.
    replay = client.post("/jobs/localization", json=body(key))
    assert replay.status_code == 202
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json()["groupId"] == group["groupId"]
    assert {job["status"] for job in replay.json()["jobs"]} == {"completed"}
    assert db_counts()["jobgroup"] == after["jobgroup"]


def test_same_key_different_body_is_refused(
    client: httpx.Client, db_counts: Callable[[], dict[str, int]]
) -> None:
    key = f"reuse-{uuid.uuid4()}"
    first = client.post("/jobs/localization", json=body(key))
    assert first.status_code == 202
    before = db_counts()
    second = client.post("/jobs/localization", json=body(key, title="Goodbye"))
    assert second.status_code == 422
    assert second.json()["_tag"] == "IdempotencyKeyReusedError"
    assert "message" in second.json()
    assert db_counts() == before


def test_key_is_scoped_to_the_organization(
    client: httpx.Client, stack: Stack, other_key: str
) -> None:
    key = f"scoped-{uuid.uuid4()}"
    mine = client.post("/jobs/localization", json=body(key))
    theirs = httpx.post(
        f"{stack.api_url}/jobs/localization",
        json=body(key, title="Different content"),
        headers={"X-API-Key": other_key},
        timeout=30,
    )
    assert mine.status_code == theirs.status_code == 202
    assert mine.json()["groupId"] != theirs.json()["groupId"]
    assert "Idempotent-Replayed" not in theirs.headers


def test_normalised_duplicates_are_the_same_request(client: httpx.Client) -> None:
    key = f"norm-{uuid.uuid4()}"
    a = body(key)
    b = {**body(key), "targetLocales": ["DE", "fr", "ja"], "sourceLocale": "EN"}
    first = client.post("/jobs/localization", json=a)
    second = client.post("/jobs/localization", json=b)
    assert first.status_code == second.status_code == 202
    assert second.headers.get("Idempotent-Replayed") == "true"
    assert first.json()["groupId"] == second.json()["groupId"]
