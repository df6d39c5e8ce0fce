"""The metrics that matter, scraped from a real stack: the API's ``/metrics`` and the
worker's SDK endpoint (``TOLK_WORKER_METRICS_ADDRESS``), as Prometheus scrapes them in
``deploy/compose.yaml``; and the Grafana dashboard's queries, every metric name of which
one of the two endpoints exports.

The stack is this module's own (a fresh database and Temporal), so every counter starts at
zero and the figures below are exact."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme
from prometheus_client.parser import text_string_to_metric_families

from stack import Stack, free_port
from tests.conftest import RECEIVER_HOST, new_org_key, stack_settings, wait_for_group
from tests.fake_llm import FakeLLM
from tests.receiver import Receiver, Reply

pytestmark = pytest.mark.stack

DASHBOARD = Path(__file__).resolve().parent.parent / "deploy" / "grafana" / "tolk.json"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


class MetricsStack:
    def __init__(self, stack: Stack, worker_metrics: str, key: str, ca: trustme.CA) -> None:
        self.stack, self.worker_metrics, self.key, self.ca = stack, worker_metrics, key, ca

    def scrape(self) -> tuple[Samples, Samples]:
        """(the API's samples, the worker's samples)."""
        api = httpx.get(f"{self.stack.api_url}/metrics", timeout=10).text
        worker = httpx.get(f"http://{self.worker_metrics}/metrics", timeout=10).text
        return parse(api), parse(worker)


def parse(text: str) -> Samples:
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


@pytest.fixture(scope="module")
def metrics_stack(
    tmp_path_factory: pytest.TempPathFactory, fake_llm: FakeLLM
) -> Iterator[MetricsStack]:
    root = tmp_path_factory.mktemp("metrics")
    ca = trustme.CA()
    ca_file = root / "webhook-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    worker_metrics = f"127.0.0.1:{free_port()}"
    openai = {"type": "openai", "base_url": fake_llm.openai_base, "api_key": fake_llm.api_key}
    settings = stack_settings(
        root,
        TOLK_TEMPORAL_NAMESPACE="tolk-metrics",
        TOLK_WORKER_METRICS_ADDRESS=worker_metrics,
        TOLK_WEBHOOKS_CA_FILE=str(ca_file),
        TOLK_WEBHOOKS_ALLOWED_HOSTS=json.dumps([RECEIVER_HOST]),
        TOLK_WEBHOOKS_RETRY_DELAYS_SECONDS=json.dumps([0.3, 0.3]),
        TOLK_LLM_PROVIDERS=json.dumps({"openai": openai}),
        TOLK_LLM_ATTEMPTS_PER_MODEL="2",
        TOLK_LLM_TIMEOUT_SECONDS="5",
    )
    stack = Stack(settings, log_dir=root / "logs", headless=True)
    try:
        stack.start()
        _, key = new_org_key(stack, "metrics")
        yield MetricsStack(stack, worker_metrics, key, ca)
    finally:
        stack.stop()


def wait_until(condition: Any, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(0.3)


def test_the_counters_move_and_the_dashboard_queries_only_exported_metrics(
    metrics_stack: MetricsStack,
) -> None:
    stack = metrics_stack.stack
    suffix = uuid.uuid4().hex[:8]
    with (
        httpx.Client(
            base_url=stack.api_url, headers={"X-API-Key": metrics_stack.key}, timeout=30
        ) as client,
        Receiver(metrics_stack.ca, host=RECEIVER_HOST, script=[Reply(500), Reply(500)]) as receiver,
    ):
        # A chain whose first model fails (HTTP 500, twice: attempts per model), then one
        # that answers: two provider errors, three calls, one job completed.
        engine = client.post(
            "/engines",
            json={
                "name": f"metrics {suffix}",
                "models": [
                    {"provider": "openai", "model": f"server-error:{suffix}"},
                    {"provider": "openai", "model": f"good:{suffix}"},
                ],
            },
        )
        assert engine.status_code == 201, engine.text
        body = {
            "sourceLocale": "en",
            "targetLocales": ["de"],
            "data": {"title": "Hello {name}"},
            "engineId": engine.json()["id"],
            "callbackUrl": receiver.url,
            "idempotencyKey": f"metrics-{suffix}",
        }
        first = client.post("/jobs/localization", json=body)
        assert first.status_code == 202, first.text
        replay = client.post("/jobs/localization", json=body)
        assert replay.status_code == 202 and replay.headers.get("Idempotent-Replayed") == "true"
        refused = client.post("/jobs/localization", json={"sourceLocale": "en"})
        assert refused.status_code == 400
        unkeyed = httpx.post(f"{stack.api_url}/jobs/localization", json=body, timeout=30)
        assert unkeyed.status_code == 401
        group = wait_for_group(client, first.json()["groupId"], timeout=120)
        assert group["status"] == "completed", group
        # The webhook: refused twice (500: attempt 1, made by the translate activity, and
        # attempt 2, a failed deliver_webhook activity), delivered on the third.
        receiver.wait_for(3, timeout=60)

    def worker_has_delivered() -> bool:
        _, worker = metrics_stack.scrape()
        return total(worker, "tolk_webhook_attempts_total", outcome="delivered") >= 1

    wait_until(worker_has_delivered, "the delivered webhook counted")
    api, worker = metrics_stack.scrape()

    accepted = "tolk_accept_latency_seconds_count"
    assert total(api, accepted, outcome="accepted") == 1
    assert total(api, accepted, outcome="replayed") == 1
    assert total(api, accepted, outcome="4xx") == 2  # the invalid body and the missing key
    assert total(api, "tolk_groups_accepted_total") == 1

    assert total(worker, "tolk_jobs_ended_total", status="completed") == 1
    assert total(worker, "tolk_jobs_ended_total") == 1
    assert total(worker, "tolk_webhook_attempts_total", outcome="retrying") == 2
    assert total(worker, "tolk_webhook_attempts_total", outcome="delivered") == 1
    errors = "tolk_provider_errors_total"
    assert total(worker, errors, provider="openai", kind="http_500") == 2
    assert total(worker, errors) == 2
    calls = "tolk_provider_call_latency_count"
    assert total(worker, calls, provider="openai", outcome="error") == 2
    assert total(worker, calls, provider="openai", outcome="ok") == 1
    assert total(worker, "tolk_provider_call_latency_sum", outcome="ok") > 0

    # The SDK's own worker metrics are on the same endpoint.
    assert total(worker, "temporal_workflow_task_execution_latency_count") > 0
    assert total(worker, "temporal_activity_schedule_to_start_latency_count") > 0

    exported = {name for name, _ in api} | {name for name, _ in worker}
    queried = dashboard_metric_names()
    assert queried, "the dashboard queries nothing"
    missing = sorted(queried - exported)
    assert not missing, f"the dashboard queries metrics no endpoint exports: {missing}"


def test_jobs_in_state_counts_the_database(metrics_stack: MetricsStack) -> None:
    """A job waiting for a human review shows as awaiting_review, then leaves the gauge."""
    stack = metrics_stack.stack
    with httpx.Client(
        base_url=stack.api_url, headers={"X-API-Key": metrics_stack.key}, timeout=30
    ) as client:
        resp = client.post(
            "/jobs/localization",
            json={
                "sourceLocale": "en",
                "targetLocales": ["fr"],
                "data": {"title": "Hello"},
                "pipelineConfig": {"humanReview": {"enabled": True}},
            },
        )
        assert resp.status_code == 202, resp.text
        group_id = resp.json()["groupId"]

        def gauge(status: str) -> float:
            api, _ = metrics_stack.scrape()
            return total(api, "tolk_jobs_in_state", status=status)

        wait_until(lambda: gauge("awaiting_review") == 1, "the job awaiting review gauged")
        job_id = resp.json()["jobs"][0]["id"]
        decided = client.post(f"/jobs/localization/{job_id}/review", json={"action": "approve"})
        assert decided.status_code in (200, 202), decided.text
        wait_for_group(client, group_id, timeout=60)
        wait_until(lambda: gauge("awaiting_review") == 0, "the reviewed job left the gauge")
        assert gauge("queued") == 0 and gauge("processing") == 0


# --- the dashboard's queries ---------------------------------------------------------------

METRIC = re.compile(r"\b((?:tolk|temporal)_[A-Za-z0-9_]+)\b")


def dashboard_exprs() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs: list[str] = []

    def walk(panels: list[dict[str, Any]]) -> None:
        for panel in panels:
            walk(panel.get("panels", []))
            exprs.extend(t["expr"] for t in panel.get("targets", []) if t.get("expr"))

    walk(dashboard["panels"])
    return exprs


def metric_names(expr: str) -> set[str]:
    """The metric names of one PromQL expression: label matchers, grouping clauses and
    strings removed first, so that only series selectors are left."""
    stripped = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    stripped = re.sub(r"\{[^}]*\}", "", stripped)
    grouping = r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)"
    stripped = re.sub(grouping, "", stripped)
    return set(METRIC.findall(stripped))


def dashboard_metric_names() -> set[str]:
    names: set[str] = set()
    for expr in dashboard_exprs():
        found = metric_names(expr)
        assert found, f"no Tolk or Temporal metric in {expr!r}"
        names |= found
    return names


def test_metric_names_are_read_from_promql() -> None:
    expr = (
        "histogram_quantile(0.95, sum by (le, outcome) "
        '(rate(tolk_accept_latency_seconds_bucket{outcome=~"accepted|replayed"}[5m])))'
        " / on (job) group_left sum(temporal_x_total)"
    )
    assert metric_names(expr) == {"tolk_accept_latency_seconds_bucket", "temporal_x_total"}
