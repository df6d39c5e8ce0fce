"""What a Tolk group costs next to the raw fan-out shape, side by side in one run.

    python -m bench.fanout [--groups 24] [--requests 100] [--write BENCHMARKS.md]

The raw shape (``bench/raw_fanout.py``) is a parent workflow that starts one child per
locale, each running one no-op activity: the least Temporal can do for a group. Tolk's shape
is a 14-locale group through ``POST /jobs/localization`` (20 strings, the offline pseudo
engine) whose webhooks are delivered to an HTTPS receiver on loopback that keeps
connections alive, as one behind a web server does. Both run on one dev server,
each with ``--workers`` worker processes of its own (the same concurrency settings; Python
workflow code is bound by the GIL, so Tolk scales by processes), in alternating rounds:

1. busy: ``--groups`` groups submitted by 16 concurrent clients while the groups started
   before them run (the workers are up), then drained; and the same at 1 client. Per shape:
   the submission latency (POST until the 202; ``start_workflow`` until it returns), end to
   end locale jobs per second (first submission to the last group workflow closed), history
   events per locale job (every workflow's history length: the group's share and the job's),
   and CPU per locale job of the shape's workers and of the Temporal server;
2. quiet: both workers stopped, ``--requests`` submissions at 1 and at 16 clients per shape,
   alternating (nothing runs meanwhile).

Only loopback addresses are used; every wait is bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import trustme

from bench.accept import LOCALES_14, SMALL
from bench.common import machine, own_stack, percentile, write_section
from bench.raw_fanout import RAW_TASK_QUEUE, RawGroupWorkflow
from stack import Stack
from tests.postgres import PostgresServer
from tests.receiver import Receiver

TICKS = os.sysconf("SC_CLK_TCK")
DRAIN_LIMIT = 600.0  # seconds; only catches a hang
RECEIVER_HOST = "127.0.0.2"  # the only address the stack may call back


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


class Shape:
    """One way of running a 14-locale group: how to submit one, and its workflows."""

    name = ""
    worker = ""  # the name prefix of the stack's processes that run it

    async def submit(self) -> tuple[str, list[str]]:
        """Submit one group; its workflow id and its job workflows' ids."""
        raise NotImplementedError


class TolkShape(Shape):
    name, worker = "Tolk", "worker"

    def __init__(self, http: httpx.AsyncClient, callback: str) -> None:
        self.http, self.callback = http, callback

    async def submit(self) -> tuple[str, list[str]]:
        resp = await self.http.post(
            "/jobs/localization",
            json={
                "sourceLocale": "en",
                "targetLocales": LOCALES_14,
                "data": SMALL,
                "callbackUrl": self.callback,
            },
        )
        if resp.status_code != 202:
            raise RuntimeError(f"POST answered {resp.status_code}: {resp.text[:300]}")
        body = resp.json()
        return body["groupId"], [job["id"] for job in body["jobs"]]


class RawShape(Shape):
    name, worker = "raw", "worker-raw"

    def __init__(self, temporal: Any) -> None:
        self.temporal = temporal

    async def submit(self) -> tuple[str, list[str]]:
        parent = f"raw-{uuid.uuid4().hex[:16]}"
        await self.temporal.start_workflow(
            RawGroupWorkflow.run, LOCALES_14, id=parent, task_queue=RAW_TASK_QUEUE
        )
        return parent, [f"{parent}-{locale}" for locale in LOCALES_14]


def worker_of(process: str) -> str:
    """Which shape's worker a stack process is ("worker", "worker-2": Tolk's; "worker-raw",
    "worker-raw-2": the raw shape's), or "" for the others."""
    if process.startswith("worker-raw"):
        return "worker-raw"
    return "worker" if process.startswith("worker") else ""


async def lanes(call: Callable[[], Awaitable[Any]], total: int, concurrency: int) -> list[Any]:
    """``total`` calls over ``concurrency`` lanes; each call's (seconds, result)."""
    results: list[Any] = []
    left = [total]

    async def lane() -> None:
        while left[0] > 0:
            left[0] -= 1
            started = time.perf_counter()
            got = await call()
            results.append((time.perf_counter() - started, got))

    await asyncio.gather(*(lane() for _ in range(concurrency)))
    return results


async def history_length(temporal: Any, workflow_id: str) -> int:
    described = await temporal.get_workflow_handle(workflow_id).describe()
    return int(described.raw_description.workflow_execution_info.history_length)


async def closed(temporal: Any, workflow_id: str) -> None:
    """Wait for the workflow to close (its result, or its failure: both are a close)."""
    with contextlib.suppress(Exception):
        await temporal.get_workflow_handle(workflow_id).result()


async def busy_round(
    stack: Stack, temporal: Any, shape: Shape, groups: int, concurrency: int
) -> dict[str, Any]:
    """Submit ``groups`` groups over ``concurrency`` lanes while they run; drain."""
    worker_pids = [p.pid for name, p in stack.procs.items() if worker_of(name) == shape.worker]
    server_pid, api_pid = stack.procs["temporal"].pid, stack.procs["api"].pid
    cpu_before = (
        sum(map(cpu_seconds, worker_pids)),
        cpu_seconds(server_pid),
        cpu_seconds(api_pid) + cpu_seconds(os.getpid()),
    )
    began = time.perf_counter()
    submitted = await lanes(shape.submit, groups, concurrency)
    await asyncio.wait_for(
        asyncio.gather(*(closed(temporal, gid) for _, (gid, _jobs) in submitted)), DRAIN_LIMIT
    )
    elapsed = time.perf_counter() - began
    worker_cpu = sum(map(cpu_seconds, worker_pids)) - cpu_before[0]
    server_cpu = cpu_seconds(server_pid) - cpu_before[1]
    # What submitting costs: the API process and this one (the raw shape's client).
    submit_cpu = cpu_seconds(api_pid) + cpu_seconds(os.getpid()) - cpu_before[2]
    jobs = sum(len(job_ids) for _, (_gid, job_ids) in submitted)
    group_events = [await history_length(temporal, gid) for _, (gid, _j) in submitted]
    job_events = [
        await history_length(temporal, jid) for _, (_g, job_ids) in submitted for jid in job_ids
    ]
    return {
        "latencies": [seconds for seconds, _ in submitted],
        "jobs": jobs,
        "jobs_per_s": jobs / elapsed,
        "group_events_per_job": sum(group_events) / jobs,
        "job_events_per_job": sum(job_events) / jobs,
        "events_per_job": (sum(group_events) + sum(job_events)) / jobs,
        "worker_cpu_ms_per_job": worker_cpu / jobs * 1000,
        "server_cpu_ms_per_job": server_cpu / jobs * 1000,
        "submit_cpu_ms_per_job": submit_cpu / jobs * 1000,
    }


async def quiet_round(shape: Shape, requests: int, concurrency: int) -> list[float]:
    return [seconds for seconds, _ in await lanes(shape.submit, requests, concurrency)]


def merged(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Rounds of one shape at one level: latencies pooled, the rest averaged."""
    out: dict[str, Any] = {"latencies": [x for r in rounds for x in r["latencies"]]}
    for key in rounds[0]:
        if key != "latencies":
            out[key] = statistics.fmean(r[key] for r in rounds)
    return out


async def run(stack: Stack, key: str, callback: str, args: argparse.Namespace) -> dict[str, Any]:
    from temporalio.client import Client

    temporal = await Client.connect(
        stack.settings.temporal_target, namespace=stack.settings.temporal_namespace
    )
    limits = httpx.Limits(max_connections=32)
    async with httpx.AsyncClient(
        base_url=stack.api_url, headers={"X-API-Key": key}, timeout=60, limits=limits
    ) as http:
        shapes: list[Shape] = [TolkShape(http, callback), RawShape(temporal)]
        for shape in shapes:  # warm-up: connections, caches, the workers' first tasks
            await busy_round(stack, temporal, shape, 4, 4)
        busy: dict[tuple[str, int], list[dict[str, Any]]] = {}
        for _round in range(args.rounds):  # alternating, so drift hits both alike
            for concurrency in (16, 1):
                for shape in shapes:
                    got = await busy_round(stack, temporal, shape, args.groups, concurrency)
                    busy.setdefault((shape.name, concurrency), []).append(got)
        # Quiet: nothing runs meanwhile (both workers stopped; what is started stays queued).
        for name in [n for n in stack.procs if worker_of(n)]:
            stack.kill(name, signal.SIGTERM)
        quiet: dict[tuple[str, int], list[float]] = {}
        for _round in range(args.rounds):
            for concurrency in (1, 16):
                for shape in shapes:
                    got_q = await quiet_round(shape, args.requests, concurrency)
                    quiet.setdefault((shape.name, concurrency), []).extend(got_q)
    return {
        "busy": {k: merged(v) for k, v in busy.items()},
        "quiet": quiet,
    }


def p50_ms(samples: list[float]) -> float:
    return percentile(samples, 50) * 1000


def report(figures: dict[str, Any], command: str, args: argparse.Namespace) -> str:
    busy, quiet = figures["busy"], figures["quiet"]
    tolk, raw = busy[("Tolk", 16)], busy[("raw", 16)]
    cost_rows = []
    for label, key, fmt in (
        ("history events per locale job", "events_per_job", "{:.1f}"),
        ("... in the group (parent) workflow", "group_events_per_job", "{:.1f}"),
        ("... in the job (child) workflow", "job_events_per_job", "{:.1f}"),
        ("locale jobs/s end to end (16 clients)", "jobs_per_s", "{:.1f}"),
        ("worker CPU per locale job (ms)", "worker_cpu_ms_per_job", "{:.1f}"),
        ("Temporal server CPU per locale job (ms)", "server_cpu_ms_per_job", "{:.1f}"),
        ("API + client CPU per locale job (ms)", "submit_cpu_ms_per_job", "{:.1f}"),
    ):
        cost_rows.append(
            f"| {label} | {fmt.format(tolk[key])} | {fmt.format(raw[key])} "
            f"| {tolk[key] / raw[key]:.2f}x |"
        )
    accept_rows = []
    for where, table in (("groups running", busy), ("quiet", quiet)):
        for level in (1, 16):
            if where == "quiet":
                t, r = table[("Tolk", level)], table[("raw", level)]
            else:
                t, r = table[("Tolk", level)]["latencies"], table[("raw", level)]["latencies"]
            accept_rows.append(
                f"| {where} | {level} | {p50_ms(t):.1f} | {p50_ms(r):.1f} "
                f"| {p50_ms(t) / p50_ms(r):.2f}x | {percentile(t, 99) * 1000:.1f} "
                f"| {percentile(r, 99) * 1000:.1f} |"
            )
    return "\n".join(
        [
            "## The cost of a job next to raw fan-out (`bench/fanout.py`)",
            "",
            f"`{command}` on {machine()}; its own stack (dev server, {args.workers} Tolk"
            f" worker processes, the API, Tolk's database on {args.database}) and"
            f" {args.workers} worker processes for the raw"
            " shape (a parent, one child per locale, one no-op activity each). 14-locale"
            f" groups, {args.rounds} alternating rounds of"
            f" {args.groups} groups per shape and level; Tolk's groups translate 20 strings"
            " with the pseudo engine and deliver every job's webhook to a receiver on"
            " loopback.",
            "",
            "| per locale job (16 clients, groups running) | Tolk | raw | ratio |",
            "|---|---|---|---|",
            *cost_rows,
            "",
            "A Tolk job is as short in history as the raw shape's child: its translate"
            " activity stores the output and makes the webhook's first attempt, and the"
            " workflow completes (`workflows/group.py`, LEAN_JOBS). The group's share is"
            " higher than the raw parent's by its own work: the `lean-jobs` marker, the"
            " TolkGroupStatus search attribute twice, one memo write per workflow task, and"
            " the `record_group_result` activity. CPU is the processes' user and system"
            " time over the round (the workers' include translation, the database and the"
            " HTTPS webhook; the server's, every history write).",
            "",
            "Submission latency: POST /jobs/localization until the 202 next to"
            " `start_workflow` of the raw parent, with the groups started running meanwhile"
            f" and with both workers stopped ({args.requests} calls per round), ms:",
            "",
            "| background | clients | POST p50 | start p50 | p50 ratio | POST p99 | start p99 |",
            "|---|---|---|---|---|---|---|",
            *accept_rows,
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--groups", type=int, default=24, help="groups per busy round")
    parser.add_argument("--requests", type=int, default=100, help="calls per quiet round")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds")
    parser.add_argument("--workers", type=int, default=2, help="worker processes per shape")
    parser.add_argument(
        "--database",
        choices=["sqlite", "postgresql"],
        default="sqlite",
        help="Tolk's database: a SQLite file, or a PostgreSQL server of its own (Debian's)",
    )
    parser.add_argument("--write", type=Path, help="update this Markdown file's section")
    args = parser.parse_args()
    command = ("python -m bench.fanout " + " ".join(sys.argv[1:])).strip()
    ca = trustme.CA()
    with (
        Receiver(ca, host=RECEIVER_HOST, keep_alive=True) as hook,
        tempfile.TemporaryDirectory(prefix="tolk-bench-") as tmp,
    ):
        ca_file = Path(tmp) / "webhook-ca.pem"
        ca.cert_pem.write_to_path(str(ca_file))
        database = PostgresServer().start() if args.database == "postgresql" else None
        overrides = {"TOLK_DATABASE_URL": database.url} if database is not None else {}
        stack, key = own_stack(
            Path(tmp),
            TOLK_WEBHOOKS_CA_FILE=str(ca_file),
            TOLK_WEBHOOKS_ALLOWED_HOSTS=json.dumps([RECEIVER_HOST]),
            TOLK_WORKER_PROCESSES=str(args.workers),
            **overrides,
        )
        try:
            for i in range(args.workers):
                name = "worker-raw" if i == 0 else f"worker-raw-{i + 1}"
                stack._spawn(name, [sys.executable, "-m", "bench.raw_fanout"])
            figures = asyncio.run(run(stack, key, hook.url, args))
        finally:
            stack.stop()
            if database is not None:
                database.stop()
        delivered = len(hook.received)
    section = report(figures, command, args)
    section += f"\n\nWebhooks received by the loopback receiver: {delivered}."
    print(section)
    if args.write:
        name = "fanout" if args.database == "sqlite" else f"fanout-{args.database}"
        write_section(args.write, name, section)


if __name__ == "__main__":
    main()
