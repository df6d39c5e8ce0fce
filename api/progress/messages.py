"""The wire messages of a progress stream, and when a group's stream is over.

Message ids are event-log positions (see workflows/event_log.py): the snapshot sent on
connect carries the current log length, each event its own position. A client that resumes
after id N gets exactly the events after N.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import Any

import contract
from workflows.event_log import LogEntry


@dataclass
class Message:
    seq: int
    type: str
    body: dict[str, Any]

    @functools.cached_property
    def text(self) -> str:
        """The JSON frame, serialised once however many subscribers receive it."""
        return json.dumps(self.body, separators=(",", ":"), ensure_ascii=False)


def build_message(entry: LogEntry, seq: int, snap: dict[str, Any]) -> Message:
    """The wire message for one event-log entry, carrying the latest snapshot."""
    job_id, entry_status = entry
    if job_id is None:
        body = {
            "type": contract.GROUP_COMPLETED_EVENT,
            "groupId": snap["groupId"],
            "status": entry_status,
        }
    else:
        job = snap["jobs"].get(job_id, {})
        kind = contract.stream_event(entry_status)
        body = {"type": kind, "jobId": job_id, "locale": job.get("locale")}
        if kind == contract.JOB_FAILED:
            body["error"] = job.get("error") or "translation failed"
    body["snapshot"] = snap
    return Message(seq=seq, type=body["type"], body=body)


def snapshot_message(snap: dict[str, Any], seq: int) -> Message:
    return Message(
        seq=seq, type=contract.SNAPSHOT, body={"type": contract.SNAPSHOT, "snapshot": snap}
    )


def is_finished(event_log: list[LogEntry], snap: dict[str, Any]) -> bool:
    """The group is finished now: its log ends with a group event and no retry has made
    jobs run again since (the snapshot says so)."""
    return (
        bool(event_log)
        and event_log[-1][0] is None
        and snap.get("status") in contract.GROUP_TERMINAL
    )
