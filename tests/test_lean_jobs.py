"""Lean jobs (workflows/group.py, LEAN_JOBS): the activity that stores a job's success makes
the first attempt of its webhook, so a job whose receiver answers is one translate activity
in its workflow's history, and its group hears of the end from the job's completion; when
that completion will be late (a slow receiver, a failed attempt), the activity tells the
group at once by a signal, and the workflow delivers the rest of the series."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from activities.webhooks import PROMPT_SECONDS
from stack import Stack
from tests.conftest import wait_for_group
from tests.receiver import Receiver, Reply

DOC = {"title": "Hello {name}", "body": "<b>Save</b> your work"}


def submit(client: httpx.Client, locales: list[str], url: str) -> dict[str, Any]:
    body = {"sourceLocale": "en", "targetLocales": locales, "data": DOC, "callbackUrl": url}
    resp = client.post("/jobs/localization", json=body)
    assert resp.status_code == 202, resp.text
    return resp.json()


async def temporal(stack: Stack) -> Client:
    return await Client.connect(
        stack.settings.temporal_target, namespace=stack.settings.temporal_namespace
    )


async def event_types(stack: Stack, workflow_id: str) -> list[str]:
    history = await (await temporal(stack)).get_workflow_handle(workflow_id).fetch_history()
    return [EventType.Name(e.event_type).removeprefix("EVENT_TYPE_") for e in history.events]


def deliveries(client: httpx.Client, job_id: str, count: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 60
    items: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        items = client.get(f"/jobs/localization/{job_id}/deliveries").json()["items"]
        if len(items) >= count and items[-1]["outcome"] != "retrying":
            return items
        time.sleep(0.1)
    raise AssertionError(f"expected {count} final delivery records, got {items}")


def test_a_job_whose_receiver_answers_is_one_activity_in_history(
    stack: Stack, client: httpx.Client, receiver: Callable[..., Receiver]
) -> None:
    hook = receiver()
    group = submit(client, ["de", "fr", "ja"], hook.url)
    assert wait_for_group(client, group["groupId"])["status"] == "completed"
    got = hook.wait_for(3)
    assert {r.headers["webhook-id"] for r in got} == {
        deliveries(client, job["id"], 1)[0]["eventId"] for job in group["jobs"]
    }
    for job in group["jobs"]:
        log = deliveries(client, job["id"], 1)
        assert [(d["attempt"], d["outcome"]) for d in log] == [(1, "delivered")]
        types = asyncio.run(event_types(stack, job["id"]))
        # The raw shape: started, a workflow task, the translate activity, a workflow task,
        # completed. No webhook activity, no marker, no signal.
        assert types.count("ACTIVITY_TASK_SCHEDULED") == 1, types
        assert "MARKER_RECORDED" not in types and "TIMER_STARTED" not in types, types
        assert types[-1] == "WORKFLOW_EXECUTION_COMPLETED"
    # The group heard of each end from its child's completion, not by signal.
    group_types = asyncio.run(event_types(stack, group["groupId"]))
    assert "WORKFLOW_EXECUTION_SIGNALED" not in group_types
    assert group_types.count("CHILD_WORKFLOW_EXECUTION_COMPLETED") == 3
    # The memo is written once per workflow task, however many jobs ended in it.
    assert group_types.count("WORKFLOW_PROPERTIES_MODIFIED") <= group_types.count(
        "WORKFLOW_TASK_COMPLETED"
    )


def test_a_failed_first_attempt_is_told_to_the_group_and_retried_by_the_workflow(
    stack: Stack, client: httpx.Client, receiver: Callable[..., Receiver]
) -> None:
    hook = receiver(Reply(503, {"Retry-After": "2"}), Reply(200))
    group = submit(client, ["de"], hook.url)
    job_id = group["jobs"][0]["id"]
    first, second = hook.wait_for(2)
    log = deliveries(client, job_id, 2)
    assert [(d["attempt"], d["statusCode"], d["outcome"]) for d in log] == [
        (1, 503, "retrying"),
        (2, 200, "delivered"),
    ]
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == log[0]["eventId"]
    assert second.at - first.at >= 2.0 * 0.95  # the receiver's Retry-After was waited
    types = asyncio.run(event_types(stack, job_id))
    assert types.count("ACTIVITY_TASK_SCHEDULED") == 2 and "TIMER_FIRED" in types, types
    # The group was told by signal, since the job's workflow went on delivering.
    assert "WORKFLOW_EXECUTION_SIGNALED" in asyncio.run(event_types(stack, group["groupId"]))
    assert wait_for_group(client, group["groupId"])["status"] == "completed"


def test_a_slow_receiver_does_not_hold_back_the_groups_progress(
    stack: Stack, client: httpx.Client, receiver: Callable[..., Receiver]
) -> None:
    # Answers after twice the prompt window (the test stack's attempt timeout is 3 s).
    delay = 2 * PROMPT_SECONDS
    hook = receiver(Reply(200, delay=delay))
    group = submit(client, ["de"], hook.url)
    job_id = group["jobs"][0]["id"]

    async def completed_in_snapshot() -> float:
        handle = (await temporal(stack)).get_workflow_handle(group["groupId"])
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            snapshot = await handle.query("snapshot")
            if snapshot["jobs"][job_id]["status"] == "completed":
                return time.monotonic()
            await asyncio.sleep(0.05)
        raise AssertionError("the group never saw the job completed")

    seen = asyncio.run(completed_in_snapshot())
    (got,) = hook.wait_for(1)
    # The group knew while the receiver was still holding the request.
    assert seen < got.at + delay
    assert [d["outcome"] for d in deliveries(client, job_id, 1)] == ["delivered"]


def test_a_cancel_during_the_first_attempt_lets_it_finish_and_record(
    stack: Stack, client: httpx.Client, receiver: Callable[..., Receiver]
) -> None:
    # The receiver holds the first attempt 2.5 s (the test stack's attempt timeout is 3 s).
    # The moment it arrives, an operator cancels the group (the `cancel` signal, which the
    # API's 409 does not stand in front of): before the activity would tell the group
    # (PROMPT_SECONDS) the group still counts the job as running, so it cancels the job's
    # workflow, whose activity hears of it at its next heartbeat, the attempt in flight.
    hook = receiver(Reply(200, delay=2.5))
    group = submit(client, ["de"], hook.url)
    job_id = group["jobs"][0]["id"]
    (arrived,) = hook.wait_for(1)

    async def cancel() -> None:
        await (await temporal(stack)).get_workflow_handle(group["groupId"]).signal("cancel")

    asyncio.run(cancel())
    settled = wait_for_group(client, group["groupId"])
    # Stored before the cancel came: the job stays completed.
    assert [job["status"] for job in settled["jobs"]] == ["completed"]
    types = asyncio.run(event_types(stack, job_id))
    assert "WORKFLOW_EXECUTION_CANCEL_REQUESTED" in types, types  # the cancel did reach it
    log = deliveries(client, job_id, 1)
    # Every POST the receiver got is a recorded attempt of the one event, and no second
    # series was started for it.
    assert len(hook.received) == len(log) == 1, (hook.received, log)
    assert log[0]["outcome"] == "delivered" and log[0]["eventId"] == arrived.headers["webhook-id"]
    assert types.count("ACTIVITY_TASK_SCHEDULED") == 1, types
