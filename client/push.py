"""``tolk push`` and ``tolk status``: read every bucket's source, work out what is stale, send
it as job groups and record the run."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from client.api import Api, ApiError
from client.config import Config
from client.lock import Lock, updating
from client.runs import Run, all_runs, new_run_id, save_run
from client.sync import (
    Request,
    SourceFile,
    read_source,
    read_target,
    requests_for,
    run_group,
    stale_keys,
    write_target,
)

InFlight = dict[tuple[str, str, str], str]  # (source file, key, locale) -> hash sent


@dataclass
class Plan:
    """The project as it stands: per source file, the stale keys of each target."""

    sources: list[SourceFile] = field(default_factory=list)
    stale: dict[str, dict[str, list[str]]] = field(default_factory=dict)  # file -> locale -> keys
    # Targets to rewrite with nothing to send: a source key was removed, a locked or
    # untranslatable entry changed.
    tidy: dict[str, list[str]] = field(default_factory=dict)
    unfinished: list[Run] = field(default_factory=list)  # runs with jobs still to land


def in_flight(runs: list[Run]) -> InFlight:
    """What unfinished runs are translating: each sent key of each job not landed yet."""
    out: InFlight = {}
    for run in runs:
        for group, job in run.unlanded():
            for key, sent in group.sent.items():
                out[(group.source, key, job.locale)] = sent
    return out


def plan(config: Config, lock: Lock, targets: tuple[str, ...] | None = None) -> Plan:
    unfinished = [r for r in all_runs(config.root) if not r.done]
    flying = in_flight(unfinished)
    out = Plan(unfinished=unfinished)
    for bucket_file in config.files(targets):
        source = read_source(config, bucket_file)
        out.sources.append(source)
        per_locale = {}
        for locale in bucket_file.targets:
            existing, target = read_target(config, source, locale)
            per_locale[locale] = stale_keys(source, target, locale, lock, flying)
            # A missing target is written when its translations land, unless none are due
            # (nothing stale, nothing on its way).
            coming = any((bucket_file.source, k, locale) in flying for k in source.hashes)
            due = existing is not None or not (per_locale[locale] or coming)
            if (
                due
                and write_target(
                    config, lock, source, locale, dry_run=True, as_read=(existing, target)
                ).changed
            ):
                out.tidy.setdefault(bucket_file.source, []).append(locale)
        out.stale[bucket_file.source] = per_locale
    return out


@dataclass
class PushResult:
    runs: list[Run]  # the runs to follow: the new one, and those still unfinished
    new_run: Run | None
    sent: int  # strings sent (each once, whatever the number of its target locales)


async def push(
    config: Config, lock: Lock, api: Api, targets: tuple[str, ...] | None = None
) -> PushResult:
    """Send what is stale; tidy targets that need no translation; record the run.

    A push that sends nothing creates no run. What unfinished runs are translating is not
    sent again: a re-run after a crash attaches to them. The run is saved after every group
    it creates, so a push that stops halfway loses none of them.
    """
    current = plan(config, lock, targets)
    if current.tidy:
        with updating(lock.path) as fresh:
            for source in current.sources:
                for locale in current.tidy.get(source.file.source, []):
                    write_target(config, fresh, source, locale)
    followed = {g.group_id for r in current.unfinished for g in r.groups}
    run: Run | None = None
    sent = 0
    for source in current.sources:
        for request in requests_for(config, source, current.stale[source.file.source]):
            request, answer = await _create(api, request)
            if answer["groupId"] in followed:
                continue  # an unfinished run has it (and follows it) already
            if run is None:
                run = Run(new_run_id(), config.api, datetime.now(UTC).isoformat())
            run.groups.append(run_group(request, answer))
            save_run(config.root, run)
            sent += len(request.keys)
    runs = ([run] if run else []) + current.unfinished
    return PushResult(runs, run, sent)


# A replayed group that ended with nothing to show is asked anew (its idempotency key gets
# a new attempt number). One still running, completed or partial is attached to, whatever
# machine made it: what succeeded lands, and what failed is stale again for the next push
# (a smaller request, so a new key).
ASK_AGAIN = frozenset({"failed", "cancelled"})
MAX_ATTEMPTS = 100


async def _create(api: Api, request: Request) -> tuple[Request, dict[str, Any]]:
    """Create the request's group. The server replays a group an earlier push made with the
    same request (from this machine or any other: run files are not shared); when that group
    did not succeed, the request is asked again under its next attempt number."""
    for _ in range(MAX_ATTEMPTS):
        answer = await api.create_group(request.body)
        if answer.get("status") not in ASK_AGAIN:
            return request, answer
        request = request.next_attempt()
    raise ApiError(409, "TooManyAttempts", f"{MAX_ATTEMPTS} groups for one request failed")


def status(config: Config, lock: Lock) -> dict[str, Any]:
    """What is stale (keys per file and locale), which targets need tidying, and which runs
    are still in flight."""
    current = plan(config, lock)
    stale = {
        file: {locale: keys for locale, keys in per.items() if keys}
        for file, per in current.stale.items()
    }
    stale = {file: per for file, per in stale.items() if per}
    return {"stale": stale, "tidy": current.tidy, "runs": [r.id for r in current.unfinished]}
