"""Live progress over a real WebSocket and SSE on loopback: message order, fan-out through
one poller per group, reconnects, resume, and read tokens."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import re
import signal
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import delete
from sqlmodel import col
from starlette.routing import Route
from temporalio.client import Client
from websockets.asyncio.client import connect
from websockets.client import ClientProtocol
from websockets.exceptions import InvalidStatus
from websockets.frames import Frame, Opcode
from websockets.uri import parse_uri

from api.progress.hub import ProgressHub
from api.progress.subscription import Subscriber
from api.progress.watch import CHASE_SECONDS
from api.routes import starlette_routes
from settings import hub_options
from stack import Stack
from store import documents, engines, groups
from store.db import Database
from store.ids import new_id
from store.tables import Job, JobGroup
from tests.conftest import broken_engine, run_tolk, wait_for_group

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


def test_sse_refuses_like_the_websocket_and_checks_last_event_id(
    stack: Stack, client: httpx.Client, api_key: str, other_key: str
) -> None:
    group_id = submit(client, ["de"])
    wait_for_group(client, group_id)
    url = f"{stack.api_url}/jobs/localization/groups/{group_id}/events"
    forged = api_key[:14] + "x" * (len(api_key) - 14)
    for headers, expected in (
        ({}, (401, "UnauthorizedError")),
        ({"X-API-Key": forged}, (401, "UnauthorizedError")),
        ({"X-API-Key": other_key}, (404, "NotFoundError")),
    ):
        resp = httpx.get(url, headers=headers, timeout=30)
        assert (resp.status_code, resp.json()["_tag"]) == expected, headers
    # Only ASCII digits are event ids: not "abc", "-1", a superscript two, or an id too
    # long to be one; each a 400, none a crash.
    for bad in ("abc", "-1", "1.5", "\u00b2", "9" * 5000):
        key = api_key.encode()
        cases: list[tuple[dict[str, str], dict[bytes, bytes]]] = [
            ({}, {b"X-API-Key": key, b"Last-Event-ID": bad.encode()}),
            ({"lastEventId": bad}, {b"X-API-Key": key}),
        ]
        for params, sent in cases:
            resp = httpx.get(url, params=params, headers=sent, timeout=30)
            assert resp.status_code == 400, (bad[:10], resp.text[:200])
            assert resp.json()["_tag"] == "ValidationError"
    assert httpx.get(url, headers={"X-API-Key": api_key}, timeout=30).status_code == 200


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


def wait_until_nobody_watches(stack: Stack) -> None:
    """The hub holds no subscription and no watch: what earlier tests opened has ended
    (their clients have closed; the server lets go within moments)."""
    names = ("tolk_progress_subscribers", "tolk_progress_watched_groups")
    deadline = time.monotonic() + 15
    while (values := metrics(stack, *names)) != dict.fromkeys(names, 0.0):
        assert time.monotonic() < deadline, f"subscriptions or watches left over: {values}"
        time.sleep(0.1)


def test_fifty_subscribers_share_one_poller(
    stack: Stack, client: httpx.Client, api_key: str
) -> None:
    # Hold the work back until all fifty are connected, so they all start from the same point.
    wait_until_nobody_watches(stack)
    stack.kill("worker", signal.SIGTERM)
    group_id = submit(client, FIVE, big(4000))
    headers = {"X-API-Key": api_key}

    Outcome = tuple[list[list[dict[str, Any]]], list[int | None], float, dict[str, float], float]

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
            # One watch (one poller) for the fifty: the only group watched now.
            watched = metric(stack, "tolk_progress_watched_groups")
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
        return streams, codes, elapsed, calls, watched

    streams, codes, elapsed, calls, watched = asyncio.run(fifty())
    assert watched == 1
    assert all(stream[0]["type"] == "snapshot" for stream in streams)
    assert all(stream[0]["snapshot"]["completedJobs"] == 0 for stream in streams)
    # Whole frames, snapshots included: the same bytes for every subscriber.
    sequences = {tuple(json.dumps(m, sort_keys=True) for m in stream[1:]) for stream in streams}
    assert len(sequences) == 1, "every subscriber sees the same events in the same order"
    assert codes == [1000] * 50
    sequence = [json.loads(m) for m in next(iter(sequences))]
    assert [m["type"] for m in sequence] == ["job.completed"] * 5 + ["group.completed"]
    assert len({m["jobId"] for m in sequence[:-1]}) == 5
    # Polls follow the clock (at most one per CHASE_SECONDS), not the number of
    # subscribers: fifty pollers would make fifty times as many. Each poll asks Temporal
    # once, a query or a memo read when the database shows news (how many of each depends
    # on the machine's pace); a query that timed out (the restarted worker still busy, on
    # a loaded machine) is followed by a memo read in the same poll, and only then.
    assert calls["polls"] > 0, calls
    assert calls["queries"] + calls["memo_reads"] == calls["polls"] + calls["query_failures"], calls
    assert calls["polls"] <= elapsed / CHASE_SECONDS + 5, (calls, elapsed)


def test_joining_a_watched_group_asks_temporal_nothing(
    stack: Stack, client: httpx.Client, api_key: str
) -> None:
    # Worker stopped: the group stays queued, so every refresh below is the poller's own
    # schedule. Twenty subscribers join one by one, further apart than the fastest poll;
    # a join that refreshed the watch itself would add a poll each.
    stack.kill("worker", signal.SIGTERM)
    headers = {"X-API-Key": api_key}

    async def join() -> tuple[float, float, list[dict[str, Any]]]:
        async with contextlib.AsyncExitStack() as exits:
            first = await exits.enter_async_context(
                connect(ws_url(stack, group_id), additional_headers=headers)
            )
            await first.recv()
            polls0 = metric(stack, "tolk_progress_polls_total")
            started = time.monotonic()
            snapshots = []
            for _ in range(20):
                ws = await exits.enter_async_context(
                    connect(ws_url(stack, group_id), additional_headers=headers)
                )
                snapshots.append(json.loads(await ws.recv()))
                await asyncio.sleep(0.15)
            polls = metric(stack, "tolk_progress_polls_total") - polls0
            return polls, time.monotonic() - started, snapshots

    try:
        group_id = submit(client, FIVE)
        polls, elapsed, snapshots = asyncio.run(join())
    finally:
        stack.start_worker()
    assert [m["type"] for m in snapshots] == ["snapshot"] * 20
    for message in snapshots:
        check_snapshot(message["snapshot"])
        assert message["snapshot"]["totalJobs"] == 5
    # The poller's own schedule backs off from 0.1 s by 1.5x: about 6-8 polls in these
    # 3-4 s (counted from the elapsed time, so a slow machine does not fail it). Had each
    # join refreshed the watch, there would be 20 more.
    scheduled, waited = 0, 0.0
    while waited <= elapsed:
        waited += 0.1 * 1.5**scheduled
        scheduled += 1
    assert polls <= scheduled + 2, (polls, elapsed)
    wait_for_group(client, group_id)


def test_reconnect_mid_group_sees_what_it_missed_and_sse_resumes_live(
    stack: Stack, client: httpx.Client, api_key: str, org_key: tuple[str, str]
) -> None:
    # ja waits on a provider that never answers in time: it fails after its attempts run
    # out (about ten seconds of timeouts and retries), while the other four translate at
    # once. That leaves a live group with four of five jobs done to reconnect to.
    models = json.dumps(
        [
            {"targetLocale": "ja", "provider": "openai", "model": "slow:progress-reconnect"},
            {"provider": "pseudo"},
        ]
    )
    engine = json.loads(
        run_tolk(
            stack,
            "engines",
            "create",
            "--org",
            org_key[0],
            "--name",
            "ja-slow",
            "--json",
            "--models",
            models,
        )
    )["id"]
    stack.kill("worker", signal.SIGTERM)  # nothing can finish before the first connect
    try:
        resp = client.post(
            "/jobs/localization",
            json={
                "sourceLocale": "en",
                "targetLocales": FIVE,
                "data": big(200),
                "engineId": engine,
            },
        )
        assert resp.status_code == 202, resp.text
        group_id = resp.json()["groupId"]
        headers = {"X-API-Key": api_key}
        events_url = f"{stack.api_url}/jobs/localization/groups/{group_id}/events"

        async def scenario() -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, str]]]:
            async with connect(ws_url(stack, group_id), additional_headers=headers) as ws:
                first = json.loads(await ws.recv())
            # Disconnected. The four fast jobs end; wait until the group workflow has
            # recorded them (asked directly, not through the API).
            stack.start_worker()
            temporal = await Client.connect(
                stack.settings.temporal_target, namespace=stack.settings.temporal_namespace
            )
            handle = temporal.get_workflow_handle(group_id)
            deadline = time.monotonic() + 60
            while (await handle.query("progress"))["snapshot"]["completedJobs"] < 4:
                assert time.monotonic() < deadline, "the four fast jobs never finished"
                await asyncio.sleep(0.1)

            async def resume_sse() -> list[dict[str, str]]:
                async with httpx.AsyncClient(timeout=60) as http:
                    async with http.stream(
                        "GET", events_url, headers={**headers, "Last-Event-ID": "2"}
                    ) as resp:
                        assert resp.status_code == 200
                        return parse_sse((await resp.aread()).decode())

            async def reconnect_ws() -> list[dict[str, Any]]:
                messages, code = await collect_ws(ws_url(stack, group_id), headers)
                assert code == 1000
                return messages

            sse_task = asyncio.create_task(resume_sse())
            again = await reconnect_ws()
            return first, again, await sse_task

        first, again, resumed = asyncio.run(scenario())
    finally:
        if "worker" not in stack.procs:
            stack.start_worker()

    assert first["type"] == "snapshot" and first["snapshot"]["completedJobs"] == 0
    # The new connection's snapshot already has the four jobs that ended meanwhile, while
    # the group still runs; the stream then carries only what happens after it.
    assert again[0]["type"] == "snapshot"
    snap = again[0]["snapshot"]
    check_snapshot(snap)
    assert snap["completedJobs"] == 4 and snap["status"] not in ("completed", "partial")
    assert [m["type"] for m in again[1:]] == ["job.failed", "group.completed"]
    assert again[1]["locale"] == "ja" and again[-1]["status"] == "partial"
    # SSE resumed after id 2 of a live group: ids 3 and 4 (job ends that happened before
    # it connected), then the failure and the group's end as they happen; no snapshot.
    assert [int(e["id"]) for e in resumed] == [3, 4, 5, 6]
    assert [e["event"] for e in resumed] == [
        "job.completed",
        "job.completed",
        "job.failed",
        "group.completed",
    ]


def test_after_the_group_ends_reconnect_and_resume_come_from_the_database(
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


# Routes that answer without a key (service routes), and the two that take a read token.
PUBLIC_PATHS = {"/healthz", "/readyz", "/openapi.json", "/docs", "/metrics"}
TOKEN_PATHS = {
    "/jobs/localization/groups/{groupId}/events",
    "/jobs/localization/groups/{groupId}/ws",
}


def keyed_routes(group_id: str, job_id: str) -> list[tuple[str, str]]:
    """(method, path) for every route of the routing table that needs an API key (or, for
    a job's output, its signed link)."""
    params = {"groupId": group_id, "jobId": job_id, "engineId": "eng_0000000000000000"}
    found = []
    for route in starlette_routes():
        if not isinstance(route, Route) or route.path in PUBLIC_PATHS | TOKEN_PATHS:
            continue  # (the one WebSocketRoute is a token path)
        for method in sorted((route.methods or set()) - {"HEAD"}):
            found.append((method, route.path.format(**params)))
    return found


def test_read_tokens_open_one_group_stream_only(stack: Stack, client: httpx.Client) -> None:
    group_a = submit(client, ["de"])
    group_b = submit(client, ["fr"])
    wait_for_group(client, group_a)
    job_a = client.get(f"/jobs/localization/groups/{group_a}").json()["jobs"][0]["id"]
    resp = client.post(f"/jobs/localization/groups/{group_a}/tokens", json={"ttlSeconds": 600})
    assert resp.status_code == 201, resp.text
    token = resp.json()["token"]
    assert resp.json()["expiresAt"].endswith("Z")

    sse = f"{stack.api_url}/jobs/localization/groups/{{}}/events?token={token}"
    assert httpx.get(sse.format(group_a), timeout=30).status_code == 200
    messages, code = asyncio.run(collect_ws(ws_url(stack, group_a, token)))
    assert [m["type"] for m in messages] == ["snapshot", "group.completed"] and code == 1000

    refused_b = httpx.get(sse.format(group_b), timeout=30)
    assert refused_b.status_code == 403 and refused_b.json()["_tag"] == "ForbiddenError"
    with pytest.raises(InvalidStatus) as info:
        asyncio.run(collect_ws(ws_url(stack, group_b, token)))
    assert info.value.response.status_code == 403

    # Every REST route that takes a key refuses the token, as a query parameter or a key.
    routes = keyed_routes(group_a, job_a)
    assert len(routes) >= 20  # the whole routing table, not a sample
    for method, path in routes:
        body: dict[str, Any] | None = {} if method in ("POST", "PUT", "PATCH") else None
        for params, headers in (({"token": token}, {}), ({}, {"X-API-Key": token})):
            resp = httpx.request(
                method,
                f"{stack.api_url}{path}",
                params=params,
                headers=headers,
                json=body,
                timeout=30,
            )
            # The output route takes only its own signed link (webhook dataUrl): a read
            # token there is a link that does not verify.
            link = path.endswith("/output") and params
            expected = (403, "ForbiddenError") if link else (401, "UnauthorizedError")
            assert (resp.status_code, resp.json()["_tag"]) == expected, (method, path, resp.text)

    assert (
        client.post(
            f"/jobs/localization/groups/{group_a}/tokens", json={"ttlSeconds": 3601}
        ).status_code
        == 400
    )
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    assert httpx.get(sse.format(group_a).replace(token, tampered), timeout=30).status_code == 401

    # A short token: after expiry it opens nothing, on either stream (polled with a
    # deadline, not timed).
    resp = client.post(f"/jobs/localization/groups/{group_a}/tokens", json={"ttlSeconds": 1})
    short = resp.json()["token"]
    short_sse = sse.replace(token, short)
    deadline = time.monotonic() + 10
    while httpx.get(short_sse.format(group_a), timeout=30).status_code == 200:
        assert time.monotonic() < deadline, "token never expired"
        time.sleep(0.25)
    expired = httpx.get(short_sse.format(group_a), timeout=30)
    assert expired.status_code == 401 and "expired" in expired.json()["message"]
    with pytest.raises(InvalidStatus) as info:
        asyncio.run(collect_ws(ws_url(stack, group_a, short)))
    assert info.value.response.status_code == 401
    assert "expired" in json.loads(info.value.response.body or b"{}")["message"]


@contextlib.asynccontextmanager
async def hub_here(stack: Stack) -> AsyncIterator[ProgressHub]:
    """A progress hub in the test process, on the stack's Temporal server and database."""
    temporal = await Client.connect(
        stack.settings.temporal_target, namespace=stack.settings.temporal_namespace
    )
    db = Database(stack.settings.database_url)
    hub = ProgressHub(db, temporal, hub_options(stack.settings))
    try:
        yield hub
    finally:
        await hub.close()
        await db.close()


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

    delivered: list[list[tuple[int, str] | None]] = []

    async def refreshed() -> list[tuple[bool, float, float, dict[str, Any], list[Any]]]:
        async with hub_here(stack) as hub:
            db = hub.db
            async with db.session() as session:
                group = await session.get(JobGroup, group_id)
                assert group is not None
                jobs = await groups.group_jobs(session, group_id)
            results = []
            for news in ("event", None):
                watch = hub.new_watch(group, jobs)
                # Two subscribers that have seen nothing: the refresh finds all three
                # events at once (both jobs and the group ended between two polls).
                subs = [Subscriber(cursor=0), Subscriber(cursor=0)]
                watch.subscribers.update(subs)
                memo0, queries0 = (
                    count("tolk_progress_memo_reads_total"),
                    count("tolk_progress_queries_total"),
                )
                changed = await watch.refresh(news=news)
                watch.deliver()
                for sub in subs:
                    got: list[tuple[int, str] | None] = []
                    while (message := await asyncio.wait_for(sub.next(), 5)) is not None:
                        got.append((message.seq, message.type))
                    delivered.append([*got, None])
                assert not watch.subscribers  # the group ended: the watch let them go
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

    (memo_changed, memo_reads, memo_queries, memo_snap, memo_log), polled = asyncio.run(refreshed())
    poll_changed, poll_memo_reads, poll_queries, poll_snap, poll_log = polled
    assert (memo_changed, memo_reads, memo_queries) == (True, 1, 0)
    assert (poll_changed, poll_memo_reads, poll_queries) == (True, 0, 1)
    assert memo_log == poll_log and len(memo_log) == 3 and memo_log[-1] == [None, "completed"]
    assert memo_snap == poll_snap
    check_snapshot(memo_snap)
    assert memo_snap["completedJobs"] == 2
    # Exactly one message per event, in log order, group.completed last, then the end.
    expected = [(1, "job.completed"), (2, "job.completed"), (3, "group.completed"), None]
    assert delivered == [expected] * 4


def insert_orphan_group(stack: Stack, org_id: str, locales: list[str]) -> tuple[str, list[str]]:
    """A group's rows with no workflow behind them (the moment between the API's insert
    and its start_workflow): (group id, job ids)."""
    group_id = new_id("ljg_")
    document = documents.encode_document({"t": "Hello"})

    async def insert() -> list[str]:
        db = Database(stack.settings.database_url)
        try:
            async with db.writing() as session:
                engine = await engines.default_engine(session, org_id)
                assert engine is not None
                group = JobGroup(
                    id=group_id,
                    organization_id=org_id,
                    engine_id=engine.id,
                    source_locale="en",
                    target_locales=locales,
                    source_ref=hashlib.sha256(document).hexdigest(),
                    fingerprint="test",
                )
                jobs = [
                    Job(
                        id=new_id("ljb_"),
                        group_id=group_id,
                        organization_id=org_id,
                        engine_id=engine.id,
                        source_locale="en",
                        target_locale=locale,
                    )
                    for locale in locales
                ]
                assert await groups.insert_group(session, group, jobs, document)
                return [job.id for job in jobs]
        finally:
            await db.close()

    return group_id, asyncio.run(insert())


def delete_group(stack: Stack, group_id: str) -> None:
    async def remove() -> None:
        db = Database(stack.settings.database_url)
        try:
            async with db.writing() as session:
                await session.exec(delete(Job).where(col(Job.group_id) == group_id))
                await session.exec(delete(JobGroup).where(col(JobGroup.id) == group_id))
                await session.commit()
        finally:
            await db.close()

    asyncio.run(remove())


def test_a_group_temporal_cannot_answer_for_still_gets_a_whole_snapshot(
    stack: Stack, org_key: tuple[str, str], api_key: str
) -> None:
    # No workflow behind the rows: the query and the memo read both fail, and the
    # subscriber still gets a snapshot built from the rows, not an empty one.
    group_id, job_ids = insert_orphan_group(stack, org_key[0], ["de", "fr"])

    async def first_message() -> dict[str, Any]:
        async with connect(
            ws_url(stack, group_id), additional_headers={"X-API-Key": api_key}, open_timeout=10
        ) as ws:
            return dict(json.loads(await asyncio.wait_for(ws.recv(), 10)))

    failures = metric(stack, "tolk_progress_query_failures_total")
    try:
        message = asyncio.run(first_message())
    finally:
        delete_group(stack, group_id)
    assert message["type"] == "snapshot"
    snap = message["snapshot"]
    check_snapshot(snap)
    assert snap["groupId"] == group_id and snap["totalJobs"] == 2
    assert {job_id: job["status"] for job_id, job in snap["jobs"].items()} == {
        job_id: "queued" for job_id in job_ids
    }
    assert metric(stack, "tolk_progress_query_failures_total") > failures


def test_pings_are_sent_and_a_vanished_client_is_dropped(
    stack: Stack, org_key: tuple[str, str], api_key: str
) -> None:
    # A client made of a bare socket and websockets' sans-I/O protocol: it sees every
    # frame, pings included, and answers none of them. Its group stays live (no workflow
    # behind its rows), so only the client's going away can end the subscription.
    group_id, _ = insert_orphan_group(stack, org_key[0], ["de"])
    wait_until_nobody_watches(stack)
    host, port = stack.settings.api_host, stack.settings.api_port
    protocol = ClientProtocol(
        parse_uri(f"ws://{host}:{port}/jobs/localization/groups/{group_id}/ws")
    )
    request = protocol.connect()
    request.headers["X-API-Key"] = api_key
    protocol.send_request(request)
    sock = socket.create_connection((host, port), timeout=10)
    try:
        sock.sendall(b"".join(protocol.data_to_send()))
        frames: list[Frame] = []
        deadline = time.monotonic() + 15
        while not any(f.opcode is Opcode.PING for f in frames):
            assert time.monotonic() < deadline, f"no ping in 15 s: {frames}"
            data = sock.recv(65536)
            assert data, "the server closed the connection"
            protocol.receive_data(data)
            frames += [e for e in protocol.events_received() if isinstance(e, Frame)]
        protocol.data_to_send()  # the pong the protocol would send: never sent
        assert protocol.handshake_exc is None
        assert frames[0].opcode is Opcode.TEXT
        assert json.loads(bytes(frames[0].data))["snapshot"]["groupId"] == group_id
        during = metrics(stack, "tolk_progress_subscribers", "tolk_progress_watched_groups")
        assert during == {"tolk_progress_subscribers": 1.0, "tolk_progress_watched_groups": 1.0}
    finally:
        sock.close()  # gone without a close frame (a FIN, no WebSocket close)
    try:
        wait_until_nobody_watches(stack)  # its subscription and its group's watch ended
    finally:
        delete_group(stack, group_id)


def test_the_hub_keeps_no_watch_of_a_finished_group_and_resumes_where_the_client_was(
    stack: Stack, client: httpx.Client, org_key: tuple[str, str]
) -> None:
    # A hub made here, on the stack's Temporal server and database file.
    # 1. The workflow has recorded the group's end, its row not yet (the moment before the
    #    group's result is stored): the join finds it finished, and keeps no watch of it.
    # 2. A resume after event 2 while the workflow cannot answer (no workflow behind the
    #    rows): the log is unknown, so nothing is sent again from event 1.
    group_id = submit(client, ["de"])
    wait_for_group(client, group_id)
    orphan_id, _ = insert_orphan_group(stack, org_key[0], ["de"])

    async def scenario() -> tuple[list[str], int, int, list[Any], int]:
        async with hub_here(stack) as hub:
            db = hub.db
            async with db.writing() as session:
                group = await session.get(JobGroup, group_id)
                assert group is not None and group.status == "completed" and group.event_log
                stored = (group.status, list(group.event_log))
                group.status, group.event_log = "pending", []
                session.add(group)
                await session.commit()
            try:
                types = []
                async with hub.subscribe(group_id) as sub:
                    while (message := await asyncio.wait_for(sub.next(), 10)) is not None:
                        types.append(message.type)
                kept = len(hub.watches)
            finally:
                async with db.writing() as session:
                    group = await session.get(JobGroup, group_id)
                    assert group is not None
                    group.status, group.event_log = stored
                    session.add(group)
                    await session.commit()
            async with hub.subscribe(orphan_id, after=2) as resumed:
                cursor, pending = resumed.cursor, list(resumed._pending)
            deadline = time.monotonic() + 10
            while hub.watches:  # the orphan's poller ends with its last subscriber
                assert time.monotonic() < deadline, "the watch outlived its subscribers"
                await asyncio.sleep(0.05)
            return types, kept, cursor, pending, len(hub.watches)

    try:
        types, kept, cursor, pending, left = asyncio.run(scenario())
    finally:
        delete_group(stack, orphan_id)
    assert types == ["snapshot", "group.completed"]
    assert kept == 0, "a watch of a finished group stayed in the hub"
    assert (cursor, pending, left) == (2, [], 0)


def test_a_group_removed_after_its_owner_was_remembered_is_a_404(
    stack: Stack, org_key: tuple[str, str], api_key: str
) -> None:
    # The API remembers a group's owner after its first stream; a group removed after that
    # (one whose workflow never started) is refused with a 404 and a JSON body on both
    # streams, not a closed socket or a 500.
    group_id, _ = insert_orphan_group(stack, org_key[0], ["de"])
    headers = {"X-API-Key": api_key}

    async def first_message() -> str:
        async with connect(ws_url(stack, group_id), additional_headers=headers) as ws:
            return str(json.loads(await asyncio.wait_for(ws.recv(), 10))["type"])

    try:
        assert asyncio.run(first_message()) == "snapshot"
    finally:
        delete_group(stack, group_id)
    wait_until_nobody_watches(stack)  # no watch of it left either: the hub must look it up
    with pytest.raises(InvalidStatus) as info:
        asyncio.run(first_message())
    refused = info.value.response
    assert refused.status_code == 404
    assert json.loads(bytes(refused.body or b""))["_tag"] == "NotFoundError"
    sse = httpx.get(
        f"{stack.api_url}/jobs/localization/groups/{group_id}/events", headers=headers, timeout=30
    )
    assert sse.status_code == 404 and sse.json()["_tag"] == "NotFoundError"
