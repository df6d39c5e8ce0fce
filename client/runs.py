"""``.tolk/runs/<run>.json``: the groups one push created, so that ``watch`` and ``pull`` can
resume from any process (and any machine that has the file).

A run lists, per group, the source file, the target files by locale with their job ids, the
request's idempotency key, and the keys sent with the source hash each was sent at (what the
lock records once a target is written). ``landed`` lists the jobs whose end was handled (their
target written, or their failure reported); ``done`` is set once every job has landed.

A run file may come from another machine: its locales are checked like the configuration's,
and target paths always come from ``tolk.yaml``, never from the file.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from client.lock import STATE_DIR, write_atomic
from localization.language import normalize_locale

RUNS_DIR = Path(STATE_DIR) / "runs"


@dataclass
class RunJob:
    job_id: str
    locale: str
    path: str  # target file, relative to the project root (informative: tolk.yaml decides)


@dataclass
class RunGroup:
    group_id: str
    bucket: int
    source: str
    sent: dict[str, str]  # key -> source hash it was sent at
    plural_keys: list[str]  # keys sent as ICU plural messages, read back into forms
    jobs: list[RunJob]
    idempotency_key: str = ""


@dataclass
class Run:
    id: str
    api: str
    created_at: str
    groups: list[RunGroup] = field(default_factory=list)
    done: bool = False
    landed: list[str] = field(default_factory=list)  # job ids

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Run:
        groups = [
            RunGroup(
                group_id=str(g["group_id"]),
                bucket=int(g["bucket"]),
                source=str(g["source"]),
                sent={str(k): str(v) for k, v in g["sent"].items()},
                plural_keys=[str(k) for k in g.get("plural_keys", [])],
                jobs=[
                    RunJob(str(j["job_id"]), normalize_locale(str(j["locale"])), str(j["path"]))
                    for j in g["jobs"]
                ],
                idempotency_key=str(g.get("idempotency_key", "")),
            )
            for g in raw["groups"]
        ]
        return cls(
            str(raw["id"]),
            str(raw["api"]),
            str(raw["created_at"]),
            groups,
            bool(raw.get("done")),
            [str(j) for j in raw.get("landed", [])],
        )

    def jobs(self) -> list[tuple[RunGroup, RunJob]]:
        return [(group, job) for group in self.groups for job in group.jobs]

    def unlanded(self) -> list[tuple[RunGroup, RunJob]]:
        landed = set(self.landed)
        return [(g, j) for g, j in self.jobs() if j.job_id not in landed]


class RunError(Exception):
    """No such run, or a run file that cannot be read (exit code 2)."""


def new_run_id(now: datetime | None = None) -> str:
    moment = now or datetime.now(UTC)
    return moment.strftime("%Y%m%dT%H%M%S") + f"-{moment.microsecond:06d}"


def run_path(root: Path, run_id: str) -> Path:
    return root / RUNS_DIR / f"{run_id}.json"


def save_run(root: Path, run: Run) -> None:
    text = json.dumps(run.to_json(), ensure_ascii=False, indent=2, sort_keys=True)
    write_atomic(run_path(root, run.id), (text + "\n").encode())


def load_run(root: Path, run_id: str) -> Run:
    if "/" in run_id or "\\" in run_id or run_id.startswith("."):
        raise RunError(f"'{run_id}' is not a run id")
    path = run_path(root, run_id)
    try:
        return Run.from_json(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise RunError(f"no run '{run_id}' in {RUNS_DIR}") from None
    except (ValueError, KeyError, TypeError, AttributeError, OSError):
        raise RunError(f"{RUNS_DIR}/{run_id}.json cannot be read") from None


def all_runs(root: Path) -> list[Run]:
    """Every run of the project, oldest first; unreadable files are skipped."""
    runs = []
    for path in sorted((root / RUNS_DIR).glob("*.json")):
        try:
            runs.append(Run.from_json(json.loads(path.read_text(encoding="utf-8"))))
        except (ValueError, KeyError, TypeError, AttributeError, OSError):
            continue
    return runs


def latest_run(root: Path) -> Run:
    runs = all_runs(root)
    if not runs:
        raise RunError(f"no run in {RUNS_DIR} (run `tolk push` first)")
    unfinished = [r for r in runs if not r.done]
    return (unfinished or runs)[-1]
