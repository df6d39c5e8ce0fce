"""``tolk watch`` and ``tolk pull``: land runs' finished jobs in their target files.

``watch`` follows every group over its WebSocket (or Server-Sent Events) and writes each
locale the moment its job ends; a dropped connection is opened again, and the snapshot the
server sends first tells what ended meanwhile. ``pull`` asks once and writes every finished
job. Both only read run files and the API, so they resume from any process or machine.

A job has landed once its target is written (or its failure reported); the run file records
it, so nothing lands twice and a job whose landing failed (the server or the disk refused)
is tried again by the next ``watch`` or ``pull``.
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
from client.config import LOCK_FILE, BucketFile, Config
from client.lock import project_lock, updating
from client.progress import SUCCEEDED, TERMINAL, Display, Row
from client.runs import Run, RunError, RunGroup, RunJob, load_run, save_run
from client.sync import FileProblem, read_source, write_target

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
    """Writes finished jobs of runs into their target files, each once, one file at a time."""

    def __init__(self, config: Config, api: Api, runs: list[Run]) -> None:
        self.config, self.api, self.runs = config, api, runs
        self.outcomes: dict[str, Outcome] = {}
        self._write = asyncio.Lock()
        self._run_of = {job.job_id: run for run in runs for _, job in run.jobs()}
        locales = tuple(sorted({job.locale for run in runs for _, job in run.jobs()}))
        self._files: dict[str, BucketFile] = {}
        for bucket_file in config.files(locales):  # by source path: buckets may move
            self._files.setdefault(bucket_file.source, bucket_file)

    def bucket_file(self, group: RunGroup) -> BucketFile | None:
        return self._files.get(group.source)

    def landed(self, job: RunJob) -> bool:
        return job.job_id in self.outcomes or job.job_id in self._run_of[job.job_id].landed

    async def land(self, group: RunGroup, job: RunJob, status: str, display: Display) -> None:
        """Handle one job's end. Raises (and lands nothing) when the job cannot be read or its
        target cannot be written: then the job is tried again later."""
        if self.landed(job) or status not in TERMINAL:
            return
        bucket_file = self.bucket_file(group)
        if bucket_file is None:
            self.lose(group, display, f"{group.source} is no longer a bucket file of tolk.yaml")
            return
        path = bucket_file.targets[job.locale]  # tolk.yaml decides, never the run file
        outcome = Outcome(job.job_id, job.locale, path, status)
        detail = ""
        if status in SUCCEEDED:
            answer = await self.api.job(job.job_id)
            outcome.warnings = len(answer.get("warnings") or [])
            try:
                async with self._write:
                    with updating(self.config.root / LOCK_FILE) as lock:
                        written = write_target(
                            self.config,
                            lock,
                            read_source(self.config, bucket_file),
                            job.locale,
                            answer.get("outputData") or {},
                            group.sent,
                            frozenset(group.plural_keys),
                        )
            except FileProblem as err:  # this file only: the other jobs still land
                outcome.status, outcome.error = "failed", str(err)
                detail = str(err)
            else:
                outcome.written = True
                outcome.problems = written.problems
                if written.problems:
                    detail = f"{len(written.problems)} keys unusable, left stale"
        elif status == "failed":
            answer = await self.api.job(job.job_id)
            outcome.error = answer.get("error") or "failed"
            detail = outcome.error or ""
        if job.job_id in self.outcomes:  # landed meanwhile by another stream of the group
            return
        self.outcomes[job.job_id] = outcome
        self._record(job)
        display.job_ended(job.job_id, status, outcome.warnings, detail)

    def lose(self, group: RunGroup, display: Display, why: str) -> None:
        """End the group's jobs that have not landed as ``missing`` (the server does not know
        the group, or its file left tolk.yaml): their keys stay stale."""
        bucket_file = self.bucket_file(group)
        for job in group.jobs:
            if self.landed(job):
                continue
            path = bucket_file.targets[job.locale] if bucket_file else job.path
            self.outcomes[job.job_id] = Outcome(job.job_id, job.locale, path, "missing", why)
            self._record(job)
            display.job_ended(job.job_id, "missing", 0, why)

    def _record(self, job: RunJob) -> None:
        """Note in the run file that ``job`` landed, merged with what other processes noted
        meanwhile."""
        run = self._run_of[job.job_id]
        with project_lock(self.config.root):
            with contextlib.suppress(RunError):
                on_disk = load_run(self.config.root, run.id)
                run.landed = list(dict.fromkeys([*on_disk.landed, *run.landed]))
            if job.job_id not in run.landed:
                run.landed.append(job.job_id)
            run.done = not run.unlanded()
            save_run(self.config.root, run)

    def all_landed(self) -> bool:
        return all(run.done for run in self.runs)

    def failed(self) -> list[Outcome]:
        """Jobs that did not succeed, and successes whose output had keys it could not use."""
        return [o for o in self.outcomes.values() if o.status not in SUCCEEDED or o.problems]

    def waiting(self) -> int:
        return sum(len(run.unlanded()) for run in self.runs)


def rows_for(runs: list[Run]) -> tuple[dict[str, Row], dict[str, str]]:
    """One row per locale, or per file x locale when the runs have several files."""
    several = len({g.source for run in runs for g in run.groups}) > 1
    rows: dict[str, Row] = {}
    job_rows: dict[str, str] = {}
    for run in runs:
        landed = set(run.landed)
        for group, job in run.jobs():
            key = f"{group.source}  {job.locale}" if several else job.locale
            row = rows.setdefault(key, Row(key))
            row.jobs.add(job.job_id)
            if job.job_id in landed:
                row.done.add(job.job_id)
            job_rows[job.job_id] = key
    return rows, job_rows


async def _land_all(lander: Lander, group: RunGroup, display: Display) -> None:
    """Ask the server once where the group's jobs stand, and land those that ended. A group
    the server does not know (deleted, another server, another organization's run file)
    ends its jobs as ``missing``: their keys stay stale, and the next push asks again."""
    try:
        answer = await lander.api.group(group.group_id)
    except ApiError as err:
        if err.status != 404:
            raise
        lander.lose(group, display, "the server does not know this group")
        return
    jobs = {j.job_id: j for j in group.jobs}
    for job in answer.get("jobs", []):
        if job["id"] in jobs:
            await lander.land(group, jobs[job["id"]], job["status"], display)


async def _follow_group(lander: Lander, group: RunGroup, display: Display, transport: str) -> None:
    jobs = {j.job_id: j for j in group.jobs}
    failures = 0
    use = "ws" if transport == "auto" else transport

    def pending() -> bool:
        return not all(lander.landed(j) for j in jobs.values())

    while pending():
        try:
            async for message in lander.api.events(group.group_id, use):
                failures = 0
                kind = message.get("type")
                snapshot_jobs = (message.get("snapshot") or {}).get("jobs") or {}
                if kind == "snapshot":
                    for job_id, state in snapshot_jobs.items():
                        if job_id in jobs:
                            await lander.land(group, jobs[job_id], state.get("status"), display)
                elif kind in ("job.completed", "job.failed", "job.cancelled"):
                    job_id = message.get("jobId", "")
                    state = snapshot_jobs.get(job_id, {})
                    if job_id in jobs:
                        await lander.land(group, jobs[job_id], state.get("status"), display)
                elif kind == "group.completed":
                    break
        except websockets.exceptions.InvalidStatus as err:
            status = err.response.status_code
            if status == 404:
                await _land_all(lander, group, display)  # gone, or the stream only?
            elif status in (401, 403) and (transport != "auto" or use == "sse"):
                refused = f"the server refused the stream ({status})"
                raise ApiError(status, "StreamRefused", refused) from None
            failures += 1
            if transport == "auto":
                use = "sse"  # a proxy in the way may refuse WebSocket upgrades
        except ApiError as err:
            if err.status == 404:
                await _land_all(lander, group, display)
            elif err.status in (401, 403):
                raise
            failures += 1
        except (OSError, ValueError, Unreachable, WebSocketException, httpx.HTTPError):
            failures += 1
        if failures == 1:
            display.note(f"{group.source}: connection lost, connecting again")
        if failures and failures % 3 == 0 and transport == "auto":
            use = "sse" if use == "ws" else "ws"
        if not pending():
            break
        # The stream ended or dropped before every job landed: ask once, then reconnect.
        with contextlib.suppress(ApiError, Unreachable, OSError, httpx.HTTPError):
            await _land_all(lander, group, display)
        if pending():
            await asyncio.sleep(RECONNECT_WAITS[min(failures, len(RECONNECT_WAITS) - 1)])


async def watch(
    config: Config, api: Api, runs: list[Run], display: Display, transport: str = "auto"
) -> Lander:
    """Follow every group of the runs until each job has ended and landed."""
    lander = Lander(config, api, runs)
    display.begin(*rows_for(runs))
    try:
        await asyncio.gather(
            *(
                _follow_group(lander, group, display, transport)
                for run in runs
                for group in run.groups
                if any(not lander.landed(job) for job in group.jobs)
            )
        )
    finally:
        display.end()
    return lander


async def pull(config: Config, api: Api, runs: list[Run], display: Display) -> Lander:
    """Write every finished job of the runs once; jobs still running are left for later."""
    lander = Lander(config, api, runs)
    display.begin(*rows_for(runs))
    try:
        for run in runs:
            for group in run.groups:
                if any(not lander.landed(job) for job in group.jobs):
                    await _land_all(lander, group, display)
    finally:
        display.end()
    return lander
