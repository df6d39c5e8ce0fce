"""The crash windows between a 202 and the last webhook, on the real stack: an accepted
group with no workflow, a terminated group, a retry of a group whose workflow has closed,
racing retries and cancels. Each would leave a group unfinished, or a job wrong, without
the outbox, the reconciler, conditional writes and update-with-start."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import update
from sqlmodel import col
from temporalio.client import Client, WorkflowExecutionStatus

import starter
from stack import Stack
from store import groups
from store.db import Database
from store.ids import derived_id
from store.tables import JobGroup
from tests.conftest import broken_engine, run_sql, run_tolk, wait_for_group
from tests.test_control import _wait_until, big_document, submit, temporal_cli, workflow_status
from tests.test_progress import insert_orphan_group

SUCCEEDED = {"completed", "completed_with_warnings"}


def runs_of(stack: Stack, workflow_id: str) -> list[WorkflowExecutionStatus | None]:
    """Every run of one workflow id, newest first (visibility: eventually consistent)."""

    async def listed() -> list[WorkflowExecutionStatus | None]:
        client = await Client.connect(
            stack.settings.temporal_target, namespace=stack.settings.temporal_namespace
        )
        return [w.status async for w in client.list_workflows(f"WorkflowId = '{workflow_id}'")]

    return asyncio.run(listed())


def job_details(client: httpx.Client, group: dict[str, Any]) -> list[dict[str, Any]]:
    return [client.get(f"/jobs/localization/{job['id']}").json() for job in group["jobs"]]


def test_the_job_ids_of_a_group_are_derived_from_it(stack: Stack, client: httpx.Client) -> None:
    # Whoever starts the workflow (this request, a replay, the reconciler) gives it the ids
    # of these very rows: random job ids made a replay after a failed start orphan them.
    created = submit(client, ["de", "fr"], {"t": "Hi"}, idempotencyKey="derived-ids-1")
    secret = stack.settings.resolved_secret_key()
    for job in created["jobs"]:
        assert job["id"] == derived_id("ljb_", secret, created["groupId"], job["targetLocale"])


def test_an_accepted_group_without_a_workflow_is_started_by_the_reconciler(
    stack: Stack, client: httpx.Client, org_key: tuple[str, str]
) -> None:
    # The API died between committing the rows and starting the workflow.
    group_id, job_ids = insert_orphan_group(stack, org_key[0], ["de", "fr"])
    group = wait_for_group(client, group_id, timeout=90)
    assert group["status"] == "completed", group
    assert {job["id"] for job in group["jobs"]} == set(job_ids)
    assert all(d["outputData"] == {"t": d["outputData"]["t"]} for d in job_details(client, group))
    assert runs_of(stack, group_id), "the reconciler started the group's workflow"


def test_a_terminated_group_is_closed_by_the_reconciler_then_retried(
    stack: Stack, client: httpx.Client
) -> None:
    created = submit(client, ["de", "fr", "es", "it"], big_document(sections=60))
    group_id = created["groupId"]
    _wait_until(lambda: workflow_status(stack, group_id) == "RUNNING", 30)
    temporal_cli(stack, "workflow", "terminate", "--workflow-id", group_id, "--reason", "test")
    group = wait_for_group(client, group_id, timeout=120)
    assert group["status"] in {"failed", "cancelled", "partial"}, group
    for detail in job_details(client, group):
        assert detail["status"] in SUCCEEDED | {"failed", "cancelled"}
        if detail["status"] == "failed":
            assert detail["error"] == "group_workflow_terminated"
    # The stream of the closed group ends with its end, as recorded.
    events = httpx.get(
        f"{stack.api_url}/jobs/localization/groups/{group_id}/events",
        headers=client.headers,
        timeout=60,
    ).text
    assert "event: group.completed" in events and f'"status":"{group["status"]}"' in events

    retried = client.post(f"/jobs/localization/groups/{group_id}/retry")
    assert retried.status_code == 202, retried.text
    final = wait_for_group(client, group_id, timeout=180)
    assert final["status"] == "completed", final
    assert all(d["outputData"] for d in job_details(client, final))


def test_a_group_cancelled_from_the_temporal_cli_can_be_retried(
    stack: Stack, client: httpx.Client
) -> None:
    created = submit(client, ["de", "fr", "es"], big_document(sections=60))
    group_id = created["groupId"]
    temporal_cli(stack, "workflow", "cancel", "--workflow-id", group_id)
    cancelled = wait_for_group(client, group_id, timeout=120)
    assert cancelled["cancelledJobs"] >= 1, cancelled
    _wait_until(lambda: workflow_status(stack, group_id) != "RUNNING", 60)

    retried = client.post(f"/jobs/localization/groups/{group_id}/retry")
    assert retried.status_code == 202, retried.text
    final = wait_for_group(client, group_id, timeout=180)
    assert final["status"] == "completed", final


def test_a_closed_group_is_retried_and_a_replay_redoes_no_finished_work(
    stack: Stack, client: httpx.Client, org_key: tuple[str, str]
) -> None:
    engine_id = broken_engine(stack, org_key[0], "closed-retry")
    body = {
        "sourceLocale": "en",
        "targetLocales": ["de", "ja"],
        "data": {"t": "Hello {name}"},
        "engineId": engine_id,
        "idempotencyKey": "closed-retry-1",
    }
    created = client.post("/jobs/localization", json=body).json()
    group_id = created["groupId"]
    group = wait_for_group(client, group_id)
    assert group["status"] == "partial", group
    _wait_until(lambda: workflow_status(stack, group_id) == "COMPLETED", 60)
    de, ja = (job["id"] for job in group["jobs"])
    de_before = client.get(f"/jobs/localization/{de}").json()

    fixed = client.patch(f"/engines/{engine_id}", json={"models": [{"provider": "pseudo"}]})
    assert fixed.status_code == 200, fixed.text
    retried = client.post(f"/jobs/localization/groups/{group_id}/retry")
    assert retried.status_code == 202, retried.text
    assert {j["id"]: j["status"] for j in retried.json()["jobs"]}[de] == "completed"
    final = wait_for_group(client, group_id)
    assert final["status"] == "completed", final
    assert client.get(f"/jobs/localization/{ja}").json()["outputData"]["t"]
    # The finished job was not run again: same output, same end, one run of its workflow.
    de_after = client.get(f"/jobs/localization/{de}").json()
    assert de_after["completedAt"] == de_before["completedAt"]
    assert de_after["attempts"] == de_before["attempts"]
    assert len(runs_of(stack, de)) == 1

    # An idempotent replay of the original request finds the group: nothing runs again.
    replay = client.post("/jobs/localization", json=body)
    assert replay.status_code == 202 and replay.headers["Idempotent-Replayed"] == "true"
    assert {j["status"] for j in replay.json()["jobs"]} == {"completed"}
    _wait_until(lambda: workflow_status(stack, group_id) == "COMPLETED", 60)
    assert len(runs_of(stack, ja)) == 2  # the failed run and the retry, no third
    assert client.post(f"/jobs/localization/groups/{group_id}/retry").status_code == 409


def _post_at_once(client: httpx.Client, paths: list[str]) -> list[int]:
    """POST every path from its own thread, released together."""
    barrier = threading.Barrier(len(paths))
    codes: list[int] = [0] * len(paths)

    def post(i: int, path: str) -> None:
        with httpx.Client(base_url=str(client.base_url), headers=client.headers, timeout=60) as c:
            barrier.wait()
            codes[i] = c.post(path).status_code

    threads = [threading.Thread(target=post, args=(i, p)) for i, p in enumerate(paths)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return codes


@pytest.fixture()
def failed_ja_group(
    stack: Stack, client: httpx.Client, org_key: tuple[str, str]
) -> tuple[str, str, str]:
    """A finished group whose ja job failed, its engine since fixed: (group, ja job, engine).
    The document is big enough that a retried job is still running a few seconds on."""
    engine_id = broken_engine(stack, org_key[0], "racing")
    created = submit(
        client, ["de", "ja"], big_document(sections=100, padding=150), engineId=engine_id
    )
    group = wait_for_group(client, created["groupId"], timeout=180)
    assert group["status"] == "partial", group
    ja = next(job["id"] for job in group["jobs"] if job["status"] == "failed")
    fixed = client.patch(f"/engines/{engine_id}", json={"models": [{"provider": "pseudo"}]})
    assert fixed.status_code == 200
    return created["groupId"], ja, engine_id


def test_two_racing_retries_run_a_job_once_and_a_cancel_still_reaches_it(
    stack: Stack, client: httpx.Client, failed_ja_group: tuple[str, str, str]
) -> None:
    group_id, ja, _ = failed_ja_group
    retry = f"/jobs/localization/groups/{group_id}/retry"
    codes = _post_at_once(client, [retry, retry])
    assert set(codes) <= {202, 409} and 202 in codes, codes
    _wait_until(
        lambda: client.get(f"/jobs/localization/{ja}").json()["status"] == "processing", 60, 0.05
    )
    cancelled = client.post(f"/jobs/localization/groups/{group_id}/cancel")
    assert cancelled.status_code == 202, cancelled.text
    group = wait_for_group(client, group_id, timeout=120)
    assert {j["id"]: j["status"] for j in group["jobs"]}[ja] == "cancelled", group
    _wait_until(lambda: workflow_status(stack, group_id) != "RUNNING", 60)
    assert len(runs_of(stack, ja)) == 2  # the failed run and one retry


def test_racing_cancel_retry_cancel_leaves_a_consistent_group(
    stack: Stack, client: httpx.Client, failed_ja_group: tuple[str, str, str]
) -> None:
    group_id, _, _ = failed_ja_group
    base = f"/jobs/localization/groups/{group_id}"
    codes = _post_at_once(client, [f"{base}/cancel", f"{base}/retry", f"{base}/cancel"])
    assert all(code in {202, 409} for code in codes), codes
    group = wait_for_group(client, group_id, timeout=180)
    _wait_until(lambda: workflow_status(stack, group_id) != "RUNNING", 90)
    # The database and the workflow's last word agree, and nothing runs any more.
    settled = client.get(base).json()
    assert settled["status"] == group["status"]
    assert {j["status"] for j in settled["jobs"]} <= SUCCEEDED | {"cancelled", "failed"}
    for job in settled["jobs"]:
        assert WorkflowExecutionStatus.RUNNING not in runs_of(stack, job["id"]), job
    # And the group can still be finished by one more retry.
    if settled["status"] != "completed":
        assert client.post(f"{base}/retry").status_code == 202
        assert wait_for_group(client, group_id, timeout=180)["status"] == "completed"


def test_a_retry_working_from_a_stale_read_runs_no_finished_job_again(
    stack: Stack, client: httpx.Client, org_key: tuple[str, str]
) -> None:
    # Two retries race across the group's close: the second read the rows while a job was
    # still failed, the first then ran it to completion. The second's new run believes the
    # job failed; the database says otherwise, and the database wins.
    engine_id = broken_engine(stack, org_key[0], "stale-retry")
    created = submit(client, ["de", "ja"], {"t": "Hello"}, engineId=engine_id)
    group_id = created["groupId"]
    assert wait_for_group(client, group_id)["status"] == "partial"
    client.patch(f"/engines/{engine_id}", json={"models": [{"provider": "pseudo"}]})

    async def rows() -> tuple[Any, list[Any]]:
        db = Database(stack.settings.database_url)
        try:
            async with db.session() as session:
                group = await session.get(JobGroup, group_id)
                return group, await groups.group_jobs(session, group_id)
        finally:
            await db.close()

    stale_group, stale_jobs = asyncio.run(rows())  # ja failed, as the second retry saw it
    assert client.post(f"/jobs/localization/groups/{group_id}/retry").status_code == 202
    assert wait_for_group(client, group_id)["status"] == "completed"
    _wait_until(lambda: workflow_status(stack, group_id) == "COMPLETED", 60)
    ja = next(job.id for job in stale_jobs if job.target_locale == "ja")
    done = client.get(f"/jobs/localization/{ja}").json()

    async def second_retry() -> list[str]:
        temporal = await Client.connect(
            stack.settings.temporal_target, namespace=stack.settings.temporal_namespace
        )
        return await starter.retry_group(temporal, stack.settings, stale_group, stale_jobs)

    assert asyncio.run(second_retry()) == []  # nothing was requeued
    _wait_until(lambda: workflow_status(stack, group_id) == "COMPLETED", 60)
    assert len(runs_of(stack, ja)) == 2  # the failed run and the first retry's, no third
    after = client.get(f"/jobs/localization/{ja}").json()
    assert after["status"] == "completed" and after["completedAt"] == done["completedAt"]
    assert wait_for_group(client, group_id)["status"] == "completed"


def test_an_old_group_without_a_workflow_waits_for_an_operator(
    stack: Stack, client: httpx.Client, org_key: tuple[str, str]
) -> None:
    # Rows older than reconcile.max_age_seconds (a day): left by code before the outbox, or
    # a group whose history is long gone. Not started by themselves; an operator decides.
    group_id, _ = insert_orphan_group(stack, org_key[0], ["de"])
    two_days_ago = datetime.now(UTC) - timedelta(days=2)
    aged = update(JobGroup).where(col(JobGroup.id) == group_id).values(created_at=two_days_ago)
    run_sql(stack, aged)
    time.sleep(3 * float(stack.settings.reconcile_interval_seconds))  # three passes
    assert client.get(f"/jobs/localization/groups/{group_id}").json()["status"] == "pending"
    assert runs_of(stack, group_id) == []
    started = json.loads(
        run_tolk(stack, "groups", "reconcile", "--max-age", str(7 * 24 * 3600), "--json")
    )
    assert group_id in started["started"], started
    assert wait_for_group(client, group_id)["status"] == "completed"
