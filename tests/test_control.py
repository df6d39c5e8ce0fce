"""Cancel and retry, from the API and from the real ``temporal`` CLI; search attributes and
the snapshot query as operators use them."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook

import contract
from stack import Stack, temporal_binary
from tests.conftest import run_tolk, wait_for_group
from tests.receiver import Receiver
from tests.test_progress import collect_ws, parse_sse, ws_url
from tests.test_webhooks import deliveries

TEN = ["de", "fr", "es", "it", "nl", "sv", "da", "fi", "pl", "cs"]


def big_document(sections: int = 30, lines: int = 200, padding: int = 0) -> dict[str, Any]:
    """Large enough that a locale takes a noticeable time through the pseudo engine."""
    tail = " and more words" * (padding // 15)
    return {
        f"s{i}": {f"l{j}": f"Line {j} of section {i}, hello {{user}}!{tail}" for j in range(lines)}
        for i in range(sections)
    }


class WebSocketWatcher:
    """Collects one group's WebSocket stream in a background thread."""

    def __init__(self, stack: Stack, group_id: str, key: str) -> None:
        self._outcome: tuple[list[dict[str, Any]], int | None] | None = None
        url = ws_url(stack, group_id)
        self._thread = threading.Thread(
            target=lambda: setattr(
                self, "_outcome", asyncio.run(collect_ws(url, {"X-API-Key": key}))
            )
        )
        self._thread.start()

    def result(self, timeout: float = 120) -> tuple[list[dict[str, Any]], int | None]:
        self._thread.join(timeout)
        assert self._outcome is not None, "the stream did not end"
        return self._outcome


def ws_messages(stack: Stack, group_id: str, key: str) -> list[dict[str, Any]]:
    messages, code = asyncio.run(collect_ws(ws_url(stack, group_id), {"X-API-Key": key}))
    assert code == 1000
    return messages


def temporal_cli(stack: Stack, *args: str) -> str:
    result = subprocess.run(
        [
            temporal_binary(),
            *args,
            "--address",
            stack.settings.temporal_target,
            "--namespace",
            stack.settings.temporal_namespace,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def submit(
    client: httpx.Client, locales: list[str], data: dict[str, Any], **extra: Any
) -> dict[str, Any]:
    resp = client.post(
        "/jobs/localization",
        json={"sourceLocale": "en", "targetLocales": locales, "data": data, **extra},
    )
    assert resp.status_code == 202, resp.text
    body: dict[str, Any] = resp.json()
    return body


def pending_activities(stack: Stack, workflow_ids: list[str]) -> list[str]:
    """Activity types still pending in any of the workflows, as `temporal` describes them."""
    pending = []
    for workflow_id in workflow_ids:
        described = json.loads(
            temporal_cli(stack, "workflow", "describe", "--workflow-id", workflow_id, "-o", "json")
        )
        for act in described.get("pendingActivities") or []:
            pending.append(f"{workflow_id}:{act['activityType']['name']}:{act.get('state')}")
    return pending


def assert_cancel_outcome(client: httpx.Client, group: dict[str, Any]) -> None:
    """Finished locales keep their outputs; the rest are cancelled with no output."""
    statuses = {job["status"] for job in group["jobs"]}
    assert statuses <= {"completed", "cancelled"}, statuses
    assert "cancelled" in statuses, "the cancel must have reached unfinished jobs"
    for job in group["jobs"]:
        detail = client.get(f"/jobs/localization/{job['id']}").json()
        if job["status"] == "completed":
            assert detail["outputData"] is not None
        else:
            assert detail["outputData"] is None
            assert detail["completedAt"] is not None
    expected = "partial" if "completed" in statuses else "cancelled"
    assert group["status"] == expected
    assert group["cancelledJobs"] == sum(j["status"] == "cancelled" for j in group["jobs"])


def test_cancel_ten_locale_group_in_flight_then_retry(
    client: httpx.Client, stack: Stack, receiver: Callable[..., Receiver]
) -> None:
    # About 4 MB per locale and 4 activities at a time (see conftest): the locales run in
    # waves of several seconds, so when the first finishes the last wave has not started,
    # however slowly the cancel travels through a busy worker.
    hook = receiver()
    created = submit(client, TEN, big_document(sections=100, padding=150), callbackUrl=hook.url)
    group_id = created["groupId"]
    # A live WebSocket subscriber watches the whole cancel.
    watcher = WebSocketWatcher(stack, group_id, client.headers["X-API-Key"])
    # Cancel once the first locale is done, so finished and unfinished jobs both exist.
    _wait_until(
        lambda: client.get(f"/jobs/localization/groups/{group_id}").json()["completedJobs"] > 0,
        60,
        every=0.05,
    )
    resp = client.post(f"/jobs/localization/groups/{group_id}/cancel", json={"reason": "typo"})
    assert resp.status_code == 202, resp.text
    assert resp.json()["groupId"] == group_id

    group = wait_for_group(client, group_id, timeout=120)
    assert_cancel_outcome(client, group)
    assert group["status"] == "partial"
    messages, code = watcher.result()
    by_job = {m["jobId"]: m["type"] for m in messages if m["type"].startswith("job.")}
    for job in group["jobs"]:
        expected = "job.cancelled" if job["status"] == "cancelled" else "job.completed"
        assert by_job.get(job["id"]) == expected, (job, by_job)
    assert messages[-1]["type"] == "group.completed" and messages[-1]["status"] == "partial"
    assert code == 1000
    ids = [group_id, *(job["id"] for job in group["jobs"])]
    # Nothing keeps running once the group is settled (recording may still be finishing).
    _wait_until(lambda: pending_activities(stack, ids) == [], 30)
    # Every finished locale's event went out; cancelled locales send none. Delivery is at
    # least once (API.md): an attempt that timed out on a busy machine after the receiver
    # had read it is sent again, with the same webhook-id, as a recorded attempt.
    finished = {job["id"] for job in group["jobs"] if job["status"] == "completed"}
    logs = {job_id: deliveries(client, job_id, 1) for job_id in finished}
    for log in logs.values():
        assert log[-1]["outcome"] == "delivered", log
        assert {item["eventId"] for item in log} == {log[0]["eventId"]}, log
    key = client.get("/webhooks/settings").json()["secret"]
    received = hook.wait_for(len(finished))
    posts: dict[str, list[str]] = {}
    for got in received:
        payload = Webhook(key).verify(got.body, got.headers)
        assert payload["type"] == "translation.completed", payload
        posts.setdefault(payload["jobId"], []).append(got.headers["webhook-id"])
    assert set(posts) == finished
    for job_id, ids in posts.items():
        assert set(ids) == {logs[job_id][0]["eventId"]}, (ids, logs[job_id])
        assert len(ids) <= len(logs[job_id]), (ids, logs[job_id])

    # Cancelling a finished group is a conflict, and changes nothing.
    again = client.post(f"/jobs/localization/groups/{group_id}/cancel")
    assert again.status_code == 409
    assert again.json()["_tag"] == "ConflictError"

    # Retry runs the cancelled jobs again under the same ids.
    cancelled_ids = {job["id"] for job in group["jobs"] if job["status"] == "cancelled"}
    retried = client.post(f"/jobs/localization/groups/{group_id}/retry")
    assert retried.status_code == 202, retried.text
    requeued = {job["id"] for job in retried.json()["jobs"] if job["status"] != "completed"}
    assert requeued == cancelled_ids
    assert retried.json()["status"] in {"pending", "processing"}
    # A stream opened right after the retry follows the new run: it must not replay the
    # previous run's group.completed and stop.
    events = parse_sse(
        httpx.get(
            f"{stack.api_url}/jobs/localization/groups/{group_id}/events",
            headers=client.headers,
            timeout=180,
        ).text
    )
    assert events[0]["event"] == "snapshot"
    assert json.loads(events[0]["data"])["snapshot"]["status"] in {"pending", "processing"}
    assert events[-1]["event"] == "group.completed"
    assert json.loads(events[-1]["data"])["status"] == "completed"
    assert {json.loads(e["data"])["jobId"] for e in events[1:-1]} == cancelled_ids
    final = wait_for_group(client, group_id, timeout=180)
    assert final["status"] == "completed"
    assert {job["id"] for job in final["jobs"]} == {job["id"] for job in created["jobs"]}
    for job_id in cancelled_ids:
        detail = client.get(f"/jobs/localization/{job_id}").json()
        assert detail["status"] == "completed"
        assert detail["outputData"] is not None

    nothing = client.post(f"/jobs/localization/groups/{group_id}/retry")
    assert nothing.status_code == 409


def test_cancel_and_retry_refuse_by_the_jobs_statuses() -> None:
    """The one rule the API, the workflow's validators and ``tolk groups`` apply."""
    assert contract.cancel_refused(["completed", "processing"]) is None
    assert contract.cancel_refused(["queued"]) is None
    assert contract.cancel_refused(["completed", "failed"]) == contract.NOTHING_TO_CANCEL
    assert contract.retry_refused(["completed", "cancelled"]) is None
    assert contract.retry_refused(["failed", "processing"]) is None
    assert contract.retry_refused(["completed", "processing"]) == contract.NOTHING_TO_RETRY


def test_control_routes_are_scoped_and_validated(
    client: httpx.Client, stack: Stack, other_key: str
) -> None:
    created = submit(client, ["de"], {"a": "b"})
    group_id = created["groupId"]
    for action in ("cancel", "retry"):
        foreign = httpx.post(
            f"{stack.api_url}/jobs/localization/groups/{group_id}/{action}",
            headers={"X-API-Key": other_key},
        )
        assert foreign.status_code == 404
        assert foreign.json()["_tag"] == "NotFoundError"
    bad = client.post(f"/jobs/localization/groups/{group_id}/cancel", json={"reason": 5})
    assert bad.status_code == 400
    wait_for_group(client, group_id)
    assert client.post(f"/jobs/localization/groups/{group_id}/retry").status_code == 409


def test_operator_cli_search_query_signal_and_cancel(client: httpx.Client, stack: Stack) -> None:
    # A finished group is listed by each search attribute and answers the snapshot query.
    done = submit(client, ["de", "ja"], {"title": "Hello"})
    done_group = wait_for_group(client, done["groupId"])
    org = client.get(f"/jobs/localization/{done_group['jobs'][0]['id']}").json()
    engine_id = org["engineId"]
    queries = [
        "TolkGroupStatus='completed'",
        f"TolkEngine='{engine_id}'",
        "TolkSourceLocale='en'",
        "TolkTargetLocales='ja'",
    ]
    for query in queries:
        found = _list_ids(stack, query, expect=done["groupId"])
        assert done["groupId"] in found, query
    # Organization too: look it up through the group's own attributes.
    described = json.loads(
        temporal_cli(stack, "workflow", "describe", "--workflow-id", done["groupId"], "-o", "json")
    )
    assert "TolkOrganization" in json.dumps(described)

    snapshot = json.loads(
        temporal_cli(
            stack,
            "workflow",
            "query",
            "--workflow-id",
            done["groupId"],
            "--name",
            "snapshot",
            "-o",
            "json",
        )
    )
    snap = snapshot["queryResult"][0] if "queryResult" in snapshot else snapshot
    assert snap["groupId"] == done["groupId"]
    assert snap["totalJobs"] == snap["completedJobs"] == 2
    assert {j["status"] for j in snap["jobs"].values()} == {"completed"}

    # Signal `cancel` on a group in flight, then `retry`, all from the CLI.
    flying = submit(client, TEN[:4], big_document())
    temporal_cli(
        stack, "workflow", "signal", "--workflow-id", flying["groupId"], "--name", "cancel"
    )
    cancelled = wait_for_group(client, flying["groupId"], timeout=120)
    assert_cancel_outcome(client, cancelled)
    key = client.headers["X-API-Key"]
    stream = ws_messages(stack, flying["groupId"], key)
    assert [m["type"] for m in stream] == ["snapshot", "group.completed"]
    assert stream[-1]["status"] == cancelled["status"]
    assert stream[0]["snapshot"]["cancelledJobs"] == cancelled["cancelledJobs"]
    assert flying["groupId"] in _list_ids(
        stack, f"TolkGroupStatus='{cancelled['status']}'", expect=flying["groupId"]
    )
    # The finished group's workflow closes once its job workflows have (no linger in the
    # test stack): a signal reaches it no more, the operator's own command does.
    _wait_until(lambda: workflow_status(stack, flying["groupId"]) != "RUNNING", 60)
    retried = json.loads(run_tolk(stack, "groups", "retry", flying["groupId"], "--json"))
    assert retried["groupId"] == flying["groupId"] and retried["jobs"]
    _wait_until(
        lambda: (
            client.get(f"/jobs/localization/groups/{flying['groupId']}").json()["status"]
            == "completed"
        ),
        180,
    )
    stream = ws_messages(stack, flying["groupId"], key)
    assert stream[-1]["type"] == "group.completed" and stream[-1]["status"] == "completed"
    assert stream[0]["snapshot"]["completedJobs"] == 4

    # `temporal workflow cancel` on a group cancels its unfinished jobs and closes it.
    stack.kill("worker", signal.SIGTERM)
    doomed = submit(client, TEN[:4], big_document())
    temporal_cli(stack, "workflow", "cancel", "--workflow-id", doomed["groupId"])
    stack.start_worker()
    doomed_group = wait_for_group(client, doomed["groupId"], timeout=120)
    assert_cancel_outcome(client, doomed_group)
    stream = ws_messages(stack, doomed["groupId"], key)
    assert [m["type"] for m in stream] == ["snapshot", "group.completed"]
    assert stream[-1]["status"] == "cancelled"
    status_attr = doomed_group["status"]
    assert status_attr == "cancelled"
    # Cancelling a finished group changes nothing, not even its completedAt: its workflow
    # has closed, and our command says there is nothing to cancel.
    _wait_until(lambda: workflow_status(stack, done["groupId"]) != "RUNNING", 30)
    refused = subprocess.run(
        [sys.executable, "-m", "cli.main", "groups", "cancel", done["groupId"]],
        env=stack.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 1 and "nothing" in refused.stderr, refused
    after = client.get(f"/jobs/localization/groups/{done['groupId']}").json()
    assert after["status"] == "completed"
    assert after["completedAt"] == done_group["completedAt"]
    assert doomed["groupId"] in _list_ids(
        stack, f"TolkGroupStatus='{status_attr}'", expect=doomed["groupId"]
    )
    closed = json.loads(
        temporal_cli(
            stack, "workflow", "describe", "--workflow-id", doomed["groupId"], "-o", "json"
        )
    )
    assert closed["workflowExecutionInfo"]["status"] != "WORKFLOW_EXECUTION_STATUS_RUNNING"


def workflow_status(stack: Stack, workflow_id: str) -> str:
    """RUNNING, COMPLETED, ... as ``temporal workflow describe`` says."""
    described = json.loads(
        temporal_cli(stack, "workflow", "describe", "--workflow-id", workflow_id, "-o", "json")
    )
    value: str = described["workflowExecutionInfo"]["status"]
    return value.removeprefix("WORKFLOW_EXECUTION_STATUS_")


def _list_ids(stack: Stack, query: str, expect: str | None = None) -> set[str]:
    """Visibility is eventually consistent: poll until ``expect`` shows up (bounded)."""
    deadline = time.monotonic() + 20
    while True:
        out = temporal_cli(stack, "workflow", "list", "--query", query, "-o", "json")
        ids = {row["execution"]["workflowId"] for row in json.loads(out or "[]")}
        if expect is None or expect in ids or time.monotonic() > deadline:
            return ids
        time.sleep(0.3)


def _wait_until(predicate: Any, timeout: float, every: float = 0.3) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(every)
    pytest.fail("condition not reached in time")
