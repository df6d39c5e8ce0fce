"""The worker's own metrics, on the Temporal SDK's meter: exported beside the SDK's worker
metrics on the worker's Prometheus endpoint (``worker.metrics_address``), with the
activity's namespace, task queue and type as labels.

One function per event, called where the event happens (a line each): a job's end stored,
a webhook attempt recorded, a provider call answered or failed. Outside an activity (the
API's synchronous ``/process`` routes call providers too) there is no such meter and
nothing is counted: the API's own metrics are in ``api/metrics.py``.

Names as Prometheus shows them (``counters_total_suffix``; durations in milliseconds):
``tolk_jobs_ended_total{status}``, ``tolk_webhook_attempts_total{outcome}``,
``tolk_provider_call_latency_bucket{provider,outcome}`` and
``tolk_provider_errors_total{provider,kind}``.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity
from temporalio.common import MetricMeter

JOBS_ENDED = "tolk_jobs_ended"
WEBHOOK_ATTEMPTS = "tolk_webhook_attempts"
PROVIDER_CALL_LATENCY = "tolk_provider_call_latency"
PROVIDER_ERRORS = "tolk_provider_errors"


def _meter() -> MetricMeter | None:
    try:
        return activity.metric_meter()
    except RuntimeError:  # not in an activity
        return None


def job_ended(status: str) -> None:
    """A job's terminal status was stored by this activity attempt."""
    if (meter := _meter()) is not None:
        meter.create_counter(JOBS_ENDED, "Jobs that ended, by status").add(1, {"status": status})


def webhook_attempt(outcome: str) -> None:
    """A webhook attempt was recorded: delivered, retrying, failed or skipped."""
    if (meter := _meter()) is not None:
        meter.create_counter(WEBHOOK_ATTEMPTS, "Webhook attempts, by outcome").add(
            1, {"outcome": outcome}
        )


def provider_call(provider: str, seconds: float, error: str | None) -> None:
    """One call to an LLM provider took ``seconds``; ``error`` is the kind of its failure
    (``timeout``, ``unreachable``, ``http_429``, ``malformed``...), None when it answered."""
    if (meter := _meter()) is None:
        return
    outcome = "ok" if error is None else "error"
    meter.create_histogram_timedelta(
        PROVIDER_CALL_LATENCY, "LLM provider calls, connect to last byte"
    ).record(timedelta(seconds=seconds), {"provider": provider, "outcome": outcome})
    if error is not None:
        provider_error(provider, error)


def provider_error(provider: str, kind: str) -> None:
    """A provider call failed (or its answer was unusable), by kind."""
    if (meter := _meter()) is not None:
        meter.create_counter(PROVIDER_ERRORS, "LLM provider call failures, by kind").add(
            1, {"provider": provider, "kind": kind}
        )
