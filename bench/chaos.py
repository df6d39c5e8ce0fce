"""Chaos: nothing accepted is lost while every process of the stack is SIGKILLed.

    python -m bench.chaos [--groups 100] [--locales 5] [--runs 1] [--write BENCHMARKS.md]

Starts its own stack from components on free ports in a temp dir (Temporal dev server, two
workers, the API; jobs go through the local LLM stand-in, so translations are in flight
when a worker dies) and a real HTTPS webhook receiver on loopback (a test CA the workers
trust). A client submits the groups at a steady rate, each with a ``callbackUrl`` and an
``idempotencyKey``; some keys by two racing clients. Every client retries a failed POST
(5xx, connection error, timeout) with the same key and body until it is accepted.
Meanwhile a worker is SIGKILLed every few seconds and restarted, the API once, the
Temporal dev server once (restarted on the same port and database file after a few
seconds down), and the receiver answers 503 for a moment. Then the run waits for the
drain: every accepted group terminal by GET and every job's webhook received.

Checked after the drain (any failure: exit status 1, with a diagnosis naming the group,
the job, its GET bodies, the webhooks it got, and the components' log lines):

- every key was accepted, and every 202 for one key carried one group id and one set of
  job ids, which GET returns too (a final replay of every key as well);
- every accepted job is terminal, completed, and its output has the source's structure;
- every job got at least one webhook answered 2xx, all with one ``webhook-id`` and a valid
  signature, of one event type that agrees with the job's status;
- no job has two terminal states: one webhook type per job, one terminal event per job in
  the group's event log (its SSE replay), never seen going back from terminal;
- no component exited without being killed (it is restarted, and counted);
- no workflow execution failed, and none runs for a group or job never accepted.

Only loopback addresses are used; every loop is bounded in time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import trustme

from bench.common import machine, own_stack, write_section
from bench.progress import create_llm_engine, start_llm
from stack import Stack
from tests.receiver import Receiver, Reply

ROOT = Path(__file__).resolve().parent.parent

LOCALES = ["de", "fr", "es", "it", "ja", "ko", "pt-BR", "nl", "sv", "pl", "da", "fi"]
RECEIVER_HOST = "127.0.0.2"  # the one host the chaos stack's webhooks may reach
TERMINAL_GROUP = {"completed", "partial", "failed", "cancelled"}
TERMINAL_JOB = {"completed", "completed_with_warnings", "failed", "cancelled"}
SUCCEEDED = {"completed", "completed_with_warnings"}
WORKERS = ["worker", "worker-2"]  # the names Stack.start gives two worker processes
COMPONENTS = ["temporal", *WORKERS, "api"]


@dataclass
class Config:
    groups: int = 100
    locales: int = 5
    rate: float = 5.0  # groups submitted per second
    duplicates: float = 0.2  # share of keys submitted by two racing clients
    kill_every: float = 3.0  # seconds between worker SIGKILLs
    worker_down: float = 0.5  # seconds a killed worker stays down
    api_kill_at: float = 0.3  # share of the burst's planned length
    temporal_kill_at: float = 0.55
    temporal_down: float = 12.0  # seconds: longer than the Temporal client's retries (10 s)
    receiver_outage: float = 2.0  # seconds of 503s, from the 5th webhook after Temporal's restart
    drain_kills: int = 2  # worker kills once the burst is in and Temporal is back
    llm_latency: float = 0.5  # seconds per provider call (0: the built-in pseudo engine)
    post_timeout: float = 10.0  # one POST attempt
    accept_limit: float = 300.0  # a key not accepted after this long is reported
    drain_limit: float = 600.0  # safety net for the whole drain
    stall_limit: float = 60.0  # no progress at all this long after the last fault: stop
    # After a stall, wait this much longer to tell late jobs from lost ones (0: stop).
    late_limit: float = 240.0
    seed: int = 1

    @property
    def burst_seconds(self) -> float:
        return self.groups / self.rate


def stack_overrides(ca_file: Path) -> dict[str, str]:
    """Two workers, short timeouts (a killed worker's activities are retried within
    seconds), webhooks to the loopback receiver on a schedule of seconds."""
    return {
        "TOLK_WORKER_PROCESSES": "2",
        "TOLK_WORKER_GRACEFUL_SHUTDOWN_SECONDS": "2",
        "TOLK_TRANSLATE_HEARTBEAT_SECONDS": "3",
        "TOLK_TRANSLATE_INITIAL_INTERVAL_SECONDS": "0.5",
        "TOLK_WEBHOOKS_CA_FILE": str(ca_file),
        "TOLK_WEBHOOKS_ALLOWED_HOSTS": json.dumps([RECEIVER_HOST]),
        "TOLK_WEBHOOKS_RETRY_DELAYS_SECONDS": json.dumps([1, 2, 3, 5, 5, 5, 5, 5]),
        "TOLK_WEBHOOKS_TIMEOUT_SECONDS": "3",
        "TOLK_SECRET_KEY": "chaos-secret-key",
    }


def document(i: int) -> dict[str, Any]:
    """Each group's own text (the same text twice would come from translation memory)."""
    return {
        "title": f"Chaos lesson {i}, {{name}}!",
        "steps": [
            {"heading": f"Step {n} of {i}", "body": f"<b>Do</b> thing {n}"} for n in range(5)
        ],
        "meta": {"id": i, "draft": False},
    }


def parse_time(text: str | None) -> float | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() if text else None


# --- what the run observed -----------------------------------------------------------------


@dataclass
class Attempt:
    key: str
    lane: int
    at: float  # seconds since the burst began
    seconds: float
    outcome: str  # HTTP status, or the exception's name
    group_id: str | None = None
    job_ids: tuple[str, ...] = ()
    replayed: bool = False


@dataclass
class Receipt:
    at: float  # time.time()
    job_id: str | None
    group_id: str | None
    type: str | None
    status: str | None
    webhook_id: str | None
    reply: int  # what the receiver answered
    signature_ok: bool


@dataclass
class Observed:
    t0: float = 0.0  # time.monotonic() when the burst began
    wall0: float = 0.0  # time.time() at the same moment
    keys: dict[str, int] = field(default_factory=dict)  # key -> group index
    attempts: list[Attempt] = field(default_factory=list)
    gave_up: dict[str, str] = field(default_factory=dict)  # key -> last outcome
    key_groups: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    key_jobs: dict[str, set[tuple[str, ...]]] = field(default_factory=lambda: defaultdict(set))
    job_group: dict[str, str] = field(default_factory=dict)  # from the 202s
    group_key: dict[str, str] = field(default_factory=dict)
    history: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    last_get: dict[str, Any] = field(default_factory=dict)  # group id -> last GET body
    terminal_groups: set[str] = field(default_factory=set)
    receipts: list[Receipt] = field(default_factory=list)
    burst_seconds: float = float("nan")
    drained_at: float | None = None  # time.monotonic()
    stop_reason: str = ""
    done_at: dict[str, float] = field(default_factory=dict)  # job -> group terminal + hook
    stalled_at: float | None = None  # time.monotonic() when nothing had moved for a while
    stalled: dict[str, str] = field(default_factory=dict)  # job -> what it lacked then

    def accepted_jobs(self) -> set[str]:
        return set(self.job_group)

    def delivered_jobs(self) -> set[str]:
        return {r.job_id for r in self.receipts if r.job_id and 200 <= r.reply < 300}


@dataclass
class Fault:
    at: float  # seconds since the burst began
    wall: float
    what: str


@dataclass
class Faults:
    log: list[Fault] = field(default_factory=list)
    exits: list[str] = field(default_factory=list)  # unexpected exits, with their evidence
    worker_kills: int = 0
    api_kills: int = 0
    temporal_kills: int = 0
    last_fault: float | None = None  # time.monotonic() of the last restart
    temporal_ready_wall: float | None = None
    temporal_restart_seconds: float = float("nan")
    outages: list[list[float]] = field(default_factory=list)  # receiver 503 [start, end)


@dataclass
class Result:
    figures: dict[str, Any]
    violations: dict[str, list[str]]  # invariant -> subjects with evidence
    diagnosis: str
    root: Path

    @property
    def ok(self) -> bool:
        return not any(self.violations.values())


# --- the client: submit with retries, then watch the drain --------------------------------


class Client:
    """Runs in a thread of its own with its own event loop, so the main thread can kill
    and spawn processes (children die with the thread that spawned them)."""

    def __init__(
        self,
        stack: Stack,
        key: str,
        config: Config,
        receiver: Receiver,
        faults: Faults,
        engine_id: str | None,
        secret: str,
    ) -> None:
        self.stack, self.api_key, self.config = stack, key, config
        self.receiver, self.faults, self.engine_id = receiver, faults, engine_id
        self.secret = secret
        self.seen = Observed()
        self.run_id = uuid.uuid4().hex[:8]
        self.burst_done = threading.Event()
        self.faults_over = threading.Event()
        self.finished = threading.Event()
        self.error: BaseException | None = None
        self._read = 0  # receipts of the receiver processed so far

    def body(self, i: int) -> dict[str, Any]:
        body: dict[str, Any] = {
            "sourceLocale": "en",
            "targetLocales": LOCALES[: self.config.locales],
            "data": document(i),
            "callbackUrl": self.receiver.url,
            "idempotencyKey": f"chaos-{self.run_id}-{i}",
        }
        if self.engine_id:
            body["engineId"] = self.engine_id
        return body

    def thread_main(self) -> None:
        try:
            asyncio.run(self.run())
        except BaseException as err:  # reported by the main thread
            self.error = err
        finally:
            self.finished.set()

    async def run(self) -> None:
        seen, config = self.seen, self.config
        rng = random.Random(config.seed)
        lanes = [(i, 0) for i in range(config.groups)]
        lanes += [(i, 1) for i in range(config.groups) if rng.random() < config.duplicates]
        limits = httpx.Limits(max_connections=64)
        async with httpx.AsyncClient(
            base_url=self.stack.api_url,
            headers={"X-API-Key": self.api_key},
            timeout=config.post_timeout,
            limits=limits,
        ) as http:
            seen.t0, seen.wall0 = time.monotonic(), time.time()
            watcher = asyncio.create_task(self.watch(http))
            await asyncio.gather(*(self.submit(http, i, lane) for i, lane in lanes))
            seen.burst_seconds = time.monotonic() - seen.t0
            self.burst_done.set()
            await watcher

    async def submit(self, http: httpx.AsyncClient, i: int, lane: int) -> None:
        """POST until a 202, with the same key and body every time."""
        seen, config = self.seen, self.config
        await asyncio.sleep(max(0.0, seen.t0 + i / config.rate - time.monotonic()))
        body = self.body(i)
        key = body["idempotencyKey"]
        seen.keys[key] = i
        deadline = time.monotonic() + config.accept_limit
        backoff = 0.25
        outcome = "never tried"
        while time.monotonic() < deadline:
            began = time.monotonic()
            wait = backoff
            resp: httpx.Response | None = None
            try:
                resp = await http.post("/jobs/localization", json=body)
                outcome = str(resp.status_code)
            except httpx.TransportError as err:  # connection refused or reset, timeouts
                outcome = type(err).__name__
            attempt = Attempt(key, lane, began - seen.t0, time.monotonic() - began, outcome)
            seen.attempts.append(attempt)
            if resp is not None and resp.status_code == 202:
                got = resp.json()
                attempt.group_id = got["groupId"]
                attempt.job_ids = tuple(sorted(job["id"] for job in got["jobs"]))
                attempt.replayed = resp.headers.get("idempotent-replayed") == "true"
                self.accept(key, attempt)
                return
            if resp is not None and resp.status_code < 500 and resp.status_code != 429:
                seen.gave_up[key] = f"{outcome}: {resp.text[:300]}"
                return  # a 4xx other than 429 is an answer, not an outage
            if resp is not None:
                with contextlib.suppress(ValueError):
                    wait = max(wait, min(2.0, float(resp.headers.get("retry-after", 0))))
            await asyncio.sleep(wait)
            backoff = min(2.0, backoff * 2)
        seen.gave_up[key] = f"not accepted within {config.accept_limit:.0f} s: last {outcome}"

    def accept(self, key: str, attempt: Attempt) -> None:
        seen = self.seen
        assert attempt.group_id is not None
        seen.key_groups[key].add(attempt.group_id)
        seen.key_jobs[key].add(attempt.job_ids)
        seen.group_key[attempt.group_id] = key
        for job_id in attempt.job_ids:
            seen.job_group[job_id] = attempt.group_id

    def read_receipts(self) -> None:
        """Classify the receiver's new receipts (the reply each got, from the outage
        windows) and check their signatures now, within the 5 minutes' tolerance."""
        from standardwebhooks import Webhook

        verifier = Webhook(self.secret)
        with self.receiver._lock:
            new = self.receiver.received[self._read :]
            self._read += len(new)
        for got in new:
            reply = 200
            for start, end in self.faults.outages:
                if start <= got.at < end:
                    reply = 503
            try:
                event = json.loads(got.body)
            except ValueError:
                event = {}
            try:
                verifier.verify(got.body, got.headers)
                signature_ok = True
            except Exception:
                signature_ok = False
            self.seen.receipts.append(
                Receipt(
                    at=time.time() - (time.monotonic() - got.at),
                    job_id=event.get("jobId"),
                    group_id=event.get("groupId"),
                    type=event.get("type"),
                    status=event.get("status"),
                    webhook_id=got.headers.get("webhook-id"),
                    reply=reply,
                    signature_ok=signature_ok,
                )
            )

    async def poll_group(self, http: httpx.AsyncClient, group_id: str) -> None:
        try:
            resp = await http.get(f"/jobs/localization/groups/{group_id}")
        except httpx.TransportError:
            return
        if resp.status_code != 200:
            self.seen.last_get[group_id] = {"httpStatus": resp.status_code, "body": resp.text}
            return
        body = resp.json()
        self.seen.last_get[group_id] = body
        for job in body["jobs"]:
            history = self.seen.history[job["id"]]
            if not history or history[-1] != job["status"]:
                history.append(job["status"])
        if body["status"] in TERMINAL_GROUP:
            self.seen.terminal_groups.add(group_id)

    async def watch(self, http: httpx.AsyncClient) -> None:
        """Until the drain: every accepted group terminal by GET, every accepted job's
        webhook answered 2xx. Stops early when nothing moves for ``stall_limit`` after the
        last fault, and at ``drain_limit`` (safety nets, not speed checks)."""
        seen, config = self.seen, self.config
        limit = time.monotonic() + config.burst_seconds + config.accept_limit + config.drain_limit
        progress: tuple[int, ...] = ()
        moved = time.monotonic()
        faults_were_over = False
        gate = asyncio.Semaphore(8)

        async def poll(group_id: str) -> None:
            async with gate:
                await self.poll_group(http, group_id)

        while True:
            self.read_receipts()
            open_groups = sorted(set(seen.group_key) - seen.terminal_groups)
            await asyncio.gather(*(poll(g) for g in open_groups))
            now = time.monotonic()
            delivered = seen.delivered_jobs()
            for job_id, group_id in seen.job_group.items():
                if job_id not in seen.done_at and group_id in seen.terminal_groups:
                    if job_id in delivered:
                        seen.done_at[job_id] = now
            # Drained only once the faults are over: every planned fault happens, and the
            # drain is measured from the last one.
            if (
                self.faults_over.is_set()
                and self.burst_done.is_set()
                and not open_groups
                and seen.accepted_jobs() <= delivered
            ):
                seen.drained_at = now
                seen.stop_reason += "; then drained" if seen.stop_reason else "drained"
                return
            state = (len(seen.group_key), len(seen.terminal_groups), len(seen.receipts))
            if state != progress or not faults_were_over:  # quiet counts from the last fault
                progress, moved = state, now
            faults_were_over = self.faults_over.is_set()
            if (
                seen.stalled_at is None
                and self.faults_over.is_set()
                and now - moved > config.stall_limit
            ):
                seen.stalled_at = now
                seen.stop_reason = f"stalled: nothing moved for {config.stall_limit:.0f} s"
                for job_id, group_id in seen.job_group.items():
                    if job_id not in seen.done_at:
                        seen.stalled[job_id] = (
                            "no webhook answered 2xx"
                            if group_id in seen.terminal_groups
                            else f"group {seen.last_get.get(group_id, {}).get('status')} by GET"
                        )
                if config.late_limit <= 0:
                    return
            if seen.stalled_at is not None and now > seen.stalled_at + config.late_limit:
                seen.stop_reason += f"; not drained {config.late_limit:.0f} s later either"
                return
            if now > limit:
                seen.stop_reason = f"not drained within the {config.drain_limit:.0f} s limit"
                return
            await asyncio.sleep(0.5)


# --- the faults: run in the main thread, which owns the processes --------------------------


class Chaos:
    def __init__(self, stack: Stack, config: Config, client: Client, receiver: Receiver) -> None:
        self.stack, self.config, self.client, self.receiver = stack, config, client, receiver
        self.faults = client.faults
        self.restart_at: dict[str, float] = {}  # components that exited on their own
        self.temporal_down = False
        self.temporal_back = float("inf")  # time.monotonic() when it answered again

    def note(self, what: str) -> None:
        at = time.monotonic() - self.client.seen.t0
        self.faults.log.append(Fault(at, time.time(), what))
        print(f"[chaos {at:6.1f} s] {what}", file=sys.stderr, flush=True)

    def restarted(self) -> None:
        self.faults.last_fault = time.monotonic()

    def kill(self, name: str) -> None:
        self.stack.kill(name, signal.SIGKILL)
        self.note(f"SIGKILL {name}")

    def start(self, name: str) -> bool:
        """(Re)start a component; False when it exited while starting (retried later)."""
        try:
            if name == "temporal":
                began = time.monotonic()
                self.stack.start_temporal()
                self.faults.temporal_restart_seconds = time.monotonic() - began
                self.faults.temporal_ready_wall = time.time()
                self.temporal_back = time.monotonic()
                self.temporal_down = False
            elif name == "api":
                self.stack.start_api()
            else:
                self.stack.start_worker(name)
        except RuntimeError as err:
            self.stack.procs.pop(name, None)
            self.faults.exits.append(
                f"{name} failed to restart: {err}\n{log_tail(self.stack, name)}"
            )
            self.note(f"{name} failed to restart: {err}")
            self.restart_at[name] = time.monotonic() + 1.0
            return False
        self.note(f"{name} started")
        self.restarted()
        return True

    def supervise(self) -> None:
        """A component that exited without being killed is a finding: record it with its
        log's last lines, and restart it after a second (after Temporal, if it is down)."""
        now = time.monotonic()
        for name, proc in list(self.stack.procs.items()):
            if proc.poll() is not None:
                self.stack.procs.pop(name)
                at = now - self.client.seen.t0
                self.faults.exits.append(
                    f"{name} exited on its own with code {proc.returncode} at {at:.1f} s"
                    f"{' (Temporal down)' if self.temporal_down else ''}\n"
                    + log_tail(self.stack, name)
                )
                self.note(f"{name} EXITED on its own (code {proc.returncode})")
                self.restart_at[name] = now + 1.0
        for name, when in list(self.restart_at.items()):
            if now >= when and (name == "temporal" or not self.temporal_down):
                del self.restart_at[name]
                self.start(name)

    def run(self) -> None:
        config, faults, client = self.config, self.faults, self.client
        while not client.seen.t0:
            time.sleep(0.01)
        t0 = client.seen.t0
        burst = config.burst_seconds
        api_at = t0 + config.api_kill_at * burst
        temporal_at = t0 + config.temporal_kill_at * burst
        next_kill = t0 + config.kill_every
        temporal_back_at = 0.0
        api_done = temporal_done = outage_done = False
        outage: threading.Thread | None = None
        drain_kills = 0
        victim = 0
        # The faults stop when all are done; at the latest a while after the burst should
        # have ended, whether or not every key was accepted by then.
        hard_stop = t0 + burst * 3 + config.accept_limit
        while not client.finished.is_set():
            self.supervise()
            now = time.monotonic()
            if not api_done and now >= api_at and not self.temporal_down:
                if "api" in self.stack.procs:
                    self.kill("api")
                    faults.api_kills += 1
                    self.start("api")
                api_done = True
            if not temporal_done and now >= temporal_at and not self.temporal_down:
                self.kill("temporal")
                faults.temporal_kills += 1
                self.temporal_down = True
                temporal_back_at = now + config.temporal_down
            if self.temporal_down and temporal_back_at and now >= temporal_back_at:
                temporal_back_at, temporal_done = 0.0, True
                self.start("temporal")  # if it fails, supervise() tries again
                # The next worker kill a while after, so the resume is Temporal's own.
                next_kill = time.monotonic() + config.kill_every
            # The receiver fails once deliveries flow again (the backlog Temporal resumes):
            # at the fifth webhook after the restart, or 20 s after it at the latest.
            if not outage_done and (
                self.webhooks_since(self.temporal_back) >= 5 or now >= self.temporal_back + 20
            ):
                outage_done = True
                outage = threading.Thread(target=self.receiver_outage, daemon=True)
                outage.start()
            everything = (
                api_done
                and temporal_done
                and not self.temporal_down
                and outage_done
                and client.burst_done.is_set()
            )
            if (everything and drain_kills >= config.drain_kills) or now > hard_stop:
                break
            if now >= next_kill and not self.temporal_down:
                name = WORKERS[victim % len(WORKERS)]
                victim += 1
                if name in self.stack.procs:
                    self.kill(name)
                    faults.worker_kills += 1
                    time.sleep(config.worker_down)
                    self.start(name)
                    drain_kills += everything
                next_kill = time.monotonic() + config.kill_every
            time.sleep(0.05)
        if outage is not None:
            outage.join()
        self.note("faults over")
        client.faults_over.set()
        while not client.finished.wait(0.2):
            self.supervise()

    def webhooks_since(self, moment: float) -> int:
        with self.receiver._lock:
            return sum(1 for got in self.receiver.received[-5:] if got.at >= moment)

    def receiver_outage(self) -> None:
        """The receiver answers 503 for a moment: deliveries are retried, same id. The
        handler stamps a receipt and picks its reply under the receiver's lock, so a
        receipt's time tells which reply it got."""
        receiver, window = self.receiver, [0.0, float("inf")]
        with receiver._lock:
            receiver.default = Reply(503)
            window[0] = time.monotonic()
            self.faults.outages.append(window)
        self.note(f"receiver answers 503 for {self.config.receiver_outage:g} s")
        time.sleep(self.config.receiver_outage)
        with receiver._lock:
            receiver.default = Reply(200)
            window[1] = time.monotonic()
        self.note("receiver answers 200 again")


def log_tail(stack: Stack, name: str, lines: int = 15) -> str:
    if stack.log_dir is None:
        return ""
    path = stack.log_dir / f"{name}.log"
    if not path.exists():
        return f"    ({path.name}: no log)"
    tail = path.read_text(errors="replace").splitlines()[-lines:]
    return "\n".join(f"    {name}.log: {line[:400]}" for line in tail)


def log_mentions(stack: Stack, needles: set[str], limit: int = 12) -> list[str]:
    found: list[str] = []
    if stack.log_dir is None or not needles:
        return found
    for name in COMPONENTS:
        path = stack.log_dir / f"{name}.log"
        if not path.exists():
            continue
        for line in path.read_text(errors="replace").splitlines():
            if any(needle in line for needle in needles):
                found.append(f"    {name}.log: {line[:400]}")
                if len(found) >= limit:
                    return found
    return found


# --- after the drain: check every invariant ------------------------------------------------


@dataclass
class Checked:
    groups: dict[str, Any] = field(default_factory=dict)  # id -> GET body (or error)
    jobs: dict[str, Any] = field(default_factory=dict)  # id -> GET body (or error)
    events: dict[str, list[tuple[str, dict[str, Any]]]] = field(default_factory=dict)
    replays: dict[str, Attempt] = field(default_factory=dict)
    # id, type, status, "start to close" in seconds since the burst began
    workflows: list[tuple[str, str, str, str]] = field(default_factory=list)
    db_groups: dict[str, tuple[str, Any]] = field(default_factory=dict)
    db_jobs: dict[str, tuple[str, str, int, str | None, str | None]] = field(default_factory=dict)
    db_deliveries: dict[str, list[tuple[Any, ...]]] = field(default_factory=dict)


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
                        got = resp.json()
                        attempt.group_id = got["groupId"]
                        attempt.job_ids = tuple(sorted(j["id"] for j in got["jobs"]))
                        attempt.replayed = resp.headers.get("idempotent-replayed") == "true"
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


def check(config: Config, client: Client, checked: Checked, faults: Faults) -> dict[str, list[str]]:
    """Every invariant, each with the subjects that break it (empty: it holds)."""
    seen = client.seen
    v: dict[str, list[str]] = {
        name: []
        for name in (
            "keys not accepted",
            "keys with more than one group",
            "jobs lost",
            "jobs late (not done when nothing had moved for a while)",
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
    }
    v["keys not accepted"] = [f"{k}: {why}" for k, why in sorted(seen.gave_up.items())]
    last = faults.last_fault or seen.t0
    for job_id, lacked in sorted(seen.stalled.items()):
        done = seen.done_at.get(job_id)
        v["jobs late (not done when nothing had moved for a while)"].append(
            f"{job_id} (group {seen.job_group[job_id]}): {lacked} at the stall, "
            f"{config.stall_limit:.0f} s without progress; "
            + (
                f"done {done - last:.0f} s after the last fault"
                if done is not None
                else f"still not done {config.late_limit:.0f} s later"
            )
        )
    source_keys = {i: sorted(document(i)) for i in range(config.groups)}

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

    receipts: dict[str, list[Receipt]] = defaultdict(list)
    for r in seen.receipts:
        receipts[r.job_id or "?"].append(r)
        if not r.signature_ok:
            v["webhooks with a bad signature"].append(f"{r.job_id} {r.webhook_id}")
        if r.job_id not in seen.job_group:
            v["webhooks for jobs never accepted"].append(
                f"{r.job_id} (group {r.group_id}, {r.type}, {r.webhook_id})"
            )

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
        if not any(200 <= r.reply < 300 for r in mine):
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
                f"replay {[(k, d.get('jobId') or d.get('error')) for k, d in events]}"
            )
        recorded = (checked.db_groups.get(group_id) or ("", None))[1] or []
        in_db = [st for entry_job, st in recorded if entry_job == job_id]
        if len(in_db) > 1:
            two.append(f"jobgroup.event_log has {in_db}")
        if two:
            v["jobs with two terminal states"].append(
                f"{job_id} (group {group_id}): " + "; ".join(two)
            )

    for group_id, events in sorted(checked.events.items()):
        kinds = [kind for kind, _ in events]
        if checked.groups.get(group_id, {}).get("status") not in TERMINAL_GROUP:
            continue  # a group that is not finished: its jobs are counted as lost
        if kinds.count("group.completed") != 1 or kinds[-1:] != ["group.completed"]:
            v["event logs incomplete"].append(
                f"group {group_id}: terminal by GET, SSE replay {kinds}, not one "
                "group.completed last"
            )

    v["components that exited on their own"] = list(faults.exits)
    accepted_ids = set(seen.group_key) | set(seen.job_group)
    for wf_id, wf_type, wf_status, _ in checked.workflows:
        if wf_status in {"FAILED", "TERMINATED", "TIMED_OUT"}:
            v["workflow executions failed or orphaned"].append(f"{wf_type} {wf_id}: {wf_status}")
        elif wf_type in {"GroupWorkflow", "LocaleJobWorkflow"} and wf_id not in accepted_ids:
            v["workflow executions failed or orphaned"].append(
                f"{wf_type} {wf_id} ({wf_status}): not a group or job any 202 named"
            )
    return v


def short(value: Any, limit: int = 300) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, str) else value
    return text if len(text) <= limit else text[:limit] + "..."


def figures_of(
    config: Config, client: Client, checked: Checked, faults: Faults, v: dict[str, list[str]]
) -> dict[str, Any]:
    seen = client.seen
    accepted = seen.accepted_jobs()
    completed = [j for j in accepted if checked.jobs.get(j, {}).get("status") in SUCCEEDED]
    per_job = Counter(r.job_id for r in seen.receipts if 200 <= r.reply < 300)
    delivered = [per_job.get(j, 0) for j in accepted]
    ids_per_job: dict[str | None, set[str | None]] = defaultdict(set)
    for r in seen.receipts:
        ids_per_job[r.job_id].add(r.webhook_id)
    completions = [parse_time(checked.jobs.get(j, {}).get("completedAt")) for j in accepted]
    ready = faults.temporal_ready_wall
    after = sorted(t for t in completions if t is not None and ready and t >= ready)
    hooks_after = sorted(r.at for r in seen.receipts if ready and r.at >= ready)
    outcomes = Counter(a.outcome for a in seen.attempts)
    drain = (
        seen.drained_at - faults.last_fault
        if seen.drained_at is not None and faults.last_fault is not None
        else float("nan")
    )
    return {
        "groups": config.groups,
        "locales": config.locales,
        "keys submitted twice": sum(1 for a in seen.attempts if a.lane == 1 and a.group_id),
        "groups accepted": len(set(seen.group_key)),
        "jobs accepted": len(accepted),
        "jobs completed": len(completed),
        "jobs lost": len(v["jobs lost"]),
        "jobs late": len(v["jobs late (not done when nothing had moved for a while)"]),
        "jobs failed or cancelled": len(v["jobs not completed"]),
        "keys not accepted": len(v["keys not accepted"]),
        "keys with exactly one group": len(seen.key_groups)
        - len(v["keys with more than one group"]),
        "POST attempts": len(seen.attempts),
        "POST outcomes": dict(sorted(outcomes.items())),
        "replayed 202s": sum(a.replayed for a in seen.attempts),
        "webhooks received": len(seen.receipts),
        "webhooks answered 503 (receiver outage)": sum(r.reply == 503 for r in seen.receipts),
        "webhooks delivered per job (min/max)": (
            min(delivered, default=0),
            max(delivered, default=0),
        ),
        "webhook-ids per job (max)": max((len(ids_per_job[j]) for j in accepted), default=0),
        "jobs with two terminal states": len(v["jobs with two terminal states"]),
        "jobs translated more than once": sum(
            1 for j in accepted if (checked.jobs.get(j, {}).get("attempts") or 0) > 1
        ),
        "worker / API / Temporal SIGKILLs": (
            faults.worker_kills,
            faults.api_kills,
            faults.temporal_kills,
        ),
        "components that exited on their own": len(faults.exits),
        "burst (s)": seen.burst_seconds,
        "drain after the last fault (s)": drain,
        "Temporal restart, spawn to ready (s)": faults.temporal_restart_seconds,
        "Temporal ready to first job completed (s)": after[0] - ready if after and ready else None,
        "Temporal ready to first webhook (s)": hooks_after[0] - ready
        if hooks_after and ready
        else None,
        "stop": seen.stop_reason,
    }


def diagnose(
    stack: Stack, client: Client, checked: Checked, faults: Faults, v: dict[str, list[str]]
) -> str:
    """Evidence for every broken invariant: the subjects, then in full the first groups
    involved (POSTs, GET bodies, job statuses, webhooks, deliveries, log lines), then the
    last lines of every component's log."""
    seen = client.seen
    out: list[str] = []
    groups: list[str] = []
    for name, subjects in v.items():
        if not subjects:
            continue
        out.append(f"INVARIANT BROKEN: {name}: {len(subjects)}")
        for subject in subjects[:20]:
            out.append("  " + subject.replace("\n", "\n  "))
        for subject in subjects:
            for word in subject.replace("(", " ").replace(")", " ").replace(":", " ").split():
                gid = word if word.startswith("ljg_") else seen.job_group.get(word)
                if gid and gid not in groups:
                    groups.append(gid)
                key_gid = next(iter(seen.key_groups.get(word, ())), None)
                if key_gid and key_gid not in groups:
                    groups.append(key_gid)
        if len(subjects) > 20:
            out.append(f"  ... and {len(subjects) - 20} more")
    if not out:
        return ""
    out.append("")
    began = datetime.fromtimestamp(seen.wall0, UTC).strftime("%H:%M:%S.%f")[:-3]
    out.append(f"Timeline of faults (s since the burst began, at {began} UTC):")
    out += [f"  {f.at:6.1f} s  {f.what}" for f in faults.log]
    out += ["", f"Groups involved ({len(groups)}): GET status, job statuses, first 202, workflow:"]
    executions = {w[0]: w for w in checked.workflows}
    for gid in groups[:60]:
        got = checked.groups.get(gid, {})
        statuses = Counter(j["status"] for j in got.get("jobs", []))
        key = seen.group_key.get(gid, "")
        first = min((a.at for a in seen.attempts if a.key == key and a.group_id), default=None)
        wf = executions.get(gid)
        replay = checked.replays.get(key)
        out.append(
            f"  {gid}: {got.get('status') or short(got, 80)}; {dict(statuses)}; 202 at "
            f"{fmt(first)} s; final replay at {fmt(replay.at if replay else None)} s; "
            f"{'workflow ' + wf[2] + ', ' + wf[3] if wf else 'no workflow execution'}"
        )
    for gid in groups[:5]:
        key = seen.group_key.get(gid, "?")
        jobs = sorted({j for j, g in seen.job_group.items() if g == gid})
        jobs += sorted({j["id"] for j in checked.groups.get(gid, {}).get("jobs", [])} - set(jobs))
        out += ["", f"GROUP {gid} (key {key}, group index {seen.keys.get(key)})"]
        out.append("  POST attempts (s since burst began, duration, outcome, group, replayed):")
        for a in [a for a in seen.attempts if a.key == key] + [
            a for k, a in checked.replays.items() if k == key
        ]:
            out.append(
                f"    lane {a.lane} at {a.at:6.1f} s {a.seconds:5.2f} s {a.outcome} "
                f"{a.group_id} {'replayed' if a.replayed else ''} {a.job_ids}"
            )
        out.append(f"  GET group: {short(checked.groups.get(gid), 1500)}")
        out.append(f"  last GET during the drain: {short(seen.last_get.get(gid), 600)}")
        out.append(
            "  event stream (SSE from event 0): "
            + str([(k, d.get("jobId") or d.get("error")) for k, d in checked.events.get(gid, [])])
        )
        out.append(f"  database row: {checked.db_groups.get(gid)}")
        for job_id in jobs:
            got = checked.jobs.get(job_id, {})
            out.append(
                f"  job {job_id}: {got.get('targetLocale')} {got.get('status') or short(got)} "
                f"attempts {got.get('attempts')} error {got.get('error')!r} "
                f"completedAt {got.get('completedAt')} output "
                f"{'yes' if got.get('outputData') else 'no'}; database row "
                f"{checked.db_jobs.get(job_id)}; statuses seen {seen.history.get(job_id)}"
            )
            for r in [r for r in seen.receipts if r.job_id == job_id]:
                out.append(
                    f"    webhook at {r.at - seen.wall0:6.1f} s {r.type} {r.status} "
                    f"{r.webhook_id} reply {r.reply} signature {'ok' if r.signature_ok else 'BAD'}"
                )
            for row in checked.db_deliveries.get(job_id, []):
                out.append(f"    delivery record {row}")
        wfs = [w for w in checked.workflows if w[0] in {gid, *jobs}]
        out.append(f"  Temporal executions (id, type, status, s since the burst began): {wfs}")
        out += log_mentions(stack, {gid, *jobs})
    others = [w for w in checked.workflows if w[1] not in {"GroupWorkflow", "LocaleJobWorkflow"}]
    out += ["", f"Other Temporal executions: {others}"]
    out += ["", f"Component logs ({stack.log_dir}), last lines:"]
    for name in COMPONENTS:
        out.append(log_tail(stack, name, 12))
    return "\n".join(out)


# --- one run ----------------------------------------------------------------------------


def run_chaos(config: Config, root: Path) -> Result:
    """One chaos run on a fresh stack in ``root`` (logs stay in root/logs)."""
    root.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    ca_file = root / "webhook-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    overrides = stack_overrides(ca_file)
    llm: subprocess.Popen[str] | None = None
    stack: Stack | None = None
    with Receiver(ca, host=RECEIVER_HOST) as receiver:
        try:
            if config.llm_latency > 0:
                llm, base_url = start_llm(config.llm_latency)
                overrides["TOLK_LLM_PROVIDERS"] = json.dumps(
                    {"bench": {"type": "openai", "base_url": base_url, "api_key": "test-key"}}
                )
                overrides["TOLK_LLM_TIMEOUT_SECONDS"] = str(max(30.0, 4 * config.llm_latency))
            stack, key = own_stack(root, **overrides)
            engine_id = create_llm_engine(stack.api_url, key) if llm is not None else None
            settings = httpx.get(
                f"{stack.api_url}/webhooks/settings", headers={"X-API-Key": key}, timeout=30
            )
            settings.raise_for_status()
            faults = Faults()
            client = Client(
                stack, key, config, receiver, faults, engine_id, settings.json()["secret"]
            )
            thread = threading.Thread(target=client.thread_main, name="chaos-client", daemon=True)
            thread.start()
            Chaos(stack, config, client, receiver).run()
            thread.join()
            if client.error is not None:
                raise client.error
            client.read_receipts()
            checked = Checked()
            asyncio.run(collect(stack, key, client, checked))
            read_database(stack, checked)
            violations = check(config, client, checked, faults)
            if client.seen.drained_at is None:
                violations.setdefault("drain", []).append(client.seen.stop_reason)
            figures = figures_of(config, client, checked, faults, violations)
            diagnosis = diagnose(stack, client, checked, faults, violations)
            return Result(figures, violations, diagnosis, root)
        finally:
            if stack is not None:
                stack.stop()
            if llm is not None:
                llm.communicate(timeout=10)  # closes its stdin: it stops


def print_figures(result: Result) -> None:
    for name, value in result.figures.items():
        print(f"  {name:45} {fmt(value)}")
    for name, subjects in result.violations.items():
        mark = "ok" if not subjects else f"BROKEN ({len(subjects)})"
        print(f"  invariant: {name:56} {mark}")


def fmt(value: Any) -> str:
    if isinstance(value, float):
        return "n/a" if value != value else f"{value:.1f}"
    if isinstance(value, tuple):
        return " / ".join(fmt(x) for x in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}: {n}" for k, n in value.items())
    return "n/a" if value is None else str(value)


SHOWN = [
    "groups accepted",
    "jobs accepted",
    "jobs completed",
    "jobs lost",
    "jobs late",
    "jobs failed or cancelled",
    "keys not accepted",
    "keys with exactly one group",
    "keys submitted twice",
    "POST attempts",
    "POST outcomes",
    "replayed 202s",
    "webhooks received",
    "webhooks answered 503 (receiver outage)",
    "webhooks delivered per job (min/max)",
    "webhook-ids per job (max)",
    "jobs with two terminal states",
    "jobs translated more than once",
    "worker / API / Temporal SIGKILLs",
    "components that exited on their own",
    "burst (s)",
    "drain after the last fault (s)",
    "Temporal restart, spawn to ready (s)",
    "Temporal ready to first job completed (s)",
    "Temporal ready to first webhook (s)",
]


def revision() -> str:
    """The commit measured, and whether the tree had changes beyond it."""
    head = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    ).stdout.strip()
    return f"{head or 'unknown'}{' with uncommitted changes' if dirty else ''}"


def report(results: list[Result], config: Config, command: str) -> str:
    runs = len(results)
    lines = [
        "## Chaos: nothing accepted is lost (`bench/chaos.py`)",
        "",
        f"`{command}` on {machine()}, code at {revision()}; each run on a fresh stack "
        "(dev server, two workers, API, "
        + (
            f"jobs through the LLM stand-in answering in {config.llm_latency:g} s ± half"
            if config.llm_latency
            else "jobs on the built-in pseudo engine"
        )
        + ", an HTTPS webhook receiver on loopback).",
        "",
        f"{config.groups} groups x {config.locales} locales at {config.rate:g} groups/s, "
        f"{config.duplicates:.0%} of the keys by two racing clients; every POST retried with "
        f"its key until a 202. Faults: a worker SIGKILLed every {config.kill_every:g} s and "
        f"restarted {config.worker_down:g} s later (through the burst and {config.drain_kills} "
        f"more after it), the API SIGKILLed and restarted once, the Temporal dev server "
        f"SIGKILLed once and restarted {config.temporal_down:g} s later on the same port and "
        f"database file, the receiver answering 503 for {config.receiver_outage:g} s from "
        "the fifth webhook after that restart.",
        "",
        "| figure | " + " | ".join(f"run {n + 1}" for n in range(runs)) + " |",
        "|---|" + "---|" * runs,
    ]
    for name in SHOWN:
        lines.append(f"| {name} | " + " | ".join(fmt(r.figures.get(name)) for r in results) + " |")
    lines.append(
        "| invariants broken | "
        + " | ".join(
            ", ".join(f"{k} ({len(s)})" for k, s in r.violations.items() if s) or "none"
            for r in results
        )
        + " |"
    )
    lines += [
        "",
        "Jobs lost: accepted (named in a 202) but not terminal, or completed without their "
        f"output. Jobs late: not done (group terminal, webhook answered) when nothing had "
        f"moved for {config.stall_limit:g} s; the run then waits up to {config.late_limit:g} s "
        "more to tell them from lost ones. Drain: from the last fault's restart until every "
        "group is terminal by GET and every job's webhook was answered 2xx. Resume: from the "
        "moment the restarted Temporal server answered until the first job's completedAt, "
        "and the first webhook, after it.",
    ]
    for n, result in enumerate(results):
        broken = {name: subjects for name, subjects in result.violations.items() if subjects}
        if broken:
            lines += ["", f"Run {n + 1} broke (the first subject of each; the run prints all):"]
            for name, subjects in broken.items():
                first = subjects[0].split("\n", 1)[0]
                lines.append(f"- {name} ({len(subjects)}): `{short(first, 240)}`")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    defaults = Config()
    parser.add_argument("--groups", type=int, default=defaults.groups)
    parser.add_argument("--locales", type=int, default=defaults.locales, choices=range(1, 13))
    parser.add_argument("--rate", type=float, default=defaults.rate, help="groups per second")
    parser.add_argument("--kill-every", type=float, default=defaults.kill_every)
    parser.add_argument("--temporal-down", type=float, default=defaults.temporal_down)
    parser.add_argument(
        "--llm-latency",
        type=float,
        default=defaults.llm_latency,
        help="seconds per call of the LLM stand-in (0: the built-in pseudo engine)",
    )
    parser.add_argument(
        "--stall-limit",
        type=float,
        default=defaults.stall_limit,
        help="seconds without any progress, after the last fault, that count as a stall",
    )
    parser.add_argument(
        "--late-limit",
        type=float,
        default=defaults.late_limit,
        help="after a stall, seconds more to wait to tell late jobs from lost ones",
    )
    parser.add_argument("--runs", type=int, default=1, help="whole runs, each on a fresh stack")
    parser.add_argument("--keep", action="store_true", help="keep the temp dirs (logs, data)")
    parser.add_argument("--write", type=Path, help="update this Markdown file's section")
    args = parser.parse_args()
    config = Config(
        groups=args.groups,
        locales=args.locales,
        rate=args.rate,
        kill_every=args.kill_every,
        temporal_down=args.temporal_down,
        llm_latency=args.llm_latency,
        stall_limit=args.stall_limit,
        late_limit=args.late_limit,
    )
    command = ("python -m bench.chaos " + " ".join(sys.argv[1:])).strip()
    results = []
    for n in range(args.runs):
        root = Path(tempfile.mkdtemp(prefix="tolk-chaos-"))
        result = run_chaos(config, root)
        results.append(result)
        print(f"run {n + 1} of {args.runs}: {'ok' if result.ok else 'INVARIANTS BROKEN'}")
        print_figures(result)
        if not result.ok:
            print(result.diagnosis)
        if result.ok and not args.keep:
            shutil.rmtree(root, ignore_errors=True)
        else:
            print(f"logs and data kept in {root}")
    section = report(results, config, command)
    print(section)
    if args.write:
        write_section(args.write, "chaos", section)
    sys.exit(0 if all(r.ok for r in results) else 1)


if __name__ == "__main__":
    main()
