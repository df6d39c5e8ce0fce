"""What the console's pages show, made from the API's own wire shapes: the figures of a
progress bar, a job's source and translation side by side with each key's warnings, the
notices a button leaves behind. Pure, so every page and a test can call it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import contract
from api.console_schemas import ACTIVE
from api.schemas import JobGroupOut, JobWarning
from localization.payload import iter_strings, path_str

FILTER_LABELS = {
    None: "All",
    ACTIVE: "In progress",
    contract.AWAITING_REVIEW: "Awaiting review",
    contract.GROUP_COMPLETED: "Completed",
    contract.GROUP_PARTIAL: "Partial",
    contract.GROUP_FAILED: "Failed",
    contract.GROUP_CANCELLED: "Cancelled",
}
ACTIVE_STATUSES = (contract.GROUP_PENDING, contract.GROUP_PROCESSING)
# A group whose jobs wait for a reviewer is processing: "In progress" lists it, and its bar
# counts those jobs as not done (and says how many wait).

# What a button leaves on the group page (?notice=...): fixed words, so a link cannot make
# the page say anything else.
NOTICES = {
    "cancelled": "Cancel requested: jobs not yet finished are being cancelled.",
    "retried": "Retry requested: failed and cancelled jobs run again.",
    "cancel_refused": contract.NOTHING_TO_CANCEL,
    "retry_refused": contract.NOTHING_TO_RETRY,
}


@dataclass
class Bar:
    """A group's progress: how many of its jobs have ended, and how, and how many wait
    for a reviewer."""

    total: int
    done: int
    succeeded: int
    failed: int
    cancelled: int
    awaiting_review: int

    @property
    def percent(self) -> int:
        return round(100 * self.done / self.total) if self.total else 100


def bar(group: JobGroupOut) -> Bar:
    done = group.completed_jobs + group.failed_jobs + group.cancelled_jobs
    return Bar(group.total_jobs, done, group.completed_jobs, group.failed_jobs,
               group.cancelled_jobs, group.awaiting_review_jobs)  # fmt: skip


def is_live(group: JobGroupOut) -> bool:
    """Whether the page follows this group's stream: it has not finished yet."""
    return group.status not in contract.GROUP_TERMINAL


@dataclass
class Row:
    """One key of a job: its source string, its translation (None until there is one) and
    the warnings about it."""

    key: str
    source: str
    translation: str | None
    warnings: list[JobWarning] = field(default_factory=list)


def side_by_side(
    source: Any, output: Any | None, warnings: list[JobWarning]
) -> tuple[list[Row], list[JobWarning]]:
    """Every string of the source in document order beside its translation, each with
    its warnings; the warnings that name no key of the source come back on their own."""
    # By path, not by its printed key: "a.b" and "b" inside "a" print alike.
    translated = dict(iter_strings(output)) if output else {}
    rows = [Row(path_str(path), text, translated.get(path)) for path, text in iter_strings(source)]
    by_key = {row.key: row for row in rows}
    general = []
    for warning in warnings:
        row = by_key.get(warning.key) if warning.key is not None else None
        if row is None:
            general.append(warning)
        else:
            row.warnings.append(warning)
    return rows, general


def step_cost(raw_step: dict[str, Any]) -> str | None:
    """A step's cost as the page shows it, when the step recorded one (``costUsd``)."""
    cost = raw_step.get("costUsd")
    return f"${cost:.4f}" if isinstance(cost, int | float) else None
