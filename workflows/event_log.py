"""The group's progress as the workflow publishes it and the API streams it.

The workflow keeps an ordered *event log*: one entry per job reaching a terminal status
(``[job_id, status]``), one per entry of a job into awaiting_review (``[job_id,
"awaiting_review"]``, the stream's ``job.review_requested``) and one per group becoming
terminal (``[None, group_status]``). An
event's sequence number is its 1-based position in that log, so every API process, and a
client resuming a stream, agrees on ids without any shared memory. The log and the current
statuses are mirrored in a compact memo the Temporal server can return with no worker.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import contract

MEMO_KEY = "progress"
LogEntry = list[Any]  # [job_id | None, status]

_CODES = {  # job and group statuses share the terminal names, so one code each
    contract.QUEUED: "q",
    contract.PROCESSING: "p",
    contract.COMPLETED: "c",
    contract.COMPLETED_WITH_WARNINGS: "w",
    contract.FAILED: "f",
    contract.CANCELLED: "x",
    contract.GROUP_PARTIAL: "P",
    # Added with human review; memos written before it never hold it, so they decode as ever.
    contract.AWAITING_REVIEW: "r",
}
_STATUSES = {code: name for name, code in _CODES.items()}


def encode_memo(job_ids: Sequence[str], log: Sequence[LogEntry]) -> dict[str, Any]:
    """``{"l": [[0, "c"], [-1, "c"]]}``: the event log with job positions instead of ids.
    Upserted only when the log grows, so it costs one history event per terminal change."""
    index = {job_id: i for i, job_id in enumerate(job_ids)}
    return {"l": [[-1 if job_id is None else index[job_id], _CODES[st]] for job_id, st in log]}


def decode_memo(memo: dict[str, Any], job_ids: Sequence[str]) -> list[LogEntry]:
    return [[None if i < 0 else job_ids[i], _STATUSES[code]] for i, code in memo["l"]]


def latest_statuses(log: Sequence[LogEntry]) -> dict[str, str]:
    """Each job's status after its last event in ``log`` (terminal, or awaiting_review)."""
    return {job_id: st for job_id, st in log if job_id is not None}


def snapshot(group_id: str, jobs: Sequence[tuple[str, str, str, str | None]]) -> dict[str, Any]:
    """The WebSocket/SSE snapshot from ``(job_id, locale, status, error)`` rows, plus the
    group status."""
    statuses = [job_status for _, _, job_status, _ in jobs]
    return {
        "groupId": group_id,
        "status": contract.group_status(statuses),
        **contract.counts(statuses),
        "jobs": {
            job_id: {"locale": locale, "status": job_status} | ({"error": error} if error else {})
            for job_id, locale, job_status, error in jobs
        },
    }
