"""Inputs, outputs and names shared by workflows and activities.

Everything here is small and free of user content: documents travel by reference
(a job id or a blob hash), never by value.
"""

from dataclasses import dataclass, field
from typing import Any

import contract

# Activity names: workflows call activities by name so they never import I/O code.
TRANSLATE_JOB = "translate_job"
RECORD_JOB_RESULT = "record_job_result"
RECORD_GROUP_RESULT = "record_group_result"
RESET_JOBS = "reset_jobs"
DELIVER_WEBHOOK = "deliver_webhook"
RECONCILE_GROUPS = "reconcile_groups"
# The stages after translate (a job whose pipeline switches them on): each replaces the
# job's draft; finish_job stores the draft as the output.
REVIEW_JOB = "review_job"
BACK_TRANSLATE_JOB = "back_translate_job"
FINISH_JOB = "finish_job"
# humanReview: mark the job awaiting review (and tell its group); store a review that came
# with its content through the workflow update (an operator's ``temporal`` CLI).
AWAIT_REVIEW_JOB = "await_review_job"
STORE_REVIEW = "store_review"
# The workflow update a review arrives by (the API, or ``temporal workflow update``).
REVIEW_UPDATE = "review"

# Signal from a job's activities to its group: the job's end is stored (translate_job on
# success, record_job_result on failure).
SIGNAL_JOB_FINISHED = "job_finished"
# ... and a job entering awaiting_review or leaving it for another round (await_review_job,
# translate_job after a reject): ``JobFinished`` with that status.
SIGNAL_JOB_REVIEW = "job_review"

# The error type of an activity attempt that failed because the database was away
# (activities/failures.py); the workflows run such activities again (workflows/outages.py).
DATABASE_UNAVAILABLE = "DatabaseUnavailable"
# ... of one that found no place at a provider's shared rate limit (its details: the
# seconds until there is one); the workflows wait that long and run it again, holding no
# worker meanwhile and using up none of its attempts (workflows/outages.py).
PROVIDER_BUSY = "ProviderBusy"
# ... and of one that found no row for its job: not worth another attempt.
JOB_ROW_MISSING = "JobRowMissing"


@dataclass
class WebhookOptions:
    """The delivery schedule of a job's webhook event: the waits between attempts of one
    event, and each attempt's timeout (``settings.py::webhook_options``)."""

    delays_seconds: list[float]
    timeout_seconds: float


def contract_schedule() -> WebhookOptions:
    """The contract's delivery schedule (API.md, Webhooks), which the settings default to.
    Only for inputs from before webhook delivery existed: they have no ``webhook`` in their
    options, and the jobs such a group starts now deliver on this schedule."""
    return WebhookOptions(
        delays_seconds=list(contract.WEBHOOK_DELAYS_SECONDS),
        timeout_seconds=contract.WEBHOOK_TIMEOUT_SECONDS,
    )


@dataclass
class JobOptions:
    """Operator settings the API passes in at start (workflows cannot read configuration;
    ``settings.py::job_options`` builds them)."""

    translate_max_attempts: int
    translate_initial_interval_seconds: float
    translate_timeout_seconds: float
    translate_heartbeat_seconds: float
    linger_seconds: int
    search_attributes: bool
    webhook: WebhookOptions = field(default_factory=contract_schedule)
    # humanReview with no timeoutSeconds / onTimeout of its own (settings.py; None only in
    # inputs recorded before human review).
    review_timeout_seconds: int | None = None
    review_on_timeout: str | None = None
    # The search attribute ``TolkJobStatus`` is registered (settings.py): a job in review
    # says so on its workflow, for operators to list the jobs awaiting review.
    job_status_attribute: bool = False


@dataclass
class PipelineOptions:
    """The stages a group's jobs run after ``translate``, from the group's effective
    pipeline as accepted (``contract.effective_pipeline``; ``starter.py`` builds this from
    the group's row, so a later change of the engine does not reach an accepted group).
    A stage that is off is False and has no settings; a setting left out is None (the
    stage's own default). Numbers, booleans and model names only, never content."""

    ai_review: bool = False
    ai_review_threshold: int | None = None  # 0-100
    ai_review_model: str | None = None  # the reviewer; None: the engine's chain
    human_review: bool = False
    human_review_timeout_seconds: int | None = None
    human_review_on_timeout: str | None = None  # "continue" | "fail"
    back_translation: bool = False


@dataclass
class JobRef:
    job_id: str
    target_locale: str


@dataclass
class GroupInput:
    group_id: str
    organization_id: str
    engine_id: str
    source_locale: str
    jobs: list[JobRef]
    options: JobOptions
    # A later run of a group whose workflow had closed (a retry after the group finished,
    # or after ``temporal workflow cancel``): the jobs' terminal statuses so far (such jobs
    # are not started again) and the event log, which the new run continues.
    statuses: dict[str, str] = field(default_factory=dict)
    log: list[list[Any]] = field(default_factory=list)
    # The stages after translate; None when none is switched on (and in inputs recorded
    # before pipelines existed).
    pipeline: PipelineOptions | None = None


@dataclass
class LocaleJobInput:
    job_id: str
    group_id: str
    organization_id: str
    source_locale: str
    target_locale: str
    options: JobOptions
    pipeline: PipelineOptions | None = None  # the group's (GroupInput.pipeline)
    # The activity that stores the job's end makes the first attempt of its webhook
    # (``TranslateJobInput.deliver``), and the group hears of the end from this workflow's
    # completion; False in inputs recorded before (workflows/group.py, LEAN_JOBS).
    deliver_on_store: bool = False


@dataclass
class LocaleJobResult:
    status: str
    error: str | None = None


@dataclass
class DeliverWebhookInput:
    """Deliver the terminal event of a job. ``event_id`` is the ``webhook-id``: the same on
    every attempt and every redelivery of the event."""

    job_id: str
    event_id: str
    options: WebhookOptions
    series: int = 1
    # The event to send: None for the job's terminal event (by its status); or
    # ``translation.review_requested`` (no data), sent whatever the job's status is by then.
    event: str | None = None
    # The number of this series' first attempt made by this activity: 2 when the activity
    # that stored the job made attempt 1 (``FirstAttempt``).
    first_attempt: int = 1


@dataclass
class FirstAttempt:
    """How the first attempt of a job's webhook went, made by the activity that stored the
    job's end: ``outcome`` is ``contract.DELIVERED``, ``SKIPPED`` or ``DELIVERY_FAILED``
    (the series ended there: gone, refused), or ``RETRYING`` (attempt 2 is due in
    ``retry_in_seconds``)."""

    outcome: str
    retry_in_seconds: float = 0.0


@dataclass
class TranslateJobInput:
    job_id: str
    # Store the output as the job's draft, for the stages after translate, and keep the job
    # processing (the group is told by finish_job); else store it as the output.
    draft: bool = False
    # After a reject in review: translate again with the review's comment (the stored
    # review ``review_id``) as an instruction; the job leaves awaiting_review.
    review_id: str | None = None
    # The terminal event's delivery: once the output is stored, the activity makes its first
    # attempt itself (``TranslateJobResult.webhook``). None: the job's workflow delivers it.
    deliver: DeliverWebhookInput | None = None


@dataclass
class StageJobInput:
    """Run a stage (review_job, back_translate_job) on a job's draft. The stage's settings
    are numbers and model names only (``PipelineOptions``); the texts are read by the
    activity."""

    job_id: str
    threshold: int | None = None  # aiReview: None is ``contract.AI_REVIEW_THRESHOLD``
    model: str | None = None  # aiReview: the reviewer, ``provider/model``; None: the engine's
    # backTranslation after humanReview: the approving review, whose edit (if any) is the
    # translation it checks instead of the draft.
    review_id: str | None = None


@dataclass
class StageJobResult:
    """How the stage ended (a step status) and the warnings it added."""

    status: str
    warnings: int


@dataclass
class FinishJobInput:
    """Store a job's draft as its output with the success status. ``failed_stages``: the
    stages that failed for good (each gets a warning, and a failed step if it has none)."""

    job_id: str
    failed_stages: list[str] = field(default_factory=list)
    # humanReview: the approving review (its edited data, if any, becomes the output), or
    # a timeout that continued (a review_timed_out warning); the rounds reviewed.
    review_id: str | None = None
    review_timed_out: bool = False
    review_rounds: int = 0
    deliver: DeliverWebhookInput | None = None  # as TranslateJobInput.deliver


@dataclass
class AwaitReviewInput:
    """Mark a job awaiting review (round ``round``, due ``timeout_seconds`` from now) and
    tell its group."""

    job_id: str
    group_id: str
    round: int
    timeout_seconds: int


@dataclass
class ReviewInput:
    """The ``review`` update. From the API: the action and ``review_id``, the review stored
    in the database first (edited data, comment); no content. From an operator's CLI it
    may carry ``data`` and ``comment`` instead: then they enter the workflow's history."""

    action: str  # contract.APPROVE | contract.REJECT
    review_id: str | None = None
    # The round the review was made in (the API's; None from the CLI): a review of an
    # earlier round is refused, so nobody approves a translation they have not seen.
    round: int | None = None
    data: Any | None = None
    comment: str | None = None
    reviewer: str | None = None


@dataclass
class StoreReviewInput:
    """Validate and store a review that came with its content (``ReviewInput`` from the
    CLI); answers the stored review's id, or raises a non-retryable error naming keys."""

    job_id: str
    round: int
    review: ReviewInput


@dataclass
class TranslateJobResult:
    """The job's success status, already stored with its output by the activity."""

    strings: int
    warnings: int
    status: str
    # The first attempt of the terminal webhook, when the input asked for it (``deliver``)
    # and it was made; None: the job's workflow delivers the event from attempt 1.
    webhook: FirstAttempt | None = None


@dataclass
class RecordJobResultInput:
    """Record a job's terminal status. The activity answers with the status the job has
    afterwards: a job already terminal keeps its status (a retry of the record, or a
    cancel that came after the output was stored)."""

    job_id: str
    status: str
    error: str | None = None
    # The group to tell once the job's end is stored (a job's own workflow sets it on a
    # failure); not told when another end stands.
    group_id: str | None = None


@dataclass
class RecordGroupResultInput:
    group_id: str
    status: str
    log: list[list[Any]] = field(default_factory=list)  # workflows/event_log.py event log


@dataclass
class ResetJobsInput:
    group_id: str
    job_ids: list[str]


@dataclass
class JobFinished:
    job_id: str
    status: str
    error: str | None = None


@dataclass
class ReconcileInput:
    """Settings of the reconciler workflow (workflows/reconciler.py), built by
    ``settings.reconcile_options``."""

    interval_seconds: float
    # An accepted group whose workflow does not exist this long after its creation is
    # started by the reconciler (the API normally starts it within milliseconds).
    grace_seconds: float
    passes_per_run: int = 200  # then continue-as-new, so the history stays short


@dataclass
class ReconcileResult:
    """What one reconciler pass did (counts and ids only)."""

    started: list[str] = field(default_factory=list)  # groups whose workflow it started
    closed: list[str] = field(default_factory=list)  # groups it closed (workflow terminated)
    checked: int = 0
