"""Faults between the API and Temporal while groups are accepted, made by a real network
proxy between the two (tests/faultproxy.py) on a stack of its own: an ambiguous start
(Temporal started the workflow, the API never heard), and Temporal out of reach."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from stack import Stack
from tests.conftest import new_org_key, run_sql, stack_settings, wait_for_group
from tests.faultproxy import FaultProxy


@pytest.fixture(scope="module")
def proxied(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, FaultProxy, str]]:
    """Temporal, a worker that reaches it directly, and an API that reaches it through the
    proxy: (stack, proxy, API key)."""
    root = tmp_path_factory.mktemp("proxied")
    settings = stack_settings(
        root,
        TOLK_TEMPORAL_NAMESPACE="tolk-faults",
        TOLK_RECONCILE_INTERVAL_SECONDS="1",
        TOLK_RECONCILE_GRACE_SECONDS="2",
        TOLK_WORKER_GRACEFUL_SHUTDOWN_SECONDS="2",
    )
    stack = Stack(settings, log_dir=root / "logs", headless=True)
    with FaultProxy(int(settings["TOLK_TEMPORAL_PORT"])) as proxy:
        try:
            stack.start_temporal()
            stack.start_worker()
            stack.env["TOLK_TEMPORAL_PORT"] = str(proxy.port)  # the API's way to Temporal
            stack.start_api()
            _, key = new_org_key(stack, "faults")
            yield stack, proxy, key
        finally:
            stack.stop()


def rows(stack: Stack) -> dict[str, int]:
    return {t: run_sql(stack, f"SELECT COUNT(*) FROM {t}")[0][0] for t in ("jobgroup", "job")}


def body(key: str | None = None, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "sourceLocale": "en",
        "targetLocales": ["de", "fr"],
        "data": {"title": "Hello {name}"},
        **extra,
    }
    if key is not None:
        out["idempotencyKey"] = key
    return out


def test_an_ambiguous_start_keeps_the_group_and_the_retry_completes_it(
    proxied: tuple[Stack, FaultProxy, str],
) -> None:
    stack, proxy, key = proxied
    with httpx.Client(base_url=stack.api_url, headers={"X-API-Key": key}, timeout=60) as http:
        assert http.post("/jobs/localization", json=body()).status_code == 202  # warm
        proxy.blackhole()  # the start reaches Temporal; its answer never comes back
        try:
            first = http.post("/jobs/localization", json=body("ambiguous-1"))
        finally:
            proxy.heal()
        # Accepted: the rows are the outbox, and this start may have happened.
        assert first.status_code == 202, first.text
        group_id = first.json()["groupId"]
        # The client retries all the same (it saw a slow answer): the same group, the same
        # jobs, which the workflow that did start knows.
        again = http.post("/jobs/localization", json=body("ambiguous-1"))
        assert again.status_code == 202, again.text
        assert again.json()["groupId"] == group_id
        assert again.headers["Idempotent-Replayed"] == "true"
        assert [j["id"] for j in again.json()["jobs"]] == [j["id"] for j in first.json()["jobs"]]
        group = wait_for_group(http, group_id, timeout=90)
        assert group["status"] == "completed", group
        for job in group["jobs"]:
            detail = http.get(f"/jobs/localization/{job['id']}").json()
            assert detail["outputData"]["title"].count("{name}") == 1, detail


def test_temporal_out_of_reach_refuses_new_work_and_loses_nothing_accepted(
    proxied: tuple[Stack, FaultProxy, str],
) -> None:
    stack, proxy, key = proxied
    with httpx.Client(base_url=stack.api_url, headers={"X-API-Key": key}, timeout=60) as http:
        before = http.post("/jobs/localization", json=body("before-outage"))
        assert before.status_code == 202
        proxy.refuse()
        try:
            # The first request to find Temporal gone may still be accepted (its rows are
            # committed before the start is tried); from then on, refused at once.
            answers = [http.post("/jobs/localization", json=body(f"outage-{i}")) for i in range(3)]
            accepted = [a.json()["groupId"] for a in answers if a.status_code == 202]
            refused = [a for a in answers if a.status_code != 202]
            assert len(accepted) <= 1 and refused, [a.status_code for a in answers]
            counts = rows(stack)
            for answer in refused:
                assert answer.status_code == 503, answer.text
                assert answer.json()["_tag"] == "ServiceUnavailableError"
                assert int(answer.headers["Retry-After"]) > 0
            again = http.post("/jobs/localization", json=body("outage-refused"))
            assert again.status_code == 503 and rows(stack) == counts  # nothing stored
            # Reads come from the database: the group accepted before is there.
            group = http.get(f"/jobs/localization/groups/{before.json()['groupId']}")
            assert group.status_code == 200, group.text
            # And its stream opens, from the rows, while Temporal cannot answer.
            with httpx.stream(
                "GET",
                f"{stack.api_url}/jobs/localization/groups/{before.json()['groupId']}/events",
                headers={"X-API-Key": key},
                timeout=30,
            ) as stream:
                assert stream.status_code in (200, 204)
                if stream.status_code == 200:
                    first = next(stream.iter_lines(), "")
                    assert first.startswith("retry:") or first.startswith("id:"), first
        finally:
            proxy.heal()
        # Back: everything accepted completes, the accepted-in-the-outage one included.
        for group_id in [before.json()["groupId"], *accepted]:
            assert wait_for_group(http, group_id, timeout=90)["status"] == "completed"
        # The refused request, sent again as its Retry-After says: accepted now that
        # Temporal answers (the API looks again at most every half second).
        time.sleep(0.6)
        retried = http.post("/jobs/localization", json=body("outage-refused"))
        assert retried.status_code == 202, retried.text
        assert wait_for_group(http, retried.json()["groupId"], timeout=90)["status"] == "completed"
