"""How long after Temporal returns do translations resume?

    python -m bench.outage [--outages 12 60] [--rate 2]

Starts its own stack on free ports (dev server, one worker, API), drives a small steady
load (a 2-locale group of 20 strings every 1/rate s; a POST refused with 503 is sent again
with the same idempotency key), and for each outage length in turn stops the dev server
(SIGTERM), waits, starts it again on the same database file, and prints:

- resume: from the dev server answering again (namespace described) to the first job that
  ends after it (translations resume);
- accepted: from then to the first 202 of a POST sent after it;
- drained: from then until every group accepted so far is terminal;
- refused: POSTs answered 503 during the outage (they are retried), accepted during it;
- exits: processes of the stack that exited on their own (should be none).

Jobs are counted from the SQLite file directly, every 50 ms. Only loopback; every wait is
bounded. Not part of the test suite and not written to BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import signal
import sqlite3
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx

from bench.common import machine, own_stack

TERMINAL = ("completed", "completed_with_warnings", "failed", "cancelled")
LIMIT = 300.0  # seconds: any wait longer than this is a hang


class Load:
    """Submits one small group every ``1/rate`` s from a thread; remembers what was
    accepted and what was refused (the refused are sent again)."""

    def __init__(self, api_url: str, key: str, rate: float) -> None:
        self.client = httpx.Client(base_url=api_url, headers={"X-API-Key": key}, timeout=60)
        self.interval = 1 / rate
        self.accepted: list[tuple[float, str]] = []  # (monotonic time of the 202, group id)
        self.refused: list[float] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, name="load", daemon=True)

    def run(self) -> None:
        pending: str | None = None
        while not self.stop.is_set():
            began = time.monotonic()
            key = pending or uuid.uuid4().hex
            body = {
                "sourceLocale": "en",
                "targetLocales": ["de", "fr"],
                "idempotencyKey": key,
                "data": {f"s{i}": f"String {i} for {{name}}" for i in range(20)},
            }
            try:
                resp = self.client.post("/jobs/localization", json=body)
                status = resp.status_code
            except httpx.HTTPError:
                status = 0
            if status == 202:
                self.accepted.append((time.monotonic(), resp.json()["groupId"]))
                pending = None
            else:
                self.refused.append(time.monotonic())
                pending = key
            self.stop.wait(max(0.0, self.interval - (time.monotonic() - began)))


class JobCounter:
    """Samples the number of terminal jobs; ``first_after(t)`` is when it first grew
    after ``t``."""

    def __init__(self, db_file: str) -> None:
        self.db_file = db_file
        self.samples: list[tuple[float, int]] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, name="jobs", daemon=True)

    def count(self) -> int:
        marks = ",".join("?" * len(TERMINAL))
        with sqlite3.connect(self.db_file, timeout=5) as conn:
            row = conn.execute(
                f"SELECT COUNT(*) FROM job WHERE status IN ({marks})", TERMINAL
            ).fetchone()
        return int(row[0])

    def run(self) -> None:
        while not self.stop.wait(0.05):
            try:
                self.samples.append((time.monotonic(), self.count()))
            except sqlite3.Error:
                pass

    def first_after(self, since: float) -> float | None:
        before = max((n for t, n in self.samples if t <= since), default=0)
        return next((t for t, n in self.samples if t > since and n > before), None)


def group_terminal(client: httpx.Client, group_id: str) -> bool:
    body = client.get(f"/jobs/localization/groups/{group_id}").json()
    return body.get("status") in {"completed", "partial", "failed", "cancelled"}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--outages", type=float, nargs="+", default=[12.0, 60.0])
    parser.add_argument("--rate", type=float, default=2.0, help="groups per second")
    parser.add_argument("--settle", type=float, default=10.0, help="seconds between outages")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="tolk-outage-"))
    stack, key = own_stack(root)
    print(f"{machine()}; stack in {root}", flush=True)
    db_file = stack.settings.database_url.split(":///", 1)[1]
    load, jobs = Load(stack.api_url, key, args.rate), JobCounter(db_file)
    rows = []
    try:
        jobs.thread.start()
        load.thread.start()
        time.sleep(args.settle)
        for outage in args.outages:
            stack.kill("temporal", signal.SIGTERM)
            down = time.monotonic()
            time.sleep(outage)
            stack.start_temporal()
            back = time.monotonic()
            deadline = back + LIMIT
            while jobs.first_after(back) is None and time.monotonic() < deadline:
                time.sleep(0.05)
            while not any(t > back for t, _ in load.accepted) and time.monotonic() < deadline:
                time.sleep(0.05)
            ids = [group_id for _, group_id in load.accepted]
            with httpx.Client(
                base_url=stack.api_url, headers={"X-API-Key": key}, timeout=30
            ) as client:
                while ids and time.monotonic() < deadline:
                    ids = [g for g in ids if not group_terminal(client, g)]
                    time.sleep(0.2)
            drained = time.monotonic() if not ids else None
            resumed = jobs.first_after(back)
            accepted = next((t for t, _ in load.accepted if t > back), None)
            rows.append(
                {
                    "outage": outage,
                    "restart": back - down - outage,
                    "resume": None if resumed is None else resumed - back,
                    "accepted": None if accepted is None else accepted - back,
                    "drained": None if drained is None else drained - back,
                    "refused": sum(1 for t in load.refused if down <= t <= back),
                    "accepted_during": sum(1 for t, _ in load.accepted if down <= t <= back),
                    "exits": {
                        n: p.returncode for n, p in stack.procs.items() if p.poll() is not None
                    },
                }
            )
            print(rows[-1], flush=True)
            time.sleep(args.settle)
    finally:
        load.stop.set()
        jobs.stop.set()
        load.thread.join(60)
        stack.stop()

    def fmt(value: float | None) -> str:
        return "hang" if value is None else f"{value:.1f} s"

    print(
        "\n| outage | dev server restart | resume | first 202 after | drained | refused "
        "| accepted during | exits |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['outage']:.0f} s | {fmt(r['restart'])} | {fmt(r['resume'])} | "
            f"{fmt(r['accepted'])} | {fmt(r['drained'])} | {r['refused']} | "
            f"{r['accepted_during']} | {r['exits'] or 'none'} |"
        )


if __name__ == "__main__":
    main()
