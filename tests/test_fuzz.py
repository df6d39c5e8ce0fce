"""Fuzzing the real stack from its own ``/openapi.json`` with schemathesis: every operation
gets schema-conforming and schema-violating requests (body, query, path, headers); no answer
may be a 500, every error is JSON with a ``_tag``, and every status, content type and body
is one the document lists for that operation.

A short run with a fixed seed is part of the suite. ``make fuzz`` runs this file longer, on
its own stack, with a new seed each time (``TOLK_FUZZ_EXAMPLES``, ``TOLK_FUZZ_SEED``; the
seed is printed, so a run can be repeated with ``make fuzz SEED=<seed>``)."""

from __future__ import annotations

import contextlib
import os
import random
import threading
import time
from collections import Counter

import httpx
import pytest
import schemathesis
from schemathesis.engine import Status, events, from_schema

from api.openapi import statuses
from api.routes import ROUTES
from stack import Stack
from tests.conftest import new_org_key

EXAMPLES = int(os.environ.get("TOLK_FUZZ_EXAMPLES", "25"))
_SEED = os.environ.get("TOLK_FUZZ_SEED", "20261201")
SEED = random.SystemRandom().randrange(2**32) if _SEED == "random" else int(_SEED)
CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "errors_are_tagged_json",
]
# Every response the fuzzer got, by (operation, status): the checks run on each one.
SEEN: Counter[tuple[str, int]] = Counter()
_SEEN_LOCK = threading.Lock()


@schemathesis.check
def errors_are_tagged_json(
    ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case
) -> bool | None:
    """Count the response; an error must be a JSON object with ``_tag`` and ``message``."""
    with _SEEN_LOCK:
        SEEN[(case.operation.label, response.status_code)] += 1
    if response.status_code >= 400:
        kind = response.headers.get("content-type", [""])[0]
        assert kind.startswith("application/json"), f"{response.status_code} as {kind!r}"
        body = response.json()
        assert isinstance(body, dict), body
        assert isinstance(body.get("_tag"), str) and body["_tag"], body
        assert isinstance(body.get("message"), str) and body["message"], body
    return None


def fuzz_config(key: str) -> schemathesis.Config:
    """Every check above and only those; examples, coverage (boundary and invalid values
    for each field) and fuzzing phases; stateful sequences off (the operations do not
    link to each other in the document)."""
    return schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "headers": {"X-API-Key": key},
            "request-timeout": 30,
            "workers": 2,
            "generation": {"max-examples": EXAMPLES, "mode": "all", "database": "none"},
            "phases": {"stateful": {"enabled": False}},
            "checks": {"enabled": False, **{name: {"enabled": True} for name in CHECKS}},
            "operations": [
                # An upgrade plain HTTP cannot make (test_progress.py covers the WebSocket).
                {"include-path": "/jobs/localization/groups/{groupId}/ws", "enabled": False}
            ],
        }
    )


def _describe(event: events.ScenarioFinished) -> list[str]:
    found = []
    for checks in event.recorder.checks.values():
        for check in checks:
            if check.status == Status.FAILURE and check.failure_info is not None:
                failure = check.failure_info.failure
                found.append(
                    f"{event.label}: {check.name}: {failure.title}\n{failure.message}\n"
                    f"{check.failure_info.code_sample}"
                )
    return found or [f"{event.label}: {event.status}"]


def settle(stack: Stack, key: str, timeout: float = 120) -> None:
    """Wait until every job the fuzzer started has ended, so that no later test sees its
    rows appear (a liveness deadline, not a measure of speed)."""
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=stack.api_url, headers={"X-API-Key": key}, timeout=30) as c:
        while any(
            c.get("/jobs/localization", params={"status": status}).json()["items"]
            for status in ("queued", "processing")
        ):
            assert time.monotonic() < deadline, "jobs started by the fuzzer never finished"
            time.sleep(0.5)


def test_fuzz_the_api_from_its_own_document(stack: Stack, request: pytest.FixtureRequest) -> None:
    _, key = new_org_key(stack, "Fuzz Co")  # its own: engines, webhook settings, secrets
    schema = schemathesis.openapi.from_url(f"{stack.api_url}/openapi.json", config=fuzz_config(key))
    SEEN.clear()
    problems: list[str] = []
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished) and event.status in (
            Status.FAILURE,
            Status.ERROR,
        ):
            problems += _describe(event)
        elif isinstance(event, events.NonFatalError):
            problems.append(f"{event.label}: {event.info.title}: {event.value!r}")
        elif isinstance(event, events.FatalError):
            problems.append(f"fatal: {event.exception!r}")
    settle(stack, key)
    codes: Counter[int] = Counter()
    for (_, status), count in SEEN.items():
        codes[status] += count
    summary = (
        f"fuzz: seed {SEED}, {EXAMPLES} examples per operation, {sum(codes.values())} "
        f"requests, statuses {dict(sorted(codes.items()))}, {codes[500]} answers of 500"
    )
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
        print(f"\n{summary}", flush=True)  # the figures, also when the test passes
    assert not problems, summary + "\n\n" + "\n\n".join(problems[:20])
    assert codes[500] == 0 and sum(codes.values()) > 0, summary
    fuzzed = {label for label, _ in SEEN}
    every = {f"{op.method.upper()} {op.path}" for op in ROUTES}
    # All but the WebSocket and the document itself (schemathesis leaves its schema alone).
    unfuzzed = {"GET /jobs/localization/groups/{groupId}/ws", "GET /openapi.json"}
    assert every - fuzzed == unfuzzed, every - fuzzed


# --- the document itself ------------------------------------------------------------------------


def test_the_document_lists_every_status_by_rule(stack: Stack) -> None:
    doc = httpx.get(f"{stack.api_url}/openapi.json", timeout=30).json()
    for op in ROUTES:
        listed = {int(code) for code in doc["paths"][op.path][op.method]["responses"]}
        assert listed == set(statuses(op)), (op.method, op.path)
        assert 500 in listed, (op.method, op.path)
        if op.auth != "none":
            assert {401, 403} <= listed, (op.method, op.path)
        if op.request is not None:
            assert {400, 413} <= listed, (op.method, op.path)
        if "{" in op.path:
            assert 404 in listed, (op.method, op.path)
        if op.auth == "key":
            assert 503 in listed, (op.method, op.path)
    # That it covers the whole routing table, and the reverse: tests/test_routes.py.
    sse = doc["paths"]["/jobs/localization/groups/{groupId}/events"]["get"]
    assert {"Last-Event-ID", "lastEventId", "token"} <= {p["name"] for p in sse["parameters"]}
    assert "text/event-stream" in sse["responses"]["200"]["content"]
    assert "content" not in sse["responses"]["204"]
    patch = doc["components"]["schemas"]["UpdateEngineRequest"]["properties"]
    assert all("null" not in str(prop) for prop in patch.values()), patch
