"""Live progress over a real WebSocket and SSE on loopback: message order, fan-out through
one poller per group, reconnects, resume, and read tokens."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import signal
import time
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY
from temporalio.client import Client
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from api.progress import CHASE_SECONDS, GroupWatch, ProgressHub
from cli.stack import Stack
from store import queries
from store.db import Database
from store.models import JobGroup
from tests.conftest import broken_engine, wait_for_group

FIVE = ["de", "fr", "es", "it", "ja"]


def ws_url(stack: Stack, group_id: str, token: str | None = None) -> str:
    base = stack.api_url.replace("http://", "ws://")
    url = f"{base}/jobs/localization/groups/{group_id}/ws"
    return f"{url}?token={token}" if token else url


async def collect_ws(
    url: str, headers: dict[str, str] | None = None
) -> tuple[list[dict[str, Any]], int | None]:
    """Every message until the server closes; and the close code."""
    messages = []
    async with connect(url, additional_headers=headers or {}, open_timeout=10) as ws:
        async for raw in ws:
            messages.append(json.loads(raw))
        code = ws.close_code
    return messages, code


def check_snapshot(snapshot: dict[str, Any]) -> None:
    """Counts always agree with the jobs map."""
    statuses = [job["status"] for job in snapshot["jobs"].values()]
    assert snapshot["totalJobs"] == len(statuses)
    assert snapshot["completedJobs"] == sum(
        s in ("completed", "completed_with_warnings") for s in statuses
    )
    assert snapshot["completedWithWarningsJobs"] == statuses.count("completed_with_warnings")
    assert snapshot["failedJobs"] == statuses.count("failed")
    assert snapshot["cancelledJobs"] == statuses.count("cancelled")


def submit(client: httpx.Client, locales: list[str], data: dict[str, Any] | None = None) -> str:
    resp = client.post(
        "/jobs/localization",
        json={
            "sourceLocale": "en",
            "targetLocales": locales,
            "data": data or {"title": "Hello {name}", "body": "<b>Bold</b> text"},
        },
    )
    assert resp.status_code == 202, resp.text
    return str(resp.json()["groupId"])


def big(n: int = 3000) -> dict[str, str]:
    return {f"k{i}": f"String number {i} for {{user}}" for i in range(n)}


def assert_stream(messages: list[dict[str, Any]], group_id: str, job_ids: set[str]) -> None:
    assert messages[0]["type"] == "snapshot"
    events = messages[1:]
    assert events[-1]["type"] == "group.completed"
    assert events[-1]["groupId"] == group_id
    job_events = events[:-1]
    assert sorted(e["jobId"] for e in job_events) == sorted(job_ids), "one event per job"
    for message in messages:
        check_snapshot(message["snapshot"])


def test_websocket_streams_a_group_to_completion(
    stack: Stack, client: httpx.Client, api_key: str
) -> None:
    group_id = submit(client, FIVE, big())
    messages, code = asyncio.run(collect_ws(ws_url(stack, group_id), {"X-API-Key": api_key}))
    group = client.get(f"/jobs/localization/groups/{group_id}").json()
    assert code == 1000
    assert_stream(messages, group_id, {job["id"] for job in group["jobs"]})
    assert [m["type"] for m in messages[1:-1]] == ["job.completed"] * 5
    assert messages[-1]["status"] == "completed"
    assert all(m["locale"] in FIVE for m in messages[1:-1])
    final = messages[-1]["snapshot"]
    assert final["completedJobs"] == 5
    # Completed counts never go down along the stream.
    counts = [m["snapshot"]["completedJobs"] for m in messages]
    assert counts == sorted(counts)


def test_one_failing_locale_streams_job_failed_and_a_partial_group(
    stack: Stack, client: httpx.Client, api_key: str, org_key: tuple[str, str]
) -> None:
    # An engine whose ja model names a provider this server does not have: ja fails for
    # good (a configuration error is not retried), the other four translate.
    engine = broken_engine(stack, org_key[0], "ja-broken")
    stack.kill("worker", signal.SIGTERM)  # connect before anything can finish
    resp = client.post(
        "/jobs/localization",
        json={"sourceLocale": "en", "targetLocales": FIVE, "data": big(), "engineId": engine},
    )
    assert resp.status_code == 202, resp.text
    group_id = resp.json()["groupId"]

    async def watch() -> tuple[list[dict[str, Any]], int | None]:
        url = ws_url(stack, group_id)
        async with connect(url, additional_headers={"X-API-Key": api_key}) as ws:
            first = json.loads(await ws.recv())
            stack.start_worker()
            rest = [json.loads(raw) async for raw in ws]
            return [first, *rest], ws.close_code

    messages, code = asyncio.run(watch())
    group = client.get(f"/jobs/localization/groups/{group_id}").json()
    ja = next(job["id"] for job in group["jobs"] if job["targetLocale"] == "ja")

    assert_stream(messages, group_id, {job["id"] for job in group["jobs"]})
    types = [m["type"] for m in messages]
    assert types[0] == "snapshot" and types[-1] == "group.completed"
    assert sorted(types[1:-1]) == ["job.completed"] * 4 + ["job.failed"]
    failed = next(m for m in messages if m["type"] == "job.failed")
    assert failed["jobId"] == ja and failed["locale"] == "ja"
    assert "unconfigured" in failed["error"] and "not configured" in failed["error"]
    assert messages[-1]["status"] == "partial" and code == 1000
    # Events come in the order the jobs ended: the workflow's log, replayed from its start.
    replay = httpx.get(
        f"{stack.api_url}/jobs/localization/groups/{group_id}/events",
        headers={"X-API-Key": api_key, "Last-Event-ID": "0"},
        timeout=30,
    ).text
    logged = [json.loads(e["data"]) for e in parse_sse(replay)]
    assert [(m["type"], m.get("jobId")) for m in logged] == [
        (m["type"], m.get("jobId")) for m in messages[1:]
    ]
    detail = client.get(f"/jobs/localization/{ja}").json()
    assert detail["status"] == "failed" and detail["outputData"] is None
    assert detail["error"] == failed["error"]
    assert group["status"] == "partial" and group["failedJobs"] == 1


def test_finished_group_gives_snapshot_completed_close(
    stack: Stack, client: httpx.Client, api_key: str
) -> None:
    group_id = submit(client, ["de", "fr"])
    wait_for_group(client, group_id)
    queries0 = metric(stack, "tolk_progress_queries_total")
    memo0 = metric(stack, "tolk_progress_memo_reads_total")
    messages, code = asyncio.run(collect_ws(ws_url(stack, group_id), {"X-API-Key": api_key}))
    # Served from the database: Temporal was not asked at all.
    assert metric(stack, "tolk_progress_queries_total") == queries0
    assert metric(stack, "tolk_progress_memo_reads_total") == memo0
    assert [m["type"] for m in messages] == ["snapshot", "group.completed"]
    assert messages[1]["status"] == "completed"
    assert messages[0]["snapshot"]["completedJobs"] == 2
    assert code == 1000


def test_upgrade_refused_without_key_or_for_foreign_group(
    stack: Stack, client: httpx.Client, api_key: str, other_key: str
) -> None:
    group_id = submit(client, ["de"])
    # The owner opens it first, so the API process has the group's owner in memory: the
    # checks below must still refuse.
    _, code = asyncio.run(collect_ws(ws_url(stack, group_id), {"X-API-Key": api_key}))
    assert code == 1000

    async def status_of(url: str, headers: dict[str, str]) -> int:
        with pytest.raises(InvalidStatus) as info:
            async with connect(url, additional_headers=headers, open_timeout=10):
                pass
        return info.value.response.status_code

    assert asyncio.run(status_of(ws_url(stack, group_id), {})) == 401
    assert (
        asyncio.run(status_of(ws_url(stack, group_id), {"X-API-Key": "tolk_00000000_nope"})) == 401
    )
    # The owner's key id with another secret part.
    forged = api_key[:14] + "x" * (len(api_key) - 14)
    assert asyncio.run(status_of(ws_url(stack, group_id), {"X-API-Key": forged})) == 401
    assert asyncio.run(status_of(ws_url(stack, group_id), {"X-API-Key": other_key})) == 404
    assert (
        asyncio.run(status_of(ws_url(stack, "ljg_AAAAAAAAAAAAAAAA"), {"X-API-Key": other_key}))
        == 404
    )


def metrics(stack: Stack, *names: str) -> dict[str, float]:
    """Several metrics from one scrape, so that they are consistent with each other."""
    text = httpx.get(f"{stack.api_url}/metrics", timeout=10).text
    values = {}
    for name in names:
        match = re.search(rf"^{name} ([0-9.e+]+)$", text, re.MULTILINE)
        assert match, name
        values[name] = float(match.group(1))
    return values


def metric(stack: Stack, name: str) -> float:
    return metrics(stack, name)[name]


def test_fifty_subscribers_share_one_poller(
    stack: Stack, client: httpx.Client, api_key: str
) -> None:
    # Hold the work back until all fifty are connected, so they all start from the same point.
    stack.kill("worker", signal.SIGTERM)
    group_id = submit(client, FIVE, big(4000))
    headers = {"X-API-Key": api_key}

    Outcome = tuple[list[list[dict[str, Any]]], list[int | None], float, dict[str, float]]

    async def fifty() -> Outcome:
        async with contextlib.AsyncExitStack() as exits:
            sockets = [
                await exits.enter_async_context(
                    connect(ws_url(stack, group_id), additional_headers=headers)
                )
                for _ in range(50)
            ]
            firsts = [json.loads(await ws.recv()) for ws in sockets]
            kinds = ("polls", "queries", "memo_reads", "query_failures")

            def counts() -> dict[str, float]:  # one scrape: the hub may poll between two
                values = metrics(stack, *(f"tolk_progress_{kind}_total" for kind in kinds))
                return {kind: values[f"tolk_progress_{kind}_total"] for kind in kinds}

            before = counts()
            started = time.monotonic()
            stack.start_worker()  # same thread as the stack: see Stack._spawn

            async def rest(ws: Any) -> list[dict[str, Any]]:
                return [json.loads(raw) async for raw in ws]

            tails = await asyncio.gather(*(rest(ws) for ws in sockets))
            elapsed = time.monotonic() - started
            after = counts()
            calls = {kind: after[kind] - before[kind] for kind in kinds}
            codes = [ws.close_code for ws in sockets]
        streams = [[first, *tail] for first, tail in zip(firsts, tails, strict=True)]
        return streams, codes, elapsed, calls

    streams, codes, elapsed, calls = asyncio.run(fifty())
    assert all(stream[0]["type"] == "snapshot" for stream in streams)
    assert all(stream[0]["snapshot"]["completedJobs"] == 0 for stream in streams)
    sequences = {tuple((m["type"], m.get("jobId")) for m in stream[1:]) for stream in streams}
    assert len(sequences) == 1, "every subscriber sees the same events in the same order"
    assert codes == [1000] * 50
    sequence = next(iter(sequences))
    assert len(sequence) == 6 and sequence[-1][0] == "group.completed"
    # Each poll asks Temporal once: a query, or a memo read when the database shows news
    # (how many of each depends on the machine's pace). Polls follow the clock (at most
    # one per CHASE_SECONDS), not the number of subscribers.
    assert calls["query_failures"] == 0, calls
    assert calls["polls"] > 0, calls
    assert calls["queries"] + calls["memo_reads"] == calls["polls"], calls
    assert calls["polls"] <= elapsed / CHASE_SECONDS + 5, (calls, elapsed)


def test_joining_a_watched_group_asks_temporal_nothing(
    stack: Stack, client: httpx.Client, api_key: str
) -> None:
    # Worker stopped: the group stays queued, so every refresh below is the poller's own
    # schedule. Twenty subscribers join one by one, further apart than the fastest poll;
    # a join that refreshed the watch itself would add a poll each.
    stack.kill("worker", signal.SIGTERM)
    headers = {"X-API-Key": api_key}

    async def join() -> tuple[float, list[dict[str, Any]]]:
        async with contextlib.AsyncExitStack() as exits:
            first = await exits.enter_async_context(
                connect(ws_url(stack, group_id), additional_headers=headers)
            )
            await first.recv()
            polls0 = metric(stack, "tolk_progress_polls_total")
            snapshots = []
            for _ in range(20):
                ws = await exits.enter_async_context(
                    connect(ws_url(stack, group_id), additional_headers=headers)
                )
                snapshots.append(json.loads(await ws.recv()))
                await asyncio.sleep(0.15)
            return metric(stack, "tolk_progress_polls_total") - polls0, snapshots

    try:
        group_id = submit(client, FIVE)
        polls, snapshots = asyncio.run(join())
    finally:
        stack.start_worker()
    assert [m["type"] for m in snapshots] == ["snapshot"] * 20
    for message in snapshots:
        check_snapshot(message["snapshot"])
        assert message["snapshot"]["totalJobs"] == 5
    # The poller's own schedule backs off from 0.1 s: about 6-8 polls in these 3-4 s. Had
    # each join refreshed the watch, there would be about 20 more.
    assert polls <= 10, polls
    wait_for_group(client, group_id)


def test_reconnect_sees_what_it_missed_and_sse_resumes(
    stack: Stack, client: httpx.Client, api_key: str
) -> None:
    group_id = submit(client, FIVE, big())

    async def first_message() -> dict[str, Any]:
        async with connect(
            ws_url(stack, group_id), additional_headers={"X-API-Key": api_key}
        ) as ws:
            return dict(json.loads(await ws.recv()))

    first = asyncio.run(first_message())
    assert first["type"] == "snapshot"
    wait_for_group(client, group_id)
    messages, _ = asyncio.run(collect_ws(ws_url(stack, group_id), {"X-API-Key": api_key}))
    assert messages[0]["snapshot"]["completedJobs"] == 5, "the new snapshot has what was missed"

    # SSE: the full stream has ids; resuming after id N gives only the events after N.
    headers = {"X-API-Key": api_key}
    full = parse_sse(
        httpx.get(
            f"{stack.api_url}/jobs/localization/groups/{group_id}/events",
            headers=headers,
            timeout=30,
        ).text
    )
    assert [e["event"] for e in full] == ["snapshot", "group.completed"]
    last = int(full[-1]["id"])
    assert last == 6  # five job events and the group event in the log
    resumed = parse_sse(
        httpx.get(
            f"{stack.api_url}/jobs/localization/groups/{group_id}/events",
            headers={**headers, "Last-Event-ID": "2"},
            timeout=30,
        ).text
    )
    assert [int(e["id"]) for e in resumed] == [3, 4, 5, 6]
    assert [e["event"] for e in resumed] == ["job.completed"] * 3 + ["group.completed"]
    done = httpx.get(
        f"{stack.api_url}/jobs/localization/groups/{group_id}/events",
        headers={**headers, "Last-Event-ID": "6"},
        timeout=30,
    )
    assert done.status_code == 204


def test_sse_live_stream_has_ids_in_order(stack: Stack, client: httpx.Client, api_key: str) -> None:
    group_id = submit(client, FIVE, big())
    text = httpx.get(
        f"{stack.api_url}/jobs/localization/groups/{group_id}/events",
        headers={"X-API-Key": api_key},
        timeout=60,
    ).text
    events = parse_sse(text)
    assert events[0]["event"] == "snapshot"
    ids = [int(e["id"]) for e in events[1:]]
    assert ids == list(range(ids[0], ids[0] + len(ids)))
    assert events[-1]["event"] == "group.completed"
    for event in events:
        check_snapshot(json.loads(event["data"])["snapshot"])


def parse_sse(text: str) -> list[dict[str, str]]:
    events = []
    for block in text.split("\n\n"):
        fields = dict(
            line.split(": ", 1)
            for line in block.splitlines()
            if ": " in line and not line.startswith(":")
        )
        if "event" in fields:
            events.append(fields)
    return events


def test_read_tokens_open_one_group_stream_only(stack: Stack, client: httpx.Client) -> None:
    group_a = submit(client, ["de"])
    group_b = submit(client, ["fr"])
    wait_for_group(client, group_a)
    resp = client.post(f"/jobs/localization/groups/{group_a}/tokens", json={"ttlSeconds": 2})
    assert resp.status_code == 201, resp.text
    token = resp.json()["token"]
    assert resp.json()["expiresAt"].endswith("Z")

    sse = f"{stack.api_url}/jobs/localization/groups/{{}}/events?token={token}"
    assert httpx.get(sse.format(group_a), timeout=30).status_code == 200
    messages, code = asyncio.run(collect_ws(ws_url(stack, group_a, token)))
    assert [m["type"] for m in messages] == ["snapshot", "group.completed"] and code == 1000

    refused_b = httpx.get(sse.format(group_b), timeout=30)
    assert refused_b.status_code == 403 and refused_b.json()["_tag"] == "ForbiddenError"
    for path in (
        f"/jobs/localization/groups/{group_a}",
        "/jobs/localization",
        f"/jobs/localization/groups/{group_a}/tokens",
    ):
        resp = httpx.request(
            "POST" if path.endswith("tokens") else "GET",
            f"{stack.api_url}{path}?token={token}",
            timeout=30,
        )
        assert resp.status_code == 401, path
    with pytest.raises(InvalidStatus) as info:
        asyncio.run(collect_ws(ws_url(stack, group_b, token)))
    assert info.value.response.status_code == 403

    # After expiry the same token opens nothing (polled with a deadline, not timed).
    deadline = time.monotonic() + 10
    while httpx.get(sse.format(group_a), timeout=30).status_code == 200:
        assert time.monotonic() < deadline, "token never expired"
        time.sleep(0.5)
    expired = httpx.get(sse.format(group_a), timeout=30)
    assert expired.status_code == 401 and "expired" in expired.json()["message"]
    assert (
        client.post(
            f"/jobs/localization/groups/{group_a}/tokens", json={"ttlSeconds": 3601}
        ).status_code
        == 400
    )
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    assert httpx.get(sse.format(group_a).replace(token, tampered), timeout=30).status_code == 401


def test_news_is_read_from_the_memo_and_polls_query_the_workflow(
    stack: Stack, client: httpx.Client
) -> None:
    # A watch made here, in the test process, on the stack's Temporal server and database
    # file: a refresh for news the database shows reads the memo (describe, which the
    # server answers alone) and the rows; a safety poll asks the workflow's query. Both
    # give the same snapshot and event log.
    group_id = submit(client, ["de", "fr"])
    wait_for_group(client, group_id)

    def count(name: str) -> float:
        return REGISTRY.get_sample_value(name) or 0.0

    async def refreshed() -> list[tuple[bool, float, float, dict[str, Any], list[Any]]]:
        temporal = await Client.connect(
            stack.settings.temporal_target, namespace=stack.settings.temporal_namespace
        )
        db = Database(stack.settings.database_url)
        hub = ProgressHub(db, temporal)
        try:
            async with db.session() as session:
                group = await session.get(JobGroup, group_id)
                assert group is not None
                jobs = await queries.group_jobs(session, group_id)
            results = []
            for news in ("event", None):
                watch = GroupWatch(hub, group, jobs)
                memo0, queries0 = (
                    count("tolk_progress_memo_reads_total"),
                    count("tolk_progress_queries_total"),
                )
                changed = await watch.refresh(news=news)
                results.append(
                    (
                        changed,
                        count("tolk_progress_memo_reads_total") - memo0,
                        count("tolk_progress_queries_total") - queries0,
                        watch.snapshot,
                        watch.log,
                    )
                )
            return results
        finally:
            await db.close()

    (memo_changed, memo_reads, memo_queries, memo_snap, memo_log), polled = asyncio.run(refreshed())
    poll_changed, poll_memo_reads, poll_queries, poll_snap, poll_log = polled
    assert (memo_changed, memo_reads, memo_queries) == (True, 1, 0)
    assert (poll_changed, poll_memo_reads, poll_queries) == (True, 0, 1)
    assert memo_log == poll_log and len(memo_log) == 3 and memo_log[-1] == [None, "completed"]
    assert memo_snap == poll_snap
    check_snapshot(memo_snap)
    assert memo_snap["completedJobs"] == 2
