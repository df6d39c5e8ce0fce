"""Traces and log lines of every Tolk process: the one place that knows OpenTelemetry.

Tracing is on when an OTLP endpoint is configured (``telemetry.otlp_endpoint`` or the
standard ``OTEL_EXPORTER_OTLP_ENDPOINT``); then spans go out in batches, and Temporal's
``TracingInterceptor`` carries the context from ``POST /jobs/localization`` through the
group workflow, its job workflows and their activities to the webhook's HTTP POST. Off, no
provider, no interceptor and no middleware exist: nothing is paid.

Span attributes are ids, locales, counts and codes, never user content.

Logs: ``log.format: json`` writes one object per line with the group, job and trace ids
that are known where the line is written (docs/operations.md, "Logs").
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import IO, TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import (
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
)
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from temporalio import activity

if TYPE_CHECKING:
    from settings import Settings

API_SERVICE = "tolk-api"
WORKER_SERVICE = "tolk-worker"
TRACER_NAME = "tolk"
# Workflow ids are the group's and the job's ids (starter.py; redeliveries add a suffix).
GROUP_PREFIX, JOB_PREFIX = "ljg_", "ljb_"

TEXT_FORMAT = "%(asctime)s %(name)s %(levelname)s %(message)s"

# What crosses HTTP, in and out: W3C trace context only (traceparent, tracestate). Not a
# caller's baggage, which would ride along into Temporal headers and webhook requests.
W3C = TraceContextTextMapPropagator()

_provider: TracerProvider | None = None


# --- traces -------------------------------------------------------------------------------


class _InboundRoots(Sampler):
    """A trace starts where work comes in (a request, an activity), not at an outgoing
    call of a background loop: the progress hub's queries and the reconciler's pokes are
    Temporal client calls without a parent, which would each be a trace of one span."""

    def should_sample(
        self,
        parent_context: Any,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Any = None,
        links: Any = None,
        trace_state: Any = None,
    ) -> SamplingResult:
        if kind == SpanKind.CLIENT:
            return SamplingResult(Decision.DROP)
        return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes)

    def get_description(self) -> str:
        return "InboundRoots"


def otlp_endpoint(settings: Settings) -> str:
    """The collector's base URL: the setting, else the standard environment variable."""
    return settings.telemetry_otlp_endpoint or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "")


def service_name(settings: Settings, default: str) -> str:
    return os.environ.get("OTEL_SERVICE_NAME") or settings.telemetry_service_name or default


def setup_tracing(
    settings: Settings, default_service: str, *, exporter: SpanExporter | None = None
) -> bool:
    """Install this process's tracer provider, once; True when tracing is on.

    ``exporter``: where spans go instead of OTLP (tests use an in-memory one)."""
    global _provider
    if _provider is not None:
        return True
    if exporter is None:
        endpoint = otlp_endpoint(settings)
        if not endpoint:
            return False
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(endpoint=f"{endpoint.rstrip('/')}/v1/traces")
    provider = TracerProvider(
        resource=Resource.create({SERVICE_NAME: service_name(settings, default_service)}),
        sampler=ParentBased(root=_InboundRoots()),
    )
    provider.add_span_processor(BatchSpanProcessor(exporter))
    _provider = provider
    return True


def tracing_on() -> bool:
    return _provider is not None


def flush_tracing() -> None:
    """Export the spans ended so far (before a process exits, or a test reads them)."""
    if _provider is not None:
        _provider.force_flush()


def shutdown_tracing() -> None:
    """Export what is left and switch tracing off for this process."""
    global _provider
    if _provider is not None:
        _provider.shutdown()
        _provider = None


def tracer() -> trace.Tracer | None:
    return _provider.get_tracer(TRACER_NAME) if _provider is not None else None


def temporal_interceptors() -> list[Any]:
    """For ``Client.connect``: the SDK's tracing interceptor when tracing is on. On a
    client it also applies to the workers built on that client (workflows, activities)."""
    spans = tracer()
    if spans is None:
        return []
    from temporalio.contrib.opentelemetry import TracingInterceptor

    return [TracingInterceptor(spans)]


@contextlib.asynccontextmanager
async def webhook_attempt(record: Any, headers: dict[str, str]) -> AsyncIterator[None]:
    """Around one webhook HTTP POST: a ``webhook.deliver`` span (event id, job id, attempt,
    series, HTTP status, outcome) and its W3C ``traceparent`` in ``headers``, so that a
    receiver can join the trace. ``record`` is the attempt's ``Delivery`` row, whose
    ``status_code`` is read at the end. Nothing when tracing is off."""
    spans = tracer()
    if spans is None:
        yield
        return
    attributes = {
        "tolk.event_id": record.event_id,
        "tolk.job_id": record.job_id,
        "tolk.webhook.attempt": record.attempt,
        "tolk.webhook.series": record.series,
    }
    with spans.start_as_current_span(
        "webhook.deliver",
        kind=SpanKind.CLIENT,
        attributes=attributes,
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        W3C.inject(headers)
        try:
            yield
        except BaseException as err:  # a timeout, a refused connection, a cancellation
            span.set_attribute("error.type", type(err).__name__)
            span.set_attribute("tolk.webhook.outcome", "error")
            span.set_status(Status(StatusCode.ERROR, type(err).__name__))
            raise
        status = record.status_code
        if status is not None:
            span.set_attribute("http.response.status_code", status)
        delivered = status is not None and 200 <= status < 300
        span.set_attribute("tolk.webhook.outcome", "delivered" if delivered else "failed")
        if not delivered:
            span.set_status(Status(StatusCode.ERROR, f"HTTP {status}"))


# --- ids for log lines and spans ----------------------------------------------------------

# The ids one API request is about (set up per request by api/request_telemetry.py).
_request_ids: ContextVar[dict[str, str] | None] = ContextVar("tolk_request_ids", default=None)


@contextlib.contextmanager
def request_ids(ids: Mapping[str, str]) -> Iterator[dict[str, str]]:
    """The ids of the request being served, for its log lines; ``bind_ids`` adds more."""
    holder = dict(ids)
    token = _request_ids.set(holder)
    try:
        yield holder
    finally:
        _request_ids.reset(token)


def bind_ids(**ids: str) -> None:
    """Name the group or job the current request turned out to be about (the group a POST
    created): on its later log lines, and on its span. Outside a request: nothing."""
    holder = _request_ids.get()
    if holder is not None:
        holder.update(ids)
    span = trace.get_current_span()
    if span.is_recording():
        for key, value in ids.items():
            span.set_attribute(f"tolk.{key}", value)


def ids_of_workflow(workflow_id: str | None) -> dict[str, str]:
    """A workflow's id names its group or its job (``ljb_...-redeliver``: the job)."""
    if not workflow_id:
        return {}
    head = workflow_id.split("-", 1)[0]
    if head.startswith(GROUP_PREFIX):
        return {"group_id": head}
    if head.startswith(JOB_PREFIX):
        return {"job_id": head}
    return {}


def log_ids(record: logging.LogRecord) -> dict[str, str]:
    """The ids known where ``record`` was written: the request's in the API; in the
    worker the workflow's, from the SDK's logger details or the running activity."""
    ids = dict(_request_ids.get() or {})
    details = getattr(record, "temporal_activity", None) or getattr(
        record, "temporal_workflow", None
    )
    workflow_id = details.get("workflow_id") if isinstance(details, Mapping) else None
    if workflow_id is None and activity.in_activity():
        workflow_id = activity.info().workflow_id
    ids.update(ids_of_workflow(workflow_id))
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        ids["trace_id"] = trace.format_trace_id(context.trace_id)
        ids["span_id"] = trace.format_span_id(context.span_id)
    return ids


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and the ids it is about."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **log_ids(record),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure_logging(
    log_format: str,
    level: str | int,
    filters: Sequence[logging.Filter] = (),
    *,
    stream: IO[str] | None = None,
) -> None:
    """The process's one log handler (stderr), text or JSON, with ``filters`` on it."""
    handler = logging.StreamHandler(stream or sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
        # The ids are fields of the line: the SDK need not repeat its details in messages.
        activity.logger.activity_info_on_message = False
        from temporalio import workflow

        workflow.logger.workflow_info_on_message = False
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    for log_filter in filters:
        handler.addFilter(log_filter)
    logging.basicConfig(
        level=level.upper() if isinstance(level, str) else level, handlers=[handler], force=True
    )
    # httpx logs each request's URL at INFO: a callback URL may carry a receiver's secret
    # (a token in its query), and the delivery log already records every attempt.
    logging.getLogger("httpx").setLevel(logging.WARNING)
