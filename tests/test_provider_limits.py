"""A provider's ``requests_per_minute`` holds across all workers together: two worker
processes share one provider limited to 3 requests per minute, and the stand-in never sees
more than 3 in any 60 s while jobs that need more calls wait (``processing``) and complete.

This test takes just over a minute by nature (the window is 60 s). Its limits only catch a
hang; nothing here is timed."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from temporalio.client import Client

from stack import Stack
from tests.conftest import new_org_key, run_sql, stack_settings, wait_for_group
from tests.fake_llm import FakeLLM

LIMIT = 240.0  # seconds; a safety limit against hangs, never a speed requirement
PER_MINUTE = 3
LOCALES = ["de", "fr", "es", "it", "nl"]  # one job each, one call each: five calls


@pytest.fixture()
def two_workers(tmp_path: Path, fake_llm: FakeLLM) -> Iterator[Stack]:
    providers = {
        "capped": {
            "type": "openai",
            "base_url": fake_llm.openai_base,
            "api_key": fake_llm.api_key,
            "requests_per_minute": PER_MINUTE,
        }
    }
    settings = stack_settings(
        tmp_path,
        TOLK_WORKER_PROCESSES="2",
        TOLK_LLM_PROVIDERS=json.dumps(providers),
        TOLK_WORKER_GRACEFUL_SHUTDOWN_SECONDS="1",
    )
    stack = Stack(settings, log_dir=tmp_path / "logs", headless=True)
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()


def most_in_any_window(arrivals: list[float], seconds: float = 60.0) -> int:
    """The most arrivals in any ``seconds`` long window (each window starting at one)."""
    return max(sum(1 for other in arrivals if start <= other < start + seconds)
               for start in arrivals)  # fmt: skip


def test_a_providers_requests_per_minute_hold_across_two_workers(
    two_workers: Stack, fake_llm: FakeLLM, tmp_path: Path
) -> None:
    stack = two_workers
    assert {"worker", "worker-2"} <= set(stack.procs)
    _org, key = new_org_key(stack, "Capped")
    model = f"good:{uuid.uuid4().hex[:8]}"
    with httpx.Client(base_url=stack.api_url, headers={"X-API-Key": key}, timeout=30) as client:
        engine = client.post(
            "/engines",
            json={"name": "capped", "models": [{"provider": "capped", "model": model}]},
        )
        assert engine.status_code == 201, engine.text
        body = {
            "sourceLocale": "en",
            "targetLocales": LOCALES,
            "engineId": engine.json()["id"],
            "data": {"greeting": "Hello", "farewell": "Goodbye"},
        }
        created = client.post("/jobs/localization", json=body)
        assert created.status_code == 202, created.text
        group_id = created.json()["groupId"]

        # The first three calls go at once; the rest wait for the window, their jobs
        # still processing (not failed, not retried as failures).
        deadline = time.monotonic() + LIMIT
        while len(fake_llm.calls(model=model)) < PER_MINUTE:
            assert time.monotonic() < deadline, "the first calls never came"
            time.sleep(0.2)
        waiting = client.get(f"/jobs/localization/groups/{group_id}").json()
        assert waiting["status"] == "processing", waiting
        statuses = [job["status"] for job in waiting["jobs"]]
        assert statuses.count("completed") <= PER_MINUTE, waiting
        assert "processing" in statuses and "failed" not in statuses, waiting

        done = wait_for_group(client, group_id, timeout=LIMIT)
    assert done["status"] == "completed", done
    calls = fake_llm.calls(model=model)
    assert len(calls) == len(LOCALES), [(c.status, c.at) for c in calls]
    assert all(call.status == 200 for call in calls)
    arrivals = [call.at for call in calls]
    assert most_in_any_window(arrivals) <= PER_MINUTE, arrivals
    assert max(arrivals) - min(arrivals) >= 60, arrivals  # some calls had to wait

    # A call waits in place only briefly: the jobs that waited longer held no worker
    # slot, their workflows slept and ran translate again (no attempt used up: all
    # completed).
    waits = asyncio.run(_waits(stack, [job["id"] for job in done["jobs"]]))
    assert any(translates > 1 and timers > 0 for translates, timers in waits), waits

    # What the workers logged, and the shared log of calls with their real usage.
    logged = "".join(path.read_text() for path in (tmp_path / "logs").glob("worker*.log"))
    assert "provider capped is at its rate limit (3 requests per minute)" in logged
    assert "its job waits for it without holding a worker" in logged
    assert "Traceback" not in logged  # waiting is expected, not an error
    rows = [tuple(row) for row in run_sql(stack, "SELECT provider, tokens FROM providercall")]
    assert len(rows) == len(LOCALES) and all(p == "capped" and t > 0 for p, t in rows), rows


async def _waits(stack: Stack, job_ids: list[str]) -> list[tuple[int, int]]:
    """Per job workflow: how many times it scheduled translate_job, and its timers."""
    client = await Client.connect(
        stack.settings.temporal_target, namespace=stack.settings.temporal_namespace
    )
    found = []
    for job_id in job_ids:
        history = await client.get_workflow_handle(job_id).fetch_history()
        translates = sum(
            1
            for e in history.events
            if e.HasField("activity_task_scheduled_event_attributes")
            and e.activity_task_scheduled_event_attributes.activity_type.name == "translate_job"
        )
        timers = sum(1 for e in history.events if e.HasField("timer_started_event_attributes"))
        found.append((translates, timers))
    return found
