"""``tolk watch`` and ``tolk pull``: land a run's finished jobs in their target files.

``watch`` follows every group of the run over its WebSocket (or Server-Sent Events) and writes
each locale the moment its job ends; a dropped connection is opened again, and the snapshot the
server sends first tells what ended meanwhile. ``pull`` asks once and writes every finished job.
Both only read the run file and the API, so they resume from any process or machine.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any

import httpx
import websockets
from websockets.exceptions import WebSocketException

from client.api import Api, ApiError, Unreachable
from client.config import BucketFile, Config
from client.lock import Lock
from client.progress import SUCCEEDED, TERMINAL, Display, Row
from client.runs import Run, RunGroup, RunJob, save_run
from client.sync import FileProblem, SourceFile, read_source, write_target

# Waits before connecting again to a group's stream after it dropped.
RECONNECT_WAITS = (0.2, 0.5, 1, 2, 5, 10)


@dataclass
class Outcome:
    job_id: str
    locale: str
    path: str
    status: str
    error: str | None = None
    warnings: int = 0
    written: bool = False
    problems: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "jobId": self.job_id,
            "locale": self.locale,
            "path": self.path,
            "status": self.status,
            "error": self.error,
            "warnings": self.warnings,
            "written": self.written,
            "unusableKeys": self.problems,
        }


class Lander:
    """Writes finished jobs of a run into their target files, each once, one file at a time."""

    def __init__(self, config: Config, lock: Lock, api: Api, run: Run) -> None:
        self.config, self.lock, self.api, self.run = config, lock, api, run
        self.outcomes: dict[str, Outcome] = {}
        self._write = asyncio.Lock()
        self._files = {(bf.bucket.index, bf.source): bf for bf in config.files(_locales(run))}

    def bucket_file(self, group: RunGroup) -> BucketFile:
        found = self._files.get((group.bucket, group.source))
        if found is None:
            raise FileProblem(f"{group.source}: no longer a bucket file of tolk.yaml")
        return found

    async def land(self, group: RunGroup, job: RunJob, status: str, display: Display) -> None:
        if job.job_id in self.outcomes or status not in TERMINAL:
            return
        outcome = Outcome(job.job_id, job.locale, job.path, status)
        self.outcomes[job.job_id] = outcome
        detail = ""
        if status in SUCCEEDED:
            answer = await self.api.job(job.job_id)
            outcome.warnings = len(answer.get("warnings") or [])
            async with self._write:
                source: SourceFile = read_source(self.config, self.bucket_file(group))
                if job.locale not in source.file.targets:
                    source.file.targets[job.locale] = job.path
                written = write_target(
                    self.config,
                    self.lock,
                    source,
                    job.locale,
                    answer.get("outputData") or {},
                    group.sent,
                    frozenset(group.plural_keys),
                )
                self.lock.save_if_changed()
            outcome.written = True
            outcome.problems = written.problems
            if written.problems:
                detail = f"{len(written.problems)} keys unusable, left stale"
        elif status == "failed":
            answer = await self.api.job(job.job_id)
            outcome.error = answer.get("error") or "failed"
            detail = outcome.error or ""
        display.job_ended(job.job_id, status, outcome.warnings, detail)

    def all_landed(self) -> bool:
        return all(j.job_id in self.outcomes for g in self.run.groups for j in g.jobs)

    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes.values() if o.status not in SUCCEEDED]


def _locales(run: Run) -> tuple[str, ...]:
    return tuple(sorted({j.locale for g in run.groups for j in g.jobs}))


def rows_for(run: Run) -> tuple[dict[str, Row], dict[str, str]]:
    """One row per locale, or per file x locale when the run has several files."""
    several = len({g.source for g in run.groups}) > 1
    rows: dict[str, Row] = {}
    job_rows: dict[str, str] = {}
    for group in run.groups:
        for job in group.jobs:
            key = f"{group.source}  {job.locale}" if several else job.locale
            rows.setdefault(key, Row(key)).jobs.add(job.job_id)
            job_rows[job.job_id] = key
    return rows, job_rows


async def _follow_group(lander: Lander, group: RunGroup, display: Display, transport: str) -> None:
    jobs = {j.job_id: j for j in group.jobs}
    failures = 0
    use = transport if transport != "auto" else "ws"
    while not all(j in lander.outcomes for j in jobs):
        try:
            async for message in lander.api.events(group.group_id, use):
                failures = 0
                kind = message.get("type")
                if kind == "snapshot":
                    for job_id, state in (message.get("snapshot", {}).get("jobs") or {}).items():
                        if job_id in jobs:
                            await lander.land(group, jobs[job_id], state.get("status"), display)
                elif kind in ("job.completed", "job.failed", "job.cancelled"):
                    job_id = message.get("jobId", "")
                    state = message.get("snapshot", {}).get("jobs", {}).get(job_id, {})
                    if job_id in jobs:
                        await lander.land(group, jobs[job_id], state.get("status"), display)
                elif kind == "group.completed":
                    break
        except ApiError as err:
            if err.status in (401, 403, 404):
                raise
            failures += 1
        except websockets.exceptions.InvalidStatus as err:
            status = err.response.status_code
            if status in (401, 403, 404):
                refused = f"the server refused the stream ({status})"
                raise ApiError(status, "StreamRefused", refused) from None
            failures += 1
        except (OSError, ValueError, Unreachable, WebSocketException, httpx.HTTPError):
            failures += 1
        if failures == 1:
            display.note(f"{group.source}: connection lost, connecting again")
        if failures and failures % 3 == 0 and transport == "auto":
            use = "sse" if use == "ws" else "ws"  # a proxy may block one of the two
        if all(j in lander.outcomes for j in jobs):
            break
        # The stream ended or dropped before every job landed: ask once, then reconnect.
        with contextlib.suppress(ApiError, Unreachable, OSError):
            answer = await lander.api.group(group.group_id)
            for job in answer.get("jobs", []):
                if job["id"] in jobs:
                    await lander.land(group, jobs[job["id"]], job["status"], display)
        await asyncio.sleep(RECONNECT_WAITS[min(failures, len(RECONNECT_WAITS) - 1)])


async def watch(
    config: Config, lock: Lock, api: Api, run: Run, display: Display, transport: str = "auto"
) -> Lander:
    """Follow every group of the run until each job has ended and landed."""
    lander = Lander(config, lock, api, run)
    rows, job_rows = rows_for(run)
    display.begin(rows, job_rows)
    try:
        await asyncio.gather(*(_follow_group(lander, g, display, transport) for g in run.groups))
    finally:
        display.end()
    _finish(config, run, lander)
    return lander


async def pull(config: Config, lock: Lock, api: Api, run: Run, display: Display) -> Lander:
    """Write every finished job of the run once; jobs still running are left for later."""
    lander = Lander(config, lock, api, run)
    rows, job_rows = rows_for(run)
    display.begin(rows, job_rows)
    try:
        for group in run.groups:
            answer = await api.group(group.group_id)
            jobs = {j.job_id: j for j in group.jobs}
            for job in answer.get("jobs", []):
                if job["id"] in jobs:
                    await lander.land(group, jobs[job["id"]], job["status"], display)
    finally:
        display.end()
    _finish(config, run, lander)
    return lander


def _finish(config: Config, run: Run, lander: Lander) -> None:
    if lander.all_landed() and not run.done:
        run.done = True
        save_run(config.root, run)
