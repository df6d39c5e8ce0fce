"""The load of a chaos run: the client that submits the burst, every POST retried with the
same key and body until a 202 (some keys by two racing clients), then watches the drain by
GET and through the webhook receiver until everything accepted is finished and delivered.
What it sees goes into :class:`~bench.chaos_records.Observed`."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import threading
import time
import uuid
from typing import Any

import httpx

from bench.chaos_config import LOCALES, TERMINAL_GROUP, Config, document
from bench.chaos_records import Attempt, Faults, Observed, Receipt
from stack import Stack
from tests.receiver import Receiver


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
                attempt.took(resp)
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
