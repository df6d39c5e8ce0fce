"""Many API processes and workers on one Temporal and one PostgreSQL, the way a deployment
beyond one machine runs: two APIs on their own ports (as behind a load balancer) and two
workers, all on a stack of this module's own. What one API accepts, the other follows; a
worker killed mid-burst costs only retries; the limits and the progress of an organization
hold whichever process a request reaches."""

from __future__ import annotations

import asyncio
import itertools
import json
import signal
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import trustme

from stack import Stack, free_port
from tests.conftest import RECEIVER_HOST, WEBHOOK_DELAYS, new_org_key, run_tolk, stack_settings
from tests.postgres import PostgresServer
from tests.receiver import Receiver
from tests.test_progress import FIVE, assert_stream, big, check_snapshot, collect_ws, parse_sse

pytestmark = pytest.mark.stack

TERMINAL = {"completed", "partial", "failed", "cancelled"}


@dataclass
class Cluster:
    stack: Stack
    a: str  # API A's base URL
    b: str  # API B's base URL
    key: str  # an organization's key, without limits of its own


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, webhook_ca: trustme.CA) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("scale-out")
    ca_file = root / "webhook-ca.pem"
    webhook_ca.cert_pem.write_to_path(str(ca_file))
    server = PostgresServer().start()
    settings = stack_settings(
        root,
        TOLK_DATABASE_URL=server.url,
        TOLK_TEMPORAL_NAMESPACE="tolk-scale-out",
        TOLK_WORKER_PROCESSES="1",  # the two workers are started one by one below
        TOLK_TRANSLATE_MAX_ATTEMPTS="5",
        TOLK_TRANSLATE_INITIAL_INTERVAL_SECONDS="0.2",
        # A killed worker's translation is noticed by its missing heartbeat soon.
        TOLK_TRANSLATE_HEARTBEAT_SECONDS="4",
        TOLK_WORKER_MAX_CONCURRENT_ACTIVITIES="4",
        TOLK_WORKER_GRACEFUL_SHUTDOWN_SECONDS="3",
        TOLK_PROGRESS_PING_SECONDS="1",
        TOLK_WEBHOOKS_CA_FILE=str(ca_file),
        TOLK_WEBHOOKS_ALLOWED_HOSTS=json.dumps([RECEIVER_HOST]),
        TOLK_WEBHOOKS_RETRY_DELAYS_SECONDS=json.dumps(WEBHOOK_DELAYS),
        TOLK_WEBHOOKS_TIMEOUT_SECONDS="3",
        TOLK_RECONCILE_INTERVAL_SECONDS="1",
        TOLK_RECONCILE_GRACE_SECONDS="2",
    )
    stack = Stack(settings, log_dir=root / "logs", headless=True)
    try:
        stack.start_temporal()
        stack.start_worker("worker")
        stack.start_worker("worker-2")
        a = stack.start_api()
        b = stack.start_api(name="api-2", port=free_port())
        _, key = new_org_key(stack, "Scale Co")
        yield Cluster(stack, a, b, key)
    finally:
        try:
            stack.stop()
        finally:
            server.stop()


def http(base_url: str, key: str) -> httpx.Client:
    return httpx.Client(base_url=base_url, headers={"X-API-Key": key}, timeout=60)


def submit(api: httpx.Client, locales: list[str], data: dict[str, Any], **extra: Any) -> str:
    body = {"sourceLocale": "en", "targetLocales": locales, "data": data, **extra}
    resp = api.post("/jobs/localization", json=body)
    assert resp.status_code == 202, resp.text
    return str(resp.json()["groupId"])


def wait_terminal(api: httpx.Client, group_id: str, timeout: float = 300) -> dict[str, Any]:
    """The group once it is terminal (the timeout only catches a hang)."""
    deadline = time.monotonic() + timeout
    while True:
        body: dict[str, Any] = api.get(f"/jobs/localization/groups/{group_id}").json()
        if body["status"] in TERMINAL:
            return body
        assert time.monotonic() < deadline, f"group {group_id} not terminal: {body}"
        time.sleep(0.3)


def wait_until_awaiting_review(api: httpx.Client, group_id: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while True:
        jobs = api.get(f"/jobs/localization/groups/{group_id}").json()["jobs"]
        if all(job["status"] == "awaiting_review" for job in jobs):
            return
        assert time.monotonic() < deadline, jobs
        time.sleep(0.2)


def test_a_websocket_on_b_follows_a_group_submitted_through_a(cluster: Cluster) -> None:
    with http(cluster.a, cluster.key) as a:
        group_id = submit(a, FIVE, big())
        url = f"{cluster.b.replace('http://', 'ws://')}/jobs/localization/groups/{group_id}/ws"
        messages, code = asyncio.run(collect_ws(url, {"X-API-Key": cluster.key}))
        group = a.get(f"/jobs/localization/groups/{group_id}").json()
    assert code == 1000
    # From the snapshot to group.completed, every job's event once.
    assert_stream(messages, group_id, {job["id"] for job in group["jobs"]})
    assert [m["type"] for m in messages[1:-1]] == ["job.completed"] * len(FIVE)
    assert group["status"] == "completed" and messages[-1]["status"] == "completed"


def test_a_worker_killed_mid_burst_costs_only_retries(
    cluster: Cluster, webhook_ca: trustme.CA
) -> None:
    stack = cluster.stack
    document = {f"line{i}": f"Line {i} of the burst, {{user}}!" for i in range(400)}
    locales = ["de", "fr", "es", "it"]
    with (
        Receiver(webhook_ca, host=RECEIVER_HOST) as receiver,
        http(cluster.a, cluster.key) as a,
        http(cluster.b, cluster.key) as b,
    ):
        apis = itertools.cycle([a, b])
        groups = [submit(next(apis), locales, document, callbackUrl=receiver.url) for _ in range(8)]
        # The burst is under way: some job finished, not all of them.
        deadline = time.monotonic() + 300
        while True:
            jobs = [
                job
                for group_id in groups
                for job in a.get(f"/jobs/localization/groups/{group_id}").json()["jobs"]
            ]
            done = sum(job["status"] == "completed" for job in jobs)
            if done:
                break
            assert time.monotonic() < deadline, jobs
            time.sleep(0.1)
        assert done < len(jobs), "the burst must still be in flight when the worker dies"
        stack.kill("worker", signal.SIGKILL)
        try:
            finished = [wait_terminal(next(apis), group_id) for group_id in groups]
        finally:
            stack.start_worker("worker")  # the next tests have two workers again
        assert [group["status"] for group in finished] == ["completed"] * len(groups), finished
        job_ids = {job["id"] for group in finished for job in group["jobs"]}
        assert len(job_ids) == len(groups) * len(locales)
        # Each job's webhook arrives (at least once: a retry may deliver it again), always
        # with the one webhook-id its event got.
        ids: dict[str, set[str]] = defaultdict(set)
        deadline = time.monotonic() + 120
        while set(ids) != job_ids:
            ids.clear()
            for delivery in list(receiver.received):
                event = json.loads(delivery.body)
                assert event["type"] == "translation.completed", event
                ids[event["jobId"]].add(delivery.headers["webhook-id"])
            assert time.monotonic() < deadline, sorted(job_ids - set(ids))
            time.sleep(0.2)
        assert all(len(seen) == 1 for seen in ids.values()), ids
        assert len({i for seen in ids.values() for i in seen}) == len(job_ids)


def test_the_request_rate_limit_holds_across_api_processes(cluster: Cluster) -> None:
    stack = cluster.stack
    org, key = new_org_key(stack, "Rate Across Co")
    run_tolk(stack, "orgs", "limits", org, "--requests-per-minute", "6", "--active-groups", "none")
    with http(cluster.a, key) as a, http(cluster.b, key) as b:
        body = {"sourceLocale": "en", "targetLocales": ["de"], "data": {"t": "Hello"}}
        answers = [api.post("/jobs/localization", json=body) for api in [a, b] * 3]
        assert [r.status_code for r in answers] == [202] * 6, [r.text for r in answers]
        refused = [api.post("/jobs/localization", json=body) for api in (a, b, a, b)]
    assert [r.status_code for r in refused] == [429] * 4, [r.text for r in refused]
    assert all(r.json()["_tag"] == "RateLimitError" for r in refused)
    assert all("6 requests per minute" in r.json()["message"] for r in refused)


def test_the_active_groups_limit_holds_across_api_processes(cluster: Cluster) -> None:
    stack = cluster.stack
    org, key = new_org_key(stack, "Busy Across Co")
    run_tolk(stack, "orgs", "limits", org, "--active-groups", "2", "--requests-per-minute", "none")
    # Groups that wait for a reviewer stay active until cancelled.
    waiting = {"humanReview": {"enabled": True}}
    body = {"sourceLocale": "en", "targetLocales": ["de"], "data": {"t": "Hello"}}
    with http(cluster.a, key) as a, http(cluster.b, key) as b:
        accepted = [submit(api, ["de"], {"t": "Hello"}, pipelineConfig=waiting) for api in (a, b)]
        refused = [api.post("/jobs/localization", json=body) for api in (b, a)]
        assert [r.status_code for r in refused] == [429, 429], [r.text for r in refused]
        assert all("active groups" in r.json()["message"] for r in refused)
        for group_id in accepted:  # cancelled once waiting (the cancel test's own ground)
            wait_until_awaiting_review(a, group_id)
        # One group ends: one place is free again, on either process.
        assert a.post(f"/jobs/localization/groups/{accepted[0]}/cancel").status_code == 202
        assert wait_terminal(b, accepted[0])["status"] == "cancelled"
        again = b.post("/jobs/localization", json=body)
        assert again.status_code == 202, again.text
        assert a.post("/jobs/localization", json=body).status_code == 429
        for group_id in (accepted[1], again.json()["groupId"]):
            b.post(f"/jobs/localization/groups/{group_id}/cancel")


def test_sse_on_b_and_the_group_on_a_agree_at_the_end(cluster: Cluster) -> None:
    with http(cluster.a, cluster.key) as a, http(cluster.b, cluster.key) as b:
        group_id = submit(a, FIVE, big())
        text = b.get(f"/jobs/localization/groups/{group_id}/events").text
        group = a.get(f"/jobs/localization/groups/{group_id}").json()
    events = parse_sse(text)
    assert events[0]["event"] == "snapshot" and events[-1]["event"] == "group.completed"
    for event in events:
        check_snapshot(json.loads(event["data"])["snapshot"])
    last = json.loads(events[-1]["data"])
    final = last["snapshot"]
    assert group["status"] == "completed" == last["status"]
    assert {job["id"]: job["status"] for job in group["jobs"]} == {
        job_id: job["status"] for job_id, job in final["jobs"].items()
    }
    assert group["completedJobs"] == final["completedJobs"] == len(FIVE)
    assert group["totalJobs"] == final["totalJobs"] == len(FIVE)
