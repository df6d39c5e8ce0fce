"""Spending limits on the real stack with the LLM stand-in: the monthly budget (USD and
tokens) refuses new work with 402 and stops a running job after the batch in flight with
``budget_exceeded``; ``maxCostUsd`` fails a group's unfinished jobs with
``cost_limit_reached`` and leaves its finished ones be; the spend ledger holds each batch."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import col, select

import contract
from stack import Stack
from store import quotas
from store.db import Database
from store.spend import budget_message, month_start, next_month
from store.tables import SpendEntry
from tests.conftest import new_org_key, stack_settings, wait_for_group
from tests.fake_llm import FakeLLM
from tests.test_progress import collect_ws, ws_url

CONCURRENCY = 4  # settings.llm_concurrency's default: batches of one document in flight
# Enough strings for many more batches than are in flight at once (LLM_BATCH_TOKENS 1000).
BIG_DOC = {f"k{i:04d}": f"Sentence number {i} about the weather and the news" for i in range(600)}
SMALL_DOC = {"title": "Hello there", "body": "Open the course now"}


def set_limits(stack: Stack, org_id: str, **limits: Any) -> None:
    async def run() -> None:
        db = Database(stack.settings.database_url)
        try:
            async with db.writing() as session:
                await quotas.set_limits(session, org_id, limits, [])
        finally:
            await db.close()

    asyncio.run(run())


def ledger(stack: Stack, **where: str) -> list[SpendEntry]:
    async def run() -> list[SpendEntry]:
        db = Database(stack.settings.database_url)
        try:
            async with db.session() as session:
                query = select(SpendEntry)
                for name, value in where.items():
                    query = query.where(col(getattr(SpendEntry, name)) == value)
                return list((await session.exec(query)).all())
        finally:
            await db.close()

    return asyncio.run(run())


@pytest.fixture()
def org(stack: Stack) -> Iterator[tuple[str, httpx.Client]]:
    """A fresh organization (its own spend) and a client with its key."""
    org_id, key = new_org_key(stack, f"Spender {uuid.uuid4().hex[:6]}")
    with httpx.Client(base_url=stack.api_url, headers={"X-API-Key": key}, timeout=30) as c:
        yield org_id, c


def engine(client: httpx.Client, models: list[dict[str, str]]) -> str:
    resp = client.post("/engines", json={"name": f"e {uuid.uuid4().hex[:6]}", "models": models})
    assert resp.status_code == 201, resp.text
    engine_id: str = resp.json()["id"]
    return engine_id


def submit(client: httpx.Client, engine_id: str, data: Any, **extra: Any) -> httpx.Response:
    body = {"sourceLocale": "en", "targetLocales": ["de"], "data": data, "engineId": engine_id}
    return client.post("/jobs/localization", json={**body, **extra})


def finished(client: httpx.Client, created: dict[str, Any]) -> list[dict[str, Any]]:
    group = wait_for_group(client, created["groupId"], timeout=120)
    return [client.get(f"/jobs/localization/{job['id']}").json() for job in group["jobs"]]


def resets_on() -> str:
    return next_month(datetime.now(UTC)).date().isoformat()


def test_a_token_budget_stops_a_running_job_after_the_batches_in_flight(
    stack: Stack, fake_llm: FakeLLM, org: tuple[str, httpx.Client]
) -> None:
    org_id, client = org
    name = f"budget-{uuid.uuid4().hex[:8]}"
    engine_id = engine(client, [{"provider": "openai", "model": name}])
    set_limits(stack, org_id, monthlyTokens=1)  # the first answer spends it

    resp = submit(client, engine_id, BIG_DOC)
    assert resp.status_code == 202, resp.text
    (job,) = finished(client, resp.json())
    assert job["status"] == "failed", job
    assert job["error"].startswith(contract.BUDGET_EXCEEDED), job["error"]
    assert contract.MONTHLY_TOKENS in job["error"] and resets_on() in job["error"]
    assert "weather" not in job["error"]  # no user content in the error
    # Only the batches in flight when the budget ran out were sent (once: not retried).
    calls = fake_llm.calls(model=name)
    assert 1 <= len(calls) <= CONCURRENCY, len(calls)
    assert len({tuple(i["id"] for i in c.items) for c in calls}) == len(calls)
    entries = ledger(stack, job_id=job["id"])
    assert len(entries) == len(calls)
    assert all(e.input_tokens > 0 and e.organization_id == org_id for e in entries)

    refused = submit(client, engine_id, SMALL_DOC)
    assert refused.status_code == 402, refused.text
    body = refused.json()
    assert body["_tag"] == "QuotaExceededError"
    assert contract.MONTHLY_TOKENS in body["message"] and resets_on() in body["message"]
    assert body["quota"] == contract.MONTHLY_TOKENS
    assert body["resetsAt"] == f"{resets_on()}T00:00:00Z"
    sync = client.post(
        "/process/localize",
        json={"engineId": engine_id, "sourceLocale": "en", "targetLocale": "de", "data": SMALL_DOC},
    )
    assert sync.status_code == 402 and sync.json()["_tag"] == "QuotaExceededError", sync.text
    assert len(fake_llm.calls(model=name)) == len(calls)  # nothing more was sent


def test_a_usd_budget_counts_priced_answers_of_jobs_and_process_calls(
    stack: Stack, org: tuple[str, httpx.Client]
) -> None:
    org_id, client = org
    engine_id = engine(client, [{"provider": "openai", "model": "priced"}])
    set_limits(stack, org_id, monthlyBudgetUsd=0.0000001)

    sync = client.post(
        "/process/localize",
        json={"engineId": engine_id, "sourceLocale": "en", "targetLocale": "fr", "data": SMALL_DOC},
    )
    assert sync.status_code == 200, sync.text
    (entry,) = ledger(stack, organization_id=org_id)
    assert entry.kind == "process" and entry.job_id is None and entry.cost_usd > 0

    refused = submit(client, engine_id, SMALL_DOC)
    assert refused.status_code == 402, refused.text
    message = refused.json()["message"]
    assert contract.MONTHLY_BUDGET_USD in message and resets_on() in message
    again = client.post(
        "/process/localize",
        json={"engineId": engine_id, "sourceLocale": "en", "targetLocale": "fr", "data": SMALL_DOC},
    )
    assert again.status_code == 402, again.text

    set_limits(stack, org_id, monthlyBudgetUsd=None)  # raised: no limit
    resp = submit(client, engine_id, SMALL_DOC)
    assert resp.status_code == 202, resp.text
    (job,) = finished(client, resp.json())
    assert job["status"] == "completed", job
    (step,) = job["steps"]
    entries = ledger(stack, job_id=job["id"])
    assert round(sum(e.cost_usd for e in entries), 6) == step["costUsd"]


def test_max_cost_usd_fails_unfinished_jobs_and_keeps_finished_ones(
    stack: Stack, fake_llm: FakeLLM, org: tuple[str, httpx.Client]
) -> None:
    _, client = org
    # French on the free pseudo provider finishes whatever the fuse; German is priced.
    engine_id = engine(
        client,
        [
            {"targetLocale": "fr", "provider": "pseudo"},
            {"provider": "openai", "model": "priced"},
        ],
    )
    before = len(fake_llm.calls(model="priced"))
    resp = submit(client, engine_id, BIG_DOC, targetLocales=["de", "fr"], maxCostUsd=0.000001)
    assert resp.status_code == 202, resp.text
    created = resp.json()
    assert created["estimatedCostUsd"] > 0 and created["maxCostUsd"] == 0.000001
    jobs = {job["targetLocale"]: job for job in finished(client, created)}
    assert jobs["fr"]["status"] == "completed" and jobs["fr"]["outputData"], jobs["fr"]
    assert jobs["de"]["status"] == "failed", jobs["de"]
    assert jobs["de"]["error"].startswith(contract.COST_LIMIT_REACHED), jobs["de"]["error"]
    assert 1 <= len(fake_llm.calls(model="priced")) - before <= CONCURRENCY
    group = client.get(f"/jobs/localization/groups/{created['groupId']}").json()
    assert group["status"] == "partial", group


@pytest.mark.parametrize("bad", [0, -1, "1", True, None])
def test_max_cost_usd_must_be_a_positive_number(org: tuple[str, httpx.Client], bad: Any) -> None:
    _, client = org
    body = {"sourceLocale": "en", "targetLocales": ["de"], "data": SMALL_DOC}
    if bad is None:  # a number too big for a float: infinity
        resp = client.post(
            "/jobs/localization",
            content=b'{"sourceLocale":"en","targetLocales":["de"],"data":{"a":"b"},'
            b'"maxCostUsd":1e999}',
            headers={"Content-Type": "application/json"},
        )
    else:
        resp = client.post("/jobs/localization", json={**body, "maxCostUsd": bad})
    assert resp.status_code == 400, resp.text
    assert resp.json()["_tag"] == "ValidationError"


def test_a_budget_spent_before_a_stage_fails_the_job_not_only_the_stage(
    stack: Stack, fake_llm: FakeLLM, org: tuple[str, httpx.Client]
) -> None:
    org_id, client = org
    name = f"budget-{uuid.uuid4().hex[:8]}"
    engine_id = engine(client, [{"provider": "openai", "model": name}])
    set_limits(stack, org_id, monthlyTokens=1)  # the translation's one batch spends it
    resp = submit(client, engine_id, SMALL_DOC, pipelineConfig={"aiReview": {"enabled": True}})
    assert resp.status_code == 202, resp.text
    (job,) = finished(client, resp.json())
    assert job["status"] == "failed", job
    assert job["error"].startswith(contract.BUDGET_EXCEEDED), job["error"]
    assert job["outputData"] is None
    assert len(fake_llm.calls(model=name)) == 1  # the translation; no review was sent
    # The group's record of the job's end says the same (its stream, its webhook).
    headers = {"X-API-Key": client.headers["X-API-Key"]}
    messages, _ = asyncio.run(collect_ws(ws_url(stack, resp.json()["groupId"]), headers))
    (told,) = messages[0]["snapshot"]["jobs"].values()
    assert told["status"] == "failed" and told["error"] == job["error"], messages


def test_usage_adds_up_jobs_and_process_calls_with_limits_and_what_remains(
    stack: Stack, org: tuple[str, httpx.Client]
) -> None:
    org_id, client = org
    engine_id = engine(client, [{"provider": "openai", "model": "priced"}])
    set_limits(stack, org_id, monthlyBudgetUsd=5.0)
    resp = submit(client, engine_id, SMALL_DOC)
    assert resp.status_code == 202, resp.text
    (job,) = finished(client, resp.json())
    sync = client.post(
        "/process/localize",
        json={"engineId": engine_id, "sourceLocale": "en", "targetLocale": "fr", "data": SMALL_DOC},
    )
    assert sync.status_code == 200, sync.text

    body = client.get("/usage", params={"groupBy": "targetLocale"}).json()
    rows = {row["key"]: row for row in body["rows"]}
    assert set(rows) == {"de", "fr"}, body
    de, fr = rows["de"], rows["fr"]
    assert de["jobs"] == 1 and fr["jobs"] == 0
    assert de["strings"] == fr["strings"] == len(SMALL_DOC)
    assert de["costUsd"] == job["steps"][0]["costUsd"]
    assert de["inputTokens"] == job["usage"]["inputTokens"]
    assert de["outputTokens"] == job["usage"]["outputTokens"]
    assert fr["inputTokens"] == sync.json()["usage"]["inputTokens"]
    assert de["providerCalls"] == fr["providerCalls"] == 1
    totals = body["totals"]
    assert totals["costUsd"] == round(de["costUsd"] + fr["costUsd"], 6)
    assert totals["jobs"] == 1 and totals["strings"] == 2 * len(SMALL_DOC)
    assert body["limits"][contract.MONTHLY_BUDGET_USD] == 5.0
    assert body["limits"][contract.MONTHLY_TOKENS] is None
    assert body["remaining"] == {contract.MONTHLY_BUDGET_USD: round(5.0 - totals["costUsd"], 6)}

    by_model = client.get("/usage", params={"groupBy": "model"}).json()
    assert [row["key"] for row in by_model["rows"]] == ["openai/priced"]
    today = datetime.now(UTC).date().isoformat()
    by_day = client.get("/usage", params={"from": today, "to": today}).json()
    assert [row["key"] for row in by_day["rows"]] == [today]
    assert by_day["totals"] == totals
    by_engine = client.get("/usage", params={"groupBy": "engine"}).json()
    assert [row["key"] for row in by_engine["rows"]] == [engine_id]
    past = client.get("/usage", params={"from": "2020-01-01", "to": "2020-01-31"}).json()
    assert past["rows"] == [] and past["totals"]["costUsd"] == 0


def test_a_model_named_as_long_as_an_engine_allows_is_recorded(
    stack: Stack, org: tuple[str, httpx.Client]
) -> None:
    """Usage and the spend ledger name a model ``provider/model``, longer than either part
    may be: their columns hold it whole (PostgreSQL refuses text longer than its column,
    where SQLite keeps it), so the job completes and usage by model has one key for it."""
    org_id, client = org
    provider = "openai"
    model = "m" * contract.MODEL_NAME_MAX  # as long as an engine's model name may be
    engine_id = engine(client, [{"provider": provider, "model": model}])
    resp = submit(client, engine_id, SMALL_DOC)
    assert resp.status_code == 202, resp.text
    (job,) = finished(client, resp.json())
    assert job["status"] == "completed", job["error"]
    sync = client.post(
        "/process/localize",
        json={"engineId": engine_id, "sourceLocale": "en", "targetLocale": "fr", "data": SMALL_DOC},
    )
    assert sync.status_code == 200, sync.text
    label = f"{provider}/{model}"
    assert sync.json()["model"] == job["usage"]["model"] == label
    assert {entry.model for entry in ledger(stack, organization_id=org_id)} == {label}
    by_model = client.get("/usage", params={"groupBy": "model"}).json()
    assert [row["key"] for row in by_model["rows"]] == [label], by_model


@pytest.mark.parametrize(
    "params",
    [
        {"groupBy": "week"},
        {"from": "yesterday"},
        {"from": "2026-02-30"},
        {"from": "2026-03-02", "to": "2026-03-01"},
        {"colour": "blue"},
    ],
)
def test_usage_refuses_a_bad_query(client: httpx.Client, params: dict[str, str]) -> None:
    resp = client.get("/usage", params=params)
    assert resp.status_code == 400, resp.text
    assert resp.json()["_tag"] == "ValidationError"


def test_budgets_count_calendar_months_in_utc() -> None:
    late = datetime(2026, 12, 31, 23, 30, tzinfo=UTC)
    assert month_start(late) == datetime(2026, 12, 1, tzinfo=UTC)
    assert next_month(late) == datetime(2027, 1, 1, tzinfo=UTC)
    assert next_month(datetime(2026, 1, 31, tzinfo=UTC)) == datetime(2026, 2, 1, tzinfo=UTC)
    assert "resets on 2027-01-01" in budget_message(contract.MONTHLY_TOKENS, late)


def test_the_servers_default_budget_applies_unless_an_organization_has_its_own(
    tmp_path: Path, fake_llm: FakeLLM
) -> None:
    providers = {"openai": {"type": "openai", "base_url": fake_llm.openai_base,
                            "api_key": fake_llm.api_key}}  # fmt: skip
    settings = stack_settings(
        tmp_path,
        TOLK_QUOTAS_MONTHLY_TOKENS="1",
        TOLK_LLM_PROVIDERS=json.dumps(providers),
        TOLK_WORKER_GRACEFUL_SHUTDOWN_SECONDS="1",
        TOLK_API_GRACEFUL_SHUTDOWN_SECONDS="1",
    )
    own = Stack(settings, log_dir=tmp_path / "logs", headless=True)
    own.start()
    try:
        for unlimited in (False, True):
            org_id, key = new_org_key(own, f"Default {unlimited}")
            if unlimited:
                set_limits(own, org_id, monthlyTokens=None)  # its own: no limit
            with httpx.Client(base_url=own.api_url, headers={"X-API-Key": key}, timeout=30) as c:
                engine_id = engine(c, [{"provider": "openai", "model": f"d-{uuid.uuid4().hex}"}])
                first = submit(c, engine_id, SMALL_DOC)
                assert first.status_code == 202, first.text
                (job,) = finished(c, first.json())
                assert job["status"] == "completed", job  # one batch: within the budget
                second = submit(c, engine_id, {"other": "Something else"})
                assert second.status_code == (202 if unlimited else 402), second.text
    finally:
        own.stop()
