"""The words of the API contract and the rules over them, in one place: job and group
statuses, how a group's status and counters follow from its jobs' statuses, the event types
of the progress streams and of webhooks, the outcomes of a webhook delivery attempt, and
the stages of a job's pipeline and which settings a group's jobs run them with.

Pure and low in the house: the workflows (in their sandbox), the activities, the store, the
API and the progress hub all import it, and it imports nothing of ours."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

# An engine names a model by provider (up to 64 characters) and model (up to 200); usage
# and the spend ledger name it ``provider/model``, and their columns hold that whole.
PROVIDER_NAME_MAX = 64
MODEL_NAME_MAX = 200
MODEL_LABEL_MAX = PROVIDER_NAME_MAX + 1 + MODEL_NAME_MAX

QUEUED = "queued"
PROCESSING = "processing"
# Waiting for a person (the humanReview stage): not terminal, between processing and the ends.
AWAITING_REVIEW = "awaiting_review"
COMPLETED = "completed"
COMPLETED_WITH_WARNINGS = "completed_with_warnings"
FAILED = "failed"
CANCELLED = "cancelled"

JOB_STATUSES = (
    QUEUED,
    PROCESSING,
    AWAITING_REVIEW,
    COMPLETED,
    COMPLETED_WITH_WARNINGS,
    FAILED,
    CANCELLED,
)
SUCCEEDED = frozenset({COMPLETED, COMPLETED_WITH_WARNINGS})
TERMINAL = frozenset({COMPLETED, COMPLETED_WITH_WARNINGS, FAILED, CANCELLED})

GROUP_PENDING = "pending"
GROUP_PROCESSING = "processing"
GROUP_COMPLETED = "completed"
GROUP_PARTIAL = "partial"
GROUP_FAILED = "failed"
GROUP_CANCELLED = "cancelled"
GROUP_STATUSES = (
    GROUP_PENDING,
    GROUP_PROCESSING,
    GROUP_COMPLETED,
    GROUP_PARTIAL,
    GROUP_FAILED,
    GROUP_CANCELLED,
)
GROUP_TERMINAL = frozenset({GROUP_COMPLETED, GROUP_PARTIAL, GROUP_FAILED, GROUP_CANCELLED})

# Progress stream messages (WebSocket and SSE): a snapshot first, then one per job end (and
# one per entry of a job into awaiting_review), and group.completed last.
SNAPSHOT = "snapshot"
JOB_COMPLETED = "job.completed"
JOB_FAILED = "job.failed"
JOB_CANCELLED = "job.cancelled"
JOB_REVIEW_REQUESTED = "job.review_requested"
GROUP_COMPLETED_EVENT = "group.completed"

# Webhook events: one per job that ends with a result to report (a cancel sends none), and
# one per entry into awaiting_review (no ``data``: the reviewer fetches the job).
TRANSLATION_COMPLETED = "translation.completed"
TRANSLATION_FAILED = "translation.failed"
TRANSLATION_REVIEW_REQUESTED = "translation.review_requested"

# Outcomes of one webhook delivery attempt, as the delivery log shows them.
DELIVERED = "delivered"  # the receiver answered 2xx
RETRYING = "retrying"  # failed; another attempt is scheduled
DELIVERY_FAILED = "failed"  # failed for good: refused, gone (410) or the schedule exhausted
SKIPPED = "skipped"  # nowhere to send it (no callbackUrl, no default URL)
SUPERSEDED = "superseded"  # a retry of the job replaced this event before its next attempt
DELIVERY_OUTCOMES = (DELIVERED, RETRYING, DELIVERY_FAILED, SKIPPED, SUPERSEDED)

# A job's step records (``steps[]``): how each step of its pipeline ended.
STEP_COMPLETED = "completed"
STEP_FAILED = "failed"
STEP_SKIPPED = "skipped"
# The humanReview step while its job awaits review (GET job shows it so).
STEP_WAITING = "waiting"
STEP_STATUSES = (STEP_COMPLETED, STEP_FAILED, STEP_SKIPPED, STEP_WAITING)

# The stages a job may run after ``translate``, in the order they run (API.md, "Pipeline
# stages"), by their wire names: the keys of ``pipelineConfig`` and of an engine's
# ``pipeline``.
AI_REVIEW = "aiReview"
HUMAN_REVIEW = "humanReview"
BACK_TRANSLATION = "backTranslation"
PIPELINE_STAGES = (AI_REVIEW, HUMAN_REVIEW, BACK_TRANSLATION)
# The first step of every job, before the stages (its ``stepId``).
TRANSLATE_STEP = "translate"
# The threshold of an ``aiReview`` that names none (the API's example value).
AI_REVIEW_THRESHOLD = 80

# humanReview (API.md, "Pipeline stages"): what a reviewer does, what a timeout does, how
# many rounds a job may be reviewed (the third reject fails it), and the refusal of a
# review of a job that is not waiting for one (the API's 409, the update's validator).
APPROVE = "approve"
REJECT = "reject"
REVIEW_ACTIONS = (APPROVE, REJECT)
ON_TIMEOUT_CONTINUE = "continue"
ON_TIMEOUT_FAIL = "fail"
ON_TIMEOUT = (ON_TIMEOUT_CONTINUE, ON_TIMEOUT_FAIL)
REVIEW_MAX_ROUNDS = 3
REVIEW_TIMEOUT_MAX_SECONDS = 30 * 24 * 3600
NOT_AWAITING_REVIEW = "the job is not awaiting review"
REVIEW_REJECTED_OUT = "the translation was rejected in review 3 times"
REVIEW_TIMED_OUT_ERROR = "no review came before the review timeout"
STRUCTURE_PREFIX = "structure:"  # of a structure_digest
REVIEW_ROUND_PASSED = "the review was for an earlier round of this job"
EDIT_STRUCTURE = (
    "data: the edited data must have exactly the source's structure (the same keys, arrays of"
    " the same length, the same non-string values); POST /jobs/localization/{jobId}/review"
    " names the keys"
)

# Warning codes of the stages (API.md, "Pipeline stages"): a string still scored under the
# threshold after its re-translation, a string whose back-translation still drifts after
# its correction, a string no reviewer gave a verdict on (``localization/review.py`` uses
# the same words), and a stage that failed for good (its draft stays the job's output).
LOW_QUALITY_SCORE = "low_quality_score"
BACK_TRANSLATION_DRIFT = "back_translation_drift"
NOT_REVIEWED = "not_reviewed"
STAGE_FAILED = "stage_failed"
REVIEW_TIMED_OUT = "review_timed_out"

# Per-organization quotas (API.md, "Quotas, budgets and usage"), by their wire names (GET
# /usage ``limits``; ``tolk orgs limits`` options), and the job errors of spending limits.
REQUESTS_PER_MINUTE = "requestsPerMinute"
ACTIVE_GROUPS = "activeGroups"
MONTHLY_BUDGET_USD = "monthlyBudgetUsd"
MONTHLY_TOKENS = "monthlyTokens"
QUOTAS = (REQUESTS_PER_MINUTE, ACTIVE_GROUPS, MONTHLY_BUDGET_USD, MONTHLY_TOKENS)
BUDGET_EXCEEDED = "budget_exceeded"
COST_LIMIT_REACHED = "cost_limit_reached"

# The webhook delivery schedule of the contract (API.md, Webhooks): the waits between the
# attempts of one event, and how long one attempt may take. The settings default to it.
WEBHOOK_DELAYS_SECONDS = (5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0)
WEBHOOK_TIMEOUT_SECONDS = 15.0

# The statuses a job's event log entry is written for (workflows/event_log.py): its ends,
# and each entry into awaiting_review.
LOGGED = TERMINAL | {AWAITING_REVIEW}

# What a retry runs again.
RETRYABLE = frozenset({FAILED, CANCELLED})


def success_status(warnings: Iterable[Any]) -> str:
    """The status of a job that stored its output with these warnings."""
    return COMPLETED_WITH_WARNINGS if any(True for _ in warnings) else COMPLETED


def group_status(job_statuses: Iterable[str]) -> str:
    """A group's status from its jobs': pending while all are queued, processing while any
    is not terminal (one awaiting review included), then how they ended."""
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
        "awaitingReviewJobs": statuses.count(AWAITING_REVIEW),
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


def stream_event(job_status: str) -> str:
    """The progress stream's message type for a job that reached ``job_status`` (a
    terminal status, or awaiting_review)."""
    kinds = {FAILED: JOB_FAILED, CANCELLED: JOB_CANCELLED, AWAITING_REVIEW: JOB_REVIEW_REQUESTED}
    return kinds.get(job_status, JOB_COMPLETED)


def webhook_event(job_status: str) -> str:
    """The webhook event type for a job that reached ``job_status`` (completed, failed or
    awaiting_review)."""
    if job_status == AWAITING_REVIEW:
        return TRANSLATION_REVIEW_REQUESTED
    return TRANSLATION_FAILED if job_status == FAILED else TRANSLATION_COMPLETED


def effective_pipeline(
    engine: Mapping[str, Any] | None, request: Mapping[str, Any] | None
) -> dict[str, dict[str, Any]]:
    """The pipeline a group's jobs run: the engine's ``pipeline``, overridden stage by stage
    by the request's ``pipelineConfig``. A stage the request gives replaces the engine's
    setting of that stage whole; a stage it omits (or gives as null) keeps the engine's.
    Both arguments and the result are in wire form (``{"aiReview": {"enabled": true,
    "threshold": 80}}``), stages in pipeline order; stages neither names are absent."""
    chosen = {**_given(engine), **_given(request)}
    return {stage: chosen[stage] for stage in PIPELINE_STAGES if stage in chosen}


def _given(stages: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    return {name: dict(stage) for name, stage in (stages or {}).items() if stage is not None}


def enabled_stages(pipeline: Mapping[str, Any] | None) -> list[str]:
    """The stages of a pipeline (wire form) that are switched on, in pipeline order."""
    given = _given(pipeline)
    return [stage for stage in PIPELINE_STAGES if given.get(stage, {}).get("enabled") is True]


def structure(data: Any, path: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
    """The structure an edit of a job's output must keep (API.md, "Pipeline stages"), node
    by key path: ``"{}"`` or ``"[]"`` for an object or array, ``"str"`` for a string (its
    text is free), any other value as it is. An empty object or array is a node too."""
    if isinstance(data, dict):
        nodes: dict[tuple[str, ...], Any] = {path: "{}"}
        for key, value in data.items():
            nodes.update(structure(value, (*path, str(key))))
        return nodes
    if isinstance(data, list):
        nodes = {path: "[]"}
        for index, value in enumerate(data):
            nodes.update(structure(value, (*path, str(index))))
        return nodes
    return {path: "str" if isinstance(data, str) else data}


def structure_digest(data: Any) -> str:
    """A digest of ``structure(data)``: equal for a document and any edit of it that keeps
    its structure. The job workflow holds the source's, so the ``review`` update's validator
    can check an edit sent with it, without the source's content in its history."""
    nodes = sorted(
        ([*path], kind if isinstance(kind, str) else [type(kind).__name__, kind])
        for path, kind in structure(data).items()
    )
    encoded = json.dumps(nodes, ensure_ascii=False, separators=(",", ":"))
    return STRUCTURE_PREFIX + hashlib.sha256(encoded.encode()).hexdigest()
