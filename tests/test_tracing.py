"""One group, one trace: the API and a worker in this process (the real app under uvicorn on
loopback, the real worker with its real activities) on a Temporal dev server of their own,
their spans in an in-memory exporter. The POST's span is the root; the group workflow, each
job workflow, their activities and every webhook attempt hang under it, and the receiver
gets the trace's ``traceparent``. Histories recorded with tracing headers replay without
tracing, and committed ones (without headers) replay with it."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme
import uvicorn
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from temporalio.client import Client
from temporalio.worker import Replayer

import telemetry
from api.app import create_app
from settings import Settings
from stack import Stack
from store.tables import Delivery
from tests.conftest import RECEIVER_HOST, new_org_key, stack_settings
from tests.receiver import Receiver, Reply
from worker import run_worker, workflow_runner
from workflows.group import GroupWorkflow
from workflows.locale_job import LocaleJobWorkflow
from workflows.reconciler import ReconcilerWorkflow
from workflows.webhooks import WebhookRedeliveryWorkflow

pytestmark = pytest.mark.stack

WORKFLOWS = [GroupWorkflow, LocaleJobWorkflow, WebhookRedeliveryWorkflow, ReconcilerWorkflow]
HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))
HISTORY_JSON = {path.stem: json.loads(path.read_text()) for path in HISTORIES}
LOCALES = ["de", "fr"]
CALLER_TRACE, CALLER_SPAN = 0xABAB_0000_0000_0000_0000_0000_0000_ABAB, 0xCDCD_0000_0000_CDCD


class Collector:
    """An OTLP/HTTP trace receiver on loopback: the bodies POSTed to /v1/traces."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, bytes]] = []
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                collector.requests.append((self.path, self.headers["content-type"], body))
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"


def test_tracing_is_off_unless_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    """No endpoint: no provider, no interceptor, no middleware, no header on a webhook."""
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    assert not telemetry.tracing_on()
    settings = Settings(telemetry_otlp_endpoint="")
    assert not telemetry.setup_tracing(settings, telemetry.API_SERVICE)
    assert telemetry.temporal_interceptors() == []
    assert create_app(settings).user_middleware == []

    async def attempt() -> dict[str, str]:
        headers = {"content-type": "application/json"}
        record = Delivery(
            organization_id="org_x", job_id="ljb_x", event_id="msg_x", event_type="t", outcome="-"
        )
        async with telemetry.webhook_attempt(record, headers):
            pass
        return headers

    assert asyncio.run(attempt()) == {"content-type": "application/json"}


def test_spans_are_exported_by_otlp_when_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_SERVICE_NAME", "tolk-api-eu")
    collector = Collector()
    try:
        assert telemetry.setup_tracing(
            Settings(telemetry_otlp_endpoint=collector.url), telemetry.API_SERVICE
        )
        spans = telemetry.tracer()
        assert spans is not None
        with spans.start_as_current_span("GET /healthz", kind=SpanKind.SERVER):
            pass
        telemetry.flush_tracing()
    finally:
        telemetry.shutdown_tracing()
        collector.server.shutdown()
    assert [(path, kind) for path, kind, _ in collector.requests] == [
        ("/v1/traces", "application/x-protobuf")
    ]
    sent = ExportTraceServiceRequest.FromString(collector.requests[0][2])
    (resource,) = sent.resource_spans
    service = {a.key: a.value.string_value for a in resource.resource.attributes}
    assert service["service.name"] == "tolk-api-eu"
    names = [span.name for scope in resource.scope_spans for span in scope.spans]
    assert names == ["GET /healthz"]


@pytest.fixture(scope="module")
def spans() -> Iterator[InMemorySpanExporter]:
    """Tracing on in this process, into memory; off again after the module."""
    exporter = InMemorySpanExporter()
    telemetry.shutdown_tracing()
    assert telemetry.setup_tracing(Settings(), "tolk-test", exporter=exporter)
    yield exporter
    telemetry.shutdown_tracing()


@pytest.fixture(scope="module")
def temporal(tmp_path_factory: pytest.TempPathFactory, webhook_ca: trustme.CA) -> Iterator[Stack]:
    """A dev server of this module's own; the settings of an API and worker on it."""
    root = tmp_path_factory.mktemp("tracing")
    ca_file = root / "webhook-ca.pem"
    webhook_ca.cert_pem.write_to_path(str(ca_file))
    own = Stack(
        stack_settings(
            root,
            TOLK_TEMPORAL_NAMESPACE="tolk-tracing",
            TOLK_WORKER_TASK_QUEUE="tolk-tracing",
            TOLK_WEBHOOKS_CA_FILE=str(ca_file),
            TOLK_WEBHOOKS_ALLOWED_HOSTS=json.dumps([RECEIVER_HOST]),
            TOLK_WEBHOOKS_RETRY_DELAYS_SECONDS=json.dumps([0.3, 0.3]),
            TOLK_WEBHOOKS_TIMEOUT_SECONDS="3",
        ),
        log_dir=root / "logs",
        headless=True,
    )
    try:
        own.start_temporal()
        yield own
    finally:
        own.stop()


@contextlib.asynccontextmanager
async def api_and_worker(own: Stack) -> AsyncIterator[None]:
    """The app under uvicorn and the worker, both in this process and event loop."""
    settings = own.settings
    stop = asyncio.Event()
    worker = asyncio.create_task(run_worker(settings, stop=stop))
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings),
            host=settings.api_host,
            port=settings.api_port,
            log_config=None,
            access_log=False,
        )
    )
    api = asyncio.create_task(server.serve())
    try:
        async with httpx.AsyncClient(base_url=own.api_url, timeout=5) as probe:
            for _ in range(600):  # a hang guard only
                assert not api.done() and not worker.done()
                with contextlib.suppress(httpx.HTTPError):
                    if (await probe.get("/readyz")).status_code == 200:
                        break
                await asyncio.sleep(0.1)
        yield
    finally:
        server.should_exit = True
        stop.set()
        await asyncio.wait_for(asyncio.gather(api, worker), 60)


async def wait_terminal(client: httpx.AsyncClient, group_id: str) -> dict[str, Any]:
    for _ in range(1200):  # a hang guard only
        body: dict[str, Any] = (await client.get(f"/jobs/localization/groups/{group_id}")).json()
        if body["status"] in {"completed", "partial", "failed", "cancelled"}:
            return body
        await asyncio.sleep(0.1)
    raise AssertionError(f"group {group_id} did not finish: {body}")


Children = dict[int, list[ReadableSpan]]


def ids(span: ReadableSpan) -> tuple[int, int]:
    """The span's trace id and span id."""
    assert span.context is not None
    return span.context.trace_id, span.context.span_id


def attr(span: ReadableSpan, key: str) -> Any:
    return (span.attributes or {}).get(key)


def tree(finished: list[ReadableSpan], root: ReadableSpan) -> Children:
    """Children by parent span id, of the spans in ``root``'s trace."""
    children: Children = {}
    for span in finished:
        if ids(span)[0] == ids(root)[0] and span.parent is not None:
            children.setdefault(span.parent.span_id, []).append(span)
    return children


def descendants(children: Children, span: ReadableSpan) -> list[ReadableSpan]:
    out: list[ReadableSpan] = []
    for child in children.get(ids(span)[1], []):
        out += [child, *descendants(children, child)]
    return out


def only(spans: list[ReadableSpan], name: str, **attrs: Any) -> ReadableSpan:
    found = [
        s
        for s in spans
        if s.name == name and all((s.attributes or {}).get(k) == v for k, v in attrs.items())
    ]
    assert len(found) == 1, (name, attrs, [s.name for s in spans])
    return found[0]


def under(children: Children, parent: ReadableSpan, name: str) -> list[ReadableSpan]:
    return [s for s in children.get(ids(parent)[1], []) if s.name == name]


@pytest.fixture()
def json_lines() -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """Every record of this process, as the JSON formatter writes it, at DEBUG."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(telemetry.JsonFormatter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield lambda: [json.loads(line) for line in buffer.getvalue().splitlines() if line]
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


async def test_one_group_is_one_trace_from_the_post_to_the_webhook(
    spans: InMemorySpanExporter,
    temporal: Stack,
    webhook_ca: trustme.CA,
    json_lines: Callable[[], list[dict[str, Any]]],
) -> None:
    with Receiver(webhook_ca, host=RECEIVER_HOST, script=[Reply(500)]) as receiver:
        async with api_and_worker(temporal):
            _, key = await asyncio.to_thread(new_org_key, temporal, "Traced")
            async with httpx.AsyncClient(
                base_url=temporal.api_url, headers={"X-API-Key": key}, timeout=30
            ) as client:
                resp = await client.post(
                    "/jobs/localization",
                    json={
                        "sourceLocale": "en",
                        "targetLocales": LOCALES,
                        "data": {"greeting": "Hello"},
                        "callbackUrl": receiver.url,
                    },
                )
                assert resp.status_code == 202, resp.text
                group_id = resp.json()["groupId"]
                job_ids = {job["targetLocale"]: job["id"] for job in resp.json()["jobs"]}
                assert (await wait_terminal(client, group_id))["status"] == "completed"
                # A caller's trace context is continued.
                caller = f"00-{CALLER_TRACE:032x}-{CALLER_SPAN:016x}-01"
                read = await client.get(
                    f"/jobs/localization/groups/{group_id}", headers={"traceparent": caller}
                )
                assert read.status_code == 200
                # Both webhooks delivered (one after a failed attempt).
                got = await asyncio.to_thread(receiver.wait_for, 3)
            temporal_client = await Client.connect(
                temporal.settings.temporal_target, namespace=temporal.settings.temporal_namespace
            )
            # The group's workflow completes once its job workflows have closed.
            await asyncio.wait_for(temporal_client.get_workflow_handle(group_id).result(), 60)
            # A history as recorded with tracing headers, for the replay below.
            history = await temporal_client.get_workflow_handle(job_ids["de"]).fetch_history()
    telemetry.flush_tracing()
    finished = list(spans.get_finished_spans())

    joined = [s for s in finished if ids(s)[0] == CALLER_TRACE]
    assert [(s.name, s.parent.span_id if s.parent else None) for s in joined] == [
        ("GET /jobs/localization/groups/{groupId}", CALLER_SPAN)
    ]
    assert attr(joined[0], "tolk.group_id") == group_id

    post = only(finished, "POST /jobs/localization", **{"tolk.group_id": group_id})
    assert post.parent is None  # the root (the client sent no traceparent)
    assert attr(post, "http.response.status_code") == 202
    children = tree(finished, post)
    trace = [post, *descendants(children, post)]
    # Every span of this trace hangs under the POST: one tree.
    assert {ids(s) for s in finished if ids(s)[0] == ids(post)[0]} == {ids(s) for s in trace}

    start = only(
        under(children, post, "StartWorkflow:GroupWorkflow"), "StartWorkflow:GroupWorkflow"
    )
    assert attr(start, "temporalWorkflowID") == group_id
    group_spans = children.get(ids(start)[1], [])
    only(group_spans, "RunWorkflow:GroupWorkflow")
    only(group_spans, "CompleteWorkflow:GroupWorkflow")
    starts = under(children, start, "StartChildWorkflow:LocaleJobWorkflow")
    assert len(starts) == len(LOCALES), [s.name for s in group_spans]
    # The group's own activity (its result in the database) is in the trace too.
    recorded = only(group_spans, "StartActivity:record_group_result")
    only(
        under(children, recorded, "RunActivity:record_group_result"),
        "RunActivity:record_group_result",
    )

    hooks: list[ReadableSpan] = []
    for child in starts:
        job_spans = children.get(ids(child)[1], [])
        run = only(job_spans, "RunWorkflow:LocaleJobWorkflow")
        job_id = attr(run, "temporalWorkflowID")
        assert job_id in job_ids.values()
        only(job_spans, "CompleteWorkflow:LocaleJobWorkflow")
        translate = only(job_spans, "StartActivity:translate_job")
        translated = only(
            under(children, translate, "RunActivity:translate_job"), "RunActivity:translate_job"
        )
        # The first attempt is made by the activity that stored the job (lean jobs); the
        # rest of a series by the job workflow's deliver_webhook activity.
        for hook in under(children, translated, "webhook.deliver"):
            assert attr(hook, "tolk.webhook.attempt") == 1
            assert attr(hook, "tolk.job_id") == job_id
            hooks.append(hook)
        for deliver in under(children, child, "StartActivity:deliver_webhook"):
            for attempt in under(children, deliver, "RunActivity:deliver_webhook"):
                for hook in under(children, attempt, "webhook.deliver"):
                    assert attr(hook, "tolk.webhook.attempt") > 1
                    assert attr(hook, "tolk.job_id") == job_id
                    hooks.append(hook)

    # Two jobs, three attempts: the first answered 500, then retried and delivered.
    attempts = sorted(
        (
            attr(h, "tolk.webhook.attempt"),
            attr(h, "http.response.status_code"),
            attr(h, "tolk.webhook.outcome"),
        )
        for h in hooks
    )
    assert attempts == [(1, 200, "delivered"), (1, 500, "failed"), (2, 200, "delivered")]

    # The receiver got each attempt's traceparent: this trace, that attempt's span.
    trace_hex = f"{ids(post)[0]:032x}"
    parents = []
    for received in got:
        version, trace_id, span_id, flags = received.headers["traceparent"].split("-")
        assert (version, trace_id) == ("00", trace_hex)
        assert int(flags, 16) & 1  # sampled
        parents.append(int(span_id, 16))
    assert sorted(parents) == sorted(ids(hook)[1] for hook in hooks)

    # No user content in any attribute (the document said "Hello"; its URL is not there).
    for span in trace:
        for value in (span.attributes or {}).values():
            assert "Hello" not in str(value) and receiver.url not in str(value), span.name

    # Log lines carry the ids they are about, and the trace's ids where a span is current.
    lines = json_lines()
    assert {"time", "level", "logger", "message"} <= set(lines[0])
    assert any(line.get("group_id") == group_id and "job_id" not in line for line in lines)
    for job_id in job_ids.values():
        about_job = [line for line in lines if line.get("job_id") == job_id]
        assert about_job, job_id
        assert any(line.get("trace_id") == trace_hex for line in about_job), about_job[:3]

    # That history (with tracing headers) replays with tracing off, and with it on.
    for interceptors in ([], telemetry.temporal_interceptors()):
        replayed = await Replayer(
            workflows=WORKFLOWS, workflow_runner=workflow_runner(), interceptors=interceptors
        ).replay_workflow(history, raise_on_replay_failure=False)
        assert replayed.replay_failure is None, replayed.replay_failure


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_histories_without_tracing_headers_replay_with_tracing(
    spans: InMemorySpanExporter, path: Path
) -> None:
    from temporalio.client import WorkflowHistory

    history = WorkflowHistory.from_json(path.stem, HISTORY_JSON[path.stem])
    replayed = await Replayer(
        workflows=WORKFLOWS,
        workflow_runner=workflow_runner(),
        interceptors=telemetry.temporal_interceptors(),
    ).replay_workflow(history, raise_on_replay_failure=False)
    assert replayed.replay_failure is None, replayed.replay_failure
