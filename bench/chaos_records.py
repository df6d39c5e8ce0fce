"""What a chaos run records: the client's POST attempts, the webhooks received and every
GET during the drain (:class:`Observed`), the faults it caused (:class:`Faults`), what it
read back once the drain was over (:class:`Checked`), and what the run found
(:class:`Result`). Plain data: the checks and the diagnosis read only these."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx


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

    def took(self, resp: httpx.Response) -> None:
        """Note what a 202 carried: its group, its jobs, whether it was a replay."""
        got = resp.json()
        self.group_id = got["groupId"]
        self.job_ids = tuple(sorted(job["id"] for job in got["jobs"]))
        self.replayed = resp.headers.get("idempotent-replayed") == "true"


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

    @property
    def delivered(self) -> bool:
        """Answered 2xx: the delivery counts."""
        return 200 <= self.reply < 300


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
        return {r.job_id for r in self.receipts if r.job_id and r.delivered}


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


@dataclass
class Result:
    figures: dict[str, Any]
    violations: dict[str, list[str]]  # invariant -> subjects with evidence
    diagnosis: str
    root: Path

    @property
    def ok(self) -> bool:
        return not any(self.violations.values())
