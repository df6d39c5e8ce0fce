"""``tolk push`` and ``tolk status``: read every bucket's source, work out what is stale, send
it as job groups and record the run."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from client.api import Api
from client.config import Config
from client.lock import Lock
from client.runs import Run, all_runs, new_run_id, save_run
from client.sync import (
    SourceFile,
    read_source,
    read_target,
    requests_for,
    run_group,
    stale_keys,
    write_target,
)


@dataclass
class Plan:
    """The project as it stands: per source file, the stale keys of each target."""

    sources: list[SourceFile] = field(default_factory=list)
    stale: dict[str, dict[str, list[str]]] = field(default_factory=dict)  # file -> locale -> keys
    # Targets to rewrite with nothing to send: a source key was removed, or locked keys moved.
    tidy: dict[str, list[str]] = field(default_factory=dict)

    def stale_count(self) -> int:
        return sum(len(keys) for per in self.stale.values() for keys in per.values())


def plan(config: Config, lock: Lock, targets: tuple[str, ...] | None = None) -> Plan:
    out = Plan()
    for bucket_file in config.files(targets):
        source = read_source(config, bucket_file)
        out.sources.append(source)
        per_locale = {}
        for locale in bucket_file.targets:
            _, target = read_target(config, source, locale)
            per_locale[locale] = stale_keys(source, target, locale, lock)
            extra = {e.key for e in target.entries} - set(source.hashes)
            locked_missing = source.locked - {e.key for e in target.entries}
            if extra or locked_missing:
                out.tidy.setdefault(bucket_file.source, []).append(locale)
        out.stale[bucket_file.source] = per_locale
    return out


@dataclass
class PushResult:
    run: Run | None
    sent: int  # strings sent (each once, whatever the number of its target locales)
    groups: list[dict[str, Any]]


async def push(
    config: Config, lock: Lock, api: Api, targets: tuple[str, ...] | None = None
) -> PushResult:
    """Send what is stale; tidy targets that need no translation; record the run.

    A push that sends nothing creates no run. One whose groups all exist already (a re-run
    after a crash: the idempotency keys replay them) continues the run that has them.
    """
    current = plan(config, lock, targets)
    for source in current.sources:
        for locale in current.tidy.get(source.file.source, []):
            write_target(config, lock, source, locale)
    groups, created = [], []
    sent = 0
    for source in current.sources:
        for request in requests_for(config, source, current.stale[source.file.source]):
            answer = await api.create_group(request.body)
            groups.append(run_group(request, answer))
            created.append(answer)
            sent += len(request.keys)
    lock.save_if_changed()
    if not groups:
        return PushResult(None, 0, [])
    ids = {g.group_id for g in groups}
    run = next((r for r in all_runs(config.root) if r.group_ids() == ids), None)
    if run is None:
        run = Run(new_run_id(), config.api, datetime.now(UTC).isoformat(), groups)
        save_run(config.root, run)
    return PushResult(run, sent, created)


def status(config: Config, lock: Lock) -> dict[str, Any]:
    """What is stale (keys per file and locale) and which runs are still in flight."""
    current = plan(config, lock)
    stale = {
        file: {locale: keys for locale, keys in per.items() if keys}
        for file, per in current.stale.items()
    }
    stale = {file: per for file, per in stale.items() if per}
    in_flight = [r.id for r in all_runs(config.root) if not r.done]
    return {"stale": stale, "runs": in_flight, "tidy": current.tidy}
