"""What is verified after a chaos run's drain: everything the run can read back (every
group and job by GET, each group's event log replayed over SSE, a final replay of every
key, every Temporal execution, the database rows), then :func:`check`, every invariant
with the subjects that break it. The invariants are listed in ``bench/chaos.py``."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import sqlite3
import time
from collections import defaultdict
from typing import Any

import httpx

from bench.chaos_config import (
    GROUP_AND_JOB_WORKFLOWS,
    SUCCEEDED,
    TERMINAL_GROUP,
    TERMINAL_JOB,
    Config,
    document,
)
from bench.chaos_evidence import fmt, short, stream_summary
from bench.chaos_load import Client
from bench.chaos_records import Attempt, Checked, Faults, Observed, Receipt
from stack import Stack

LATE = "jobs late (not done when nothing had moved for a while)"
INVARIANTS = (
    "keys not accepted",
    "keys with more than one group",
    "jobs lost",
    LATE,
    "jobs not completed",
    "jobs without a delivered webhook",
    "jobs with more than one webhook-id",
    "jobs with two terminal states",
    "event logs incomplete",
    "webhooks with a bad signature",
    "webhooks for jobs never accepted",
    "components that exited on their own",
    "workflow executions failed or orphaned",
)


async def read_events(http: httpx.AsyncClient, group_id: str) -> list[tuple[str, dict[str, Any]]]:
    """The group's SSE stream resumed after event 0: a finished group's whole event log.
    A group that is not finished streams on: what came within 10 s, then ``timeout``."""
    events: list[tuple[str, dict[str, Any]]] = []
    kind, data = "", ""
    path = f"/jobs/localization/groups/{group_id}/events"
    try:
        async with (
            asyncio.timeout(10),
            http.stream("GET", path, headers={"Last-Event-ID": "0"}, timeout=10) as resp,
        ):
            if resp.status_code != 200:
                return [("http", {"status": resp.status_code})]
            async for line in resp.aiter_lines():
                if line.startswith("event:"):
                    kind = line[6:].strip()
                elif line.startswith("data:"):
                    data += line[5:].strip()
                elif line == "" and kind:
                    events.append((kind, json.loads(data) if data else {}))
                    if kind == "group.completed":
                        break
                    kind, data = "", ""
    except (TimeoutError, httpx.TimeoutException):
        events.append(("timeout", {"error": "the stream did not end within 10 s"}))
    return events


async def collect(stack: Stack, key: str, client: Client, checked: Checked) -> None:
    """Read back, once the drain is over, everything the checks judge: each GET retried a
    few times on a connection error, so a last restart does not read as a finding."""
    seen = client.seen
    async with httpx.AsyncClient(
        base_url=stack.api_url, headers={"X-API-Key": key}, timeout=30
    ) as http:
        gate = asyncio.Semaphore(8)

        async def get(path: str) -> Any:
            last: Any = None
            for _ in range(5):
                try:
                    resp = await http.get(path)
                except httpx.TransportError as err:
                    last = {"error": type(err).__name__}
                    await asyncio.sleep(1)
                    continue
                if resp.status_code == 200:
                    return resp.json()
                return {"httpStatus": resp.status_code, "body": resp.text[:500]}
            return last

        async def group(group_id: str) -> None:
            async with gate:
                checked.groups[group_id] = await get(f"/jobs/localization/groups/{group_id}")
                try:
                    checked.events[group_id] = await read_events(http, group_id)
                except (TimeoutError, httpx.HTTPError, ValueError) as err:
                    checked.events[group_id] = [("error", {"error": repr(err)})]

        async def job(job_id: str) -> None:
            async with gate:
                checked.jobs[job_id] = await get(f"/jobs/localization/{job_id}")

        async def replay(key: str) -> None:
            """One more POST of every key after the drain: the same group, replayed."""
            async with gate:
                body = client.body(seen.keys[key])
                for _ in range(5):
                    began = time.monotonic()
                    try:
                        resp = await http.post("/jobs/localization", json=body)
                    except httpx.TransportError as err:
                        checked.replays[key] = Attempt(key, 9, 0, 0, type(err).__name__)
                        await asyncio.sleep(1)
                        continue
                    attempt = Attempt(
                        key, 9, began - seen.t0, time.monotonic() - began, str(resp.status_code)
                    )
                    checked.replays[key] = attempt
                    if resp.status_code == 202:
                        attempt.took(resp)
                        return
                    await asyncio.sleep(1)

        every_group = set(seen.group_key)
        every_job = set(seen.job_group)
        await asyncio.gather(*(group(g) for g in every_group))
        # Jobs the groups list now, besides the ones the 202s named.
        for body in checked.groups.values():
            every_job |= {j["id"] for j in body.get("jobs", [])}
        await asyncio.gather(*(job(j) for j in every_job))
        await asyncio.gather(*(replay(k) for k in seen.keys if k not in seen.gave_up))

    from temporalio.client import Client as TemporalClient

    temporal = await TemporalClient.connect(
        stack.settings.temporal_target, namespace=stack.settings.temporal_namespace
    )
    async for execution in temporal.list_workflows():
        # Start and close in seconds since the burst began, as every time in the diagnosis.
        started = execution.start_time.timestamp() - seen.wall0
        closed = execution.close_time.timestamp() - seen.wall0 if execution.close_time else None
        checked.workflows.append(
            (
                execution.id,
                execution.workflow_type,
                execution.status.name if execution.status else "?",
                f"{started:.1f} s to {fmt(closed)}{' s' if closed is not None else ''}",
            )
        )


def read_database(stack: Stack, checked: Checked) -> None:
    """The rows behind the answers, read-only: a second terminal state in a group's stored
    event log is a finding even when GET shows one; the diagnosis quotes the other rows."""
    path = stack.settings.database_url.split(":///", 1)[1]
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        for gid, st, log in db.execute("SELECT id, status, event_log FROM jobgroup"):
            checked.db_groups[gid] = (st, json.loads(log) if log else None)
        for row in db.execute("SELECT id, group_id, attempts, status, output_ref FROM job"):
            checked.db_jobs[row[0]] = (row[1], row[3], row[2], row[4], None)
        for row in db.execute(
            "SELECT job_id, event_id, series, attempt, outcome, status_code, error, created_at "
            "FROM delivery ORDER BY id"
        ):
            checked.db_deliveries.setdefault(row[0], []).append(row[1:])


def check(config: Config, seen: Observed, checked: Checked, faults: Faults) -> dict[str, list[str]]:
    """Every invariant, each with the subjects that break it (empty: it holds)."""
    v: dict[str, list[str]] = {name: [] for name in INVARIANTS}
    v["keys not accepted"] = [f"{k}: {why}" for k, why in sorted(seen.gave_up.items())]
    last = faults.last_fault or seen.t0
    for job_id, lacked in sorted(seen.stalled.items()):
        done = seen.done_at.get(job_id)
        v[LATE].append(
            f"{job_id} (group {seen.job_group[job_id]}): {lacked} at the stall, "
            f"{config.stall_limit:.0f} s without progress; "
            + (
                f"done {done - last:.0f} s after the last fault"
                if done is not None
                else f"still not done {config.late_limit:.0f} s later"
            )
        )
    _check_keys(config, seen, checked, v)
    receipts = _check_receipts(seen, v)
    _check_jobs(config, seen, checked, receipts, v)
    _check_group_logs(checked, v)
    v["components that exited on their own"] = list(faults.exits)
    _check_workflows(seen, checked, v)
    return v


def _check_keys(config: Config, seen: Observed, checked: Checked, v: dict[str, list[str]]) -> None:
    """One group and one set of jobs per key, in every 202, the final replay and GET."""
    for key, group_ids in sorted(seen.key_groups.items()):
        replay = checked.replays.get(key)
        ids = set(group_ids)
        job_sets = set(seen.key_jobs[key])
        problems = []
        if replay is None or replay.outcome != "202":
            problems.append(f"final replay got {replay.outcome if replay else 'nothing'}")
        else:
            ids.add(replay.group_id or "")
            job_sets.add(replay.job_ids)
            if not replay.replayed:
                problems.append("final replay was not marked Idempotent-Replayed")
        if len(ids) != 1:
            problems.append(f"202s carried group ids {sorted(ids)}")
        if len(job_sets) != 1:
            problems.append(f"202s carried job id sets {sorted(job_sets)}")
        for group_id in sorted(ids):
            got = checked.groups.get(group_id, {})
            if "groupId" not in got:
                problems.append(f"GET {group_id}: {got}")
                continue
            listed = tuple(sorted(j["id"] for j in got["jobs"]))
            if {listed} != job_sets:
                problems.append(f"GET {group_id} lists jobs {listed}, the 202s {sorted(job_sets)}")
            if got["totalJobs"] != config.locales:
                problems.append(f"GET {group_id}: totalJobs {got['totalJobs']}")
        if problems:
            v["keys with more than one group"].append(f"{key}: " + "; ".join(problems))


def _check_receipts(seen: Observed, v: dict[str, list[str]]) -> dict[str, list[Receipt]]:
    """Every webhook signed and for an accepted job; returns them by job."""
    receipts: dict[str, list[Receipt]] = defaultdict(list)
    for r in seen.receipts:
        receipts[r.job_id or "?"].append(r)
        if not r.signature_ok:
            v["webhooks with a bad signature"].append(f"{r.job_id} {r.webhook_id}")
        if r.job_id not in seen.job_group:
            v["webhooks for jobs never accepted"].append(
                f"{r.job_id} (group {r.group_id}, {r.type}, {r.webhook_id})"
            )
    return receipts


def _check_jobs(
    config: Config,
    seen: Observed,
    checked: Checked,
    receipts: dict[str, list[Receipt]],
    v: dict[str, list[str]],
) -> None:
    """Every accepted job terminal, completed with its output, delivered under one
    webhook-id, and ended once: by its webhooks, its statuses seen, the SSE replay and the
    group's stored event log."""
    source_keys = {i: sorted(document(i)) for i in range(config.groups)}
    for job_id, group_id in sorted(seen.job_group.items()):
        got = checked.jobs.get(job_id, {})
        job_status = got.get("status")
        index = seen.keys.get(seen.group_key.get(group_id, ""), -1)
        if job_status not in TERMINAL_JOB:
            v["jobs lost"].append(f"{job_id} (group {group_id}): GET gives {short(got)}")
        elif job_status in SUCCEEDED and (
            not isinstance(got.get("outputData"), dict)
            or sorted(got["outputData"]) != source_keys.get(index)
        ):
            v["jobs lost"].append(
                f"{job_id} (group {group_id}): {job_status} but outputData is "
                f"{short(got.get('outputData'))}"
            )
        if job_status in TERMINAL_JOB and job_status not in SUCCEEDED:
            v["jobs not completed"].append(
                f"{job_id} (group {group_id}): {job_status}, error {got.get('error')!r}"
            )
        mine = receipts.get(job_id, [])
        if not any(r.delivered for r in mine):
            v["jobs without a delivered webhook"].append(
                f"{job_id} (group {group_id}): {len(mine)} receipts, none answered 2xx"
            )
        ids = {str(r.webhook_id) for r in mine}
        if len(ids) > 1:
            v["jobs with more than one webhook-id"].append(f"{job_id}: {sorted(ids)}")
        two = []
        types = {r.type for r in mine}
        if len(types) > 1:
            two.append(f"webhook types {sorted(map(str, types))}")
        statuses = {r.status for r in mine if r.type == "translation.completed"}
        if job_status in TERMINAL_JOB and statuses - {job_status}:
            two.append(f"webhooks said {sorted(map(str, statuses))}, GET says {job_status}")
        history = seen.history.get(job_id, [])
        for before, after in itertools.pairwise(history):
            if before in TERMINAL_JOB and after != before:
                two.append(f"seen going {before} -> {after} (statuses seen: {history})")
                break
        events = checked.events.get(group_id, [])
        ends = [
            kind for kind, data in events if kind.startswith("job.") and data.get("jobId") == job_id
        ]
        if len(ends) > 1:
            two.append(f"SSE event log has {ends}")
        elif not ends and job_status in TERMINAL_JOB:
            v["event logs incomplete"].append(
                f"{job_id} (group {group_id}): {job_status} by GET, no job.* event in the SSE "
                f"replay {stream_summary(events)}"
            )
        recorded = (checked.db_groups.get(group_id) or ("", None))[1] or []
        in_db = [st for entry_job, st in recorded if entry_job == job_id]
        if len(in_db) > 1:
            two.append(f"jobgroup.event_log has {in_db}")
        if two:
            v["jobs with two terminal states"].append(
                f"{job_id} (group {group_id}): " + "; ".join(two)
            )


def _check_group_logs(checked: Checked, v: dict[str, list[str]]) -> None:
    """A finished group's SSE replay ends with its one group.completed."""
    for group_id, events in sorted(checked.events.items()):
        kinds = [kind for kind, _ in events]
        if checked.groups.get(group_id, {}).get("status") not in TERMINAL_GROUP:
            continue  # a group that is not finished: its jobs are counted as lost
        if kinds.count("group.completed") != 1 or kinds[-1:] != ["group.completed"]:
            v["event logs incomplete"].append(
                f"group {group_id}: terminal by GET, SSE replay {kinds}, not one "
                "group.completed last"
            )


def _check_workflows(seen: Observed, checked: Checked, v: dict[str, list[str]]) -> None:
    """No execution failed, none runs for a group or job no 202 named."""
    accepted_ids = set(seen.group_key) | set(seen.job_group)
    for wf_id, wf_type, wf_status, _ in checked.workflows:
        if wf_status in {"FAILED", "TERMINATED", "TIMED_OUT"}:
            v["workflow executions failed or orphaned"].append(f"{wf_type} {wf_id}: {wf_status}")
        elif wf_type in GROUP_AND_JOB_WORKFLOWS and wf_id not in accepted_ids:
            v["workflow executions failed or orphaned"].append(
                f"{wf_type} {wf_id} ({wf_status}): not a group or job any 202 named"
            )
