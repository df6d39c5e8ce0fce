"""Webhook delivery as workflow code: the event id of a job's terminal event, the retry
schedule of the API contract on top of one delivery activity, and the small workflow behind
manual redelivery."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

from workflows.messages import DELIVER_WEBHOOK, DeliverWebhookInput, WebhookOptions
from workflows.outages import database_unavailable, wait_for_database

# Error types the delivery activity raises when an event must not be tried again.
WEBHOOK_GONE = "WebhookGone"  # the receiver answered 410
WEBHOOK_REFUSED = "WebhookRefused"  # the URL is not allowed (SSRF rules)
WEBHOOK_GAVE_UP = "WebhookGaveUp"  # the schedule is exhausted


def job_event_id(job_id: str, run_id: str | None, last_recorded: str | None = None) -> str:
    """The ``webhook-id`` of a job's terminal event, decided here for every sender: the job's
    workflow run sends it and a redelivery sends it again. Derived from the run, so stable
    across replays, retries and redeliveries of the event, and a new run of the job (an API
    retry) is a new event. With no run known (the job's workflow is gone after retention),
    the last event recorded for the job, or else one derived from the job alone."""
    if run_id is None:
        return last_recorded or f"msg_{job_id.removeprefix('ljb_')}"
    return f"msg_{job_id.removeprefix('ljb_')}{run_id.replace('-', '')[:12]}"


def review_event_id(job_id: str, run_id: str, round_: int) -> str:
    """The ``webhook-id`` of a job's ``translation.review_requested`` in review round
    ``round_``: one event per entry into awaiting_review, distinct from the terminal one."""
    return f"{job_event_id(job_id, run_id)}r{round_}"


def delivery_retry_policy(options: WebhookOptions, first_attempt: int = 1) -> RetryPolicy:
    """Attempts: one plus one per scheduled delay (those from ``first_attempt`` on). The
    activity sets each wait itself (``next_retry_delay``: the schedule's step, or a longer
    Retry-After); the intervals here only apply when an attempt dies without answering
    (worker crash, timeout)."""
    delays = options.delays_seconds or [5.0]
    return RetryPolicy(
        initial_interval=timedelta(seconds=delays[0]),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(seconds=max(delays)),
        maximum_attempts=max(1, len(delays) + 2 - first_attempt),
        non_retryable_error_types=[WEBHOOK_GONE, WEBHOOK_REFUSED, WEBHOOK_GAVE_UP],
    )


async def deliver_event(delivery: DeliverWebhookInput, summary: str) -> bool:
    """Run one series of delivery attempts to its end. True when the receiver took it.
    A failed delivery is recorded by the activity and never fails the caller; a series
    that ended because the database was away starts again once it is back."""
    rounds = 0
    while True:
        try:
            await workflow.execute_activity(
                DELIVER_WEBHOOK,
                delivery,
                # Each attempt is bounded by the HTTP timeout; this is the backstop.
                start_to_close_timeout=timedelta(seconds=delivery.options.timeout_seconds + 15),
                retry_policy=delivery_retry_policy(delivery.options, delivery.first_attempt),
                summary=summary,
            )
            return True
        except ActivityError as err:
            if database_unavailable(err):
                rounds += 1
                await wait_for_database(rounds, f"webhook {delivery.event_id}")
                continue
            workflow.logger.info("webhook %s not delivered: %s", delivery.event_id, err.cause)
            return False


@workflow.defn(name="WebhookRedeliveryWorkflow")
class WebhookRedeliveryWorkflow:
    """``POST /jobs/localization/{jobId}/redeliver``: the job's terminal event once more, a
    new series of attempts with the same ``webhook-id``. Its workflow id is
    ``<job id>-redeliver``, so one redelivery per job runs at a time."""

    @workflow.run
    async def run(self, delivery: DeliverWebhookInput) -> bool:
        return await deliver_event(delivery, f"redeliver {delivery.event_id}")
