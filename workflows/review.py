"""What the humanReview wait of ``LocaleJobWorkflow`` works with: the settings a job
waits with, a decision its ``review`` update brings, and how the review ended. Pure and
deterministic (workflow code)."""

from __future__ import annotations

from dataclasses import dataclass

from temporalio import workflow
from temporalio.common import SearchAttributeKey

import contract
from workflows.messages import LocaleJobInput, ReviewInput

# The job's status on the workflow of a job in review (``awaiting_review`` while it waits,
# ``processing`` once a review or the timeout came), when the attribute is registered:
# ``temporal workflow list --query "TolkJobStatus='awaiting_review'"``.
SA_JOB_STATUS = SearchAttributeKey.for_keyword("TolkJobStatus")


@dataclass
class Decision:
    action: str  # contract.APPROVE | contract.REJECT
    review_id: str  # the stored review (its edit or comment is read by the activities)


@dataclass
class ReviewEnd:
    """How the review ended: the approving review, or a timeout that continued."""

    review_id: str | None = None
    timed_out: bool = False
    rounds: int = 0


def review_settings(job: LocaleJobInput) -> tuple[int, str]:
    """The wait's timeout in seconds and what its end does: the group's humanReview
    settings, else the server's (``settings.py``, passed in ``JobOptions``)."""
    stages, options = job.pipeline, job.options
    timeout = (stages.human_review_timeout_seconds if stages else None) or (
        options.review_timeout_seconds
    )
    on_timeout = (stages.human_review_on_timeout if stages else None) or options.review_on_timeout
    # Inputs always carry the server's; the contract's maximum is only the last resort.
    return (
        timeout or contract.REVIEW_TIMEOUT_MAX_SECONDS,
        on_timeout or contract.ON_TIMEOUT_CONTINUE,
    )


def show_review_status(job: LocaleJobInput, status: str, details: str) -> None:
    """Say where the review stands on the job's workflow: its current details in the
    Temporal UI, and ``TolkJobStatus`` when registered (the upsert is a command: part of
    the ``human-review`` change of ``LocaleJobWorkflow``)."""
    workflow.set_current_details(details)
    if job.options.job_status_attribute:
        workflow.upsert_search_attributes([SA_JOB_STATUS.value_set(status)])


def review_refused(review: ReviewInput, waiting: int | None, structure: str | None) -> str | None:
    """Why the ``review`` update's validator refuses ``review`` (before anything enters
    history), None when it may be taken. ``waiting``: the round open to reviews (None: the
    job is not waiting, or has its decision); ``structure``: the source's structure digest.
    Refused: a job not waiting, a review made in an earlier round, an unknown action, and
    one sent with its content that is not whole (a reject without a comment, data on a
    reject, an edit whose structure is not the source's). The placeholders and tags of an
    edit sent with the update are checked by ``store_review``, which has the source's text
    (the API checks all of it before it stores a review and sends its id)."""
    if waiting is None:
        return contract.NOT_AWAITING_REVIEW
    if review.round is not None and review.round != waiting:
        return contract.REVIEW_ROUND_PASSED
    if review.action not in contract.REVIEW_ACTIONS:
        return f"action must be one of {', '.join(contract.REVIEW_ACTIONS)}"
    if review.review_id is not None:
        return None
    if review.action == contract.REJECT:
        if not (review.comment or "").strip():
            return "comment: a reject needs a comment"
        if review.data is not None:
            return "data: only an approve carries edited data"
    elif review.data is not None and structure is not None:
        if contract.structure_digest(review.data) != structure:
            return contract.EDIT_STRUCTURE
    return None
