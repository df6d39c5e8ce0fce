"""The status rules of the API contract, in one place (used by workflows and the API)."""

from __future__ import annotations

from collections.abc import Iterable

QUEUED = "queued"
PROCESSING = "processing"
COMPLETED = "completed"
COMPLETED_WITH_WARNINGS = "completed_with_warnings"
FAILED = "failed"
CANCELLED = "cancelled"

JOB_STATUSES = (QUEUED, PROCESSING, COMPLETED, COMPLETED_WITH_WARNINGS, FAILED, CANCELLED)
SUCCEEDED = frozenset({COMPLETED, COMPLETED_WITH_WARNINGS})
TERMINAL = frozenset({COMPLETED, COMPLETED_WITH_WARNINGS, FAILED, CANCELLED})

GROUP_PENDING = "pending"
GROUP_PROCESSING = "processing"
GROUP_COMPLETED = "completed"
GROUP_PARTIAL = "partial"
GROUP_FAILED = "failed"
GROUP_CANCELLED = "cancelled"
GROUP_TERMINAL = frozenset({GROUP_COMPLETED, GROUP_PARTIAL, GROUP_FAILED, GROUP_CANCELLED})

# What a retry runs again.
RETRYABLE = frozenset({FAILED, CANCELLED})


def group_status(job_statuses: Iterable[str]) -> str:
    statuses = list(job_statuses)
    if not all(s in TERMINAL for s in statuses):
        return GROUP_PENDING if all(s == QUEUED for s in statuses) else GROUP_PROCESSING
    succeeded = sum(s in SUCCEEDED for s in statuses)
    if succeeded == len(statuses):
        return GROUP_COMPLETED
    if succeeded:
        return GROUP_PARTIAL
    return GROUP_CANCELLED if CANCELLED in statuses else GROUP_FAILED


def counts(job_statuses: Iterable[str]) -> dict[str, int]:
    """The counters of the group and snapshot shapes (camelCase, as on the wire)."""
    statuses = list(job_statuses)
    return {
        "totalJobs": len(statuses),
        "completedJobs": sum(s in SUCCEEDED for s in statuses),
        "completedWithWarningsJobs": statuses.count(COMPLETED_WITH_WARNINGS),
        "failedJobs": statuses.count(FAILED),
        "cancelledJobs": statuses.count(CANCELLED),
    }


# Why a cancel or a retry would change nothing: the API's 409s, the group workflow's update
# validators and ``tolk groups`` refuse with these words.
NOTHING_TO_CANCEL = "the group is already finished; nothing to cancel"
NOTHING_TO_RETRY = "no failed or cancelled jobs to retry"


def cancel_refused(job_statuses: Iterable[str]) -> str | None:
    """Why a cancel of a group whose jobs have these statuses is refused, or None."""
    return NOTHING_TO_CANCEL if all(s in TERMINAL for s in job_statuses) else None


def retry_refused(job_statuses: Iterable[str]) -> str | None:
    """Why a retry of a group whose jobs have these statuses is refused, or None."""
    return None if any(s in RETRYABLE for s in job_statuses) else NOTHING_TO_RETRY
