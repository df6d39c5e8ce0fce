"""The faults of a chaos run, caused from the main thread, which owns the processes: a
worker SIGKILLed every few seconds and restarted, the API once, the Temporal dev server once
(restarted on the same port and database file after a while down), and the webhook
receiver answering 503 for a moment. A component that exits without being killed is a
finding: it is recorded with its log's last lines and restarted."""

from __future__ import annotations

import signal
import sys
import threading
import time

from bench.chaos_config import WORKERS, Config
from bench.chaos_evidence import log_tail
from bench.chaos_load import Client
from bench.chaos_records import Fault
from stack import Stack
from tests.receiver import Receiver, Reply


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
            message = f"{name} failed to restart: {err}"
            self.lost(name, message, message)
            return False
        self.note(f"{name} started")
        self.restarted()
        return True

    def lost(self, name: str, finding: str, said: str) -> None:
        """A component that is gone without being killed (exited, or failed to start):
        the finding with its log's last lines, a line in the timeline, a restart in a
        second."""
        self.stack.procs.pop(name, None)
        self.faults.exits.append(f"{finding}\n{log_tail(self.stack, name)}")
        self.note(said)
        self.restart_at[name] = time.monotonic() + 1.0

    def supervise(self) -> None:
        """A component that exited without being killed is a finding: record it with its
        log's last lines, and restart it after a second (after Temporal, if it is down)."""
        now = time.monotonic()
        for name, proc in list(self.stack.procs.items()):
            if proc.poll() is not None:
                at = now - self.client.seen.t0
                self.lost(
                    name,
                    f"{name} exited on its own with code {proc.returncode} at {at:.1f} s"
                    f"{' (Temporal down)' if self.temporal_down else ''}",
                    f"{name} EXITED on its own (code {proc.returncode})",
                )
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
