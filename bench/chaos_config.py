"""What one chaos run is made of: its knobs (:class:`Config`), the stack's settings that
make faults cheap to recover from, and the documents the groups carry.

The statuses that count as terminal are spelled out here, not taken from ``contract.py``:
the run judges the service from outside, by what its GETs say."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LOCALES = ["de", "fr", "es", "it", "ja", "ko", "pt-BR", "nl", "sv", "pl", "da", "fi"]
RECEIVER_HOST = "127.0.0.2"  # the one host the chaos stack's webhooks may reach
TERMINAL_GROUP = {"completed", "partial", "failed", "cancelled"}
TERMINAL_JOB = {"completed", "completed_with_warnings", "failed", "cancelled"}
SUCCEEDED = {"completed", "completed_with_warnings"}
WORKERS = ["worker", "worker-2"]  # the names Stack.start gives two worker processes
COMPONENTS = ["temporal", *WORKERS, "api"]
# The workflow types that run for a group or a job (any other is the service's own).
GROUP_AND_JOB_WORKFLOWS = {"GroupWorkflow", "LocaleJobWorkflow"}


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
