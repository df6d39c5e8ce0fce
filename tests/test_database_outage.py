"""The database away, on a real PostgreSQL server behind a fault proxy: the API answers
503 with ``Retry-After`` on POST, GET and both streams (and nothing that was accepted is
lost); a worker that loses the database mid-group waits it out, however long, and every
job completes once it is back."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from stack import Stack, free_port
from store.db import Database, unavailable
from tests.conftest import new_org_key, stack_settings, wait_for_group
from tests.faultproxy import FaultProxy
from tests.postgres import PostgresServer
from tests.test_control import big_document

Env = tuple[Stack, FaultProxy, FaultProxy, str]


@pytest.fixture(scope="module")
def on_postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    """Temporal, PostgreSQL, a worker and an API each reaching the database through a
    proxy of its own: (stack, API's proxy, worker's proxy, API key)."""
    root = tmp_path_factory.mktemp("pg-outage")
    server = PostgresServer().start()
    settings = stack_settings(
        root,
        TOLK_TEMPORAL_NAMESPACE="tolk-pg",
        TOLK_DATABASE_URL=server.url,
        TOLK_TRANSLATE_MAX_ATTEMPTS="2",
        TOLK_TRANSLATE_INITIAL_INTERVAL_SECONDS="0.2",
        TOLK_WORKER_GRACEFUL_SHUTDOWN_SECONDS="2",
        TOLK_WORKER_MAX_CONCURRENT_ACTIVITIES="2",
    )
    stack = Stack(settings, log_dir=root / "logs", headless=True)
    with FaultProxy(server.port) as for_api, FaultProxy(server.port) as for_worker:
        try:
            _, key = new_org_key(stack, "pg")
            stack.start_temporal()
            stack.env["TOLK_DATABASE_URL"] = server.url.replace(
                str(server.port), str(for_worker.port)
            )
            stack.env["TOLK_WORKER_METRICS_ADDRESS"] = f"127.0.0.1:{free_port()}"
            stack.start_worker()
            stack.worker_metrics = stack.env.pop("TOLK_WORKER_METRICS_ADDRESS")  # type: ignore[attr-defined]
            stack.env["TOLK_DATABASE_URL"] = server.url.replace(str(server.port), str(for_api.port))
            stack.start_api()
            yield stack, for_api, for_worker, key
        finally:
            stack.stop()
            server.stop()


async def ws_refusal(url: str, key: str) -> tuple[int, dict[str, object]]:
    try:
        async with connect(url, additional_headers={"X-API-Key": key}, open_timeout=30):
            return 101, {}
    except InvalidStatus as refused:
        return refused.response.status_code, json.loads(refused.response.body or b"{}")


def test_the_api_answers_503_while_the_database_is_away_and_loses_nothing(
    on_postgres: Env,
) -> None:
    stack, for_api, _, key = on_postgres
    body = {"sourceLocale": "en", "targetLocales": ["de", "fr"], "data": {"t": "Hello {name}"}}
    with httpx.Client(base_url=stack.api_url, headers={"X-API-Key": key}, timeout=60) as http:
        before = http.post("/jobs/localization", json=body)
        assert before.status_code == 202, before.text
        group_id = before.json()["groupId"]
        for_api.refuse()
        try:
            answers = {
                "POST": http.post("/jobs/localization", json=body),
                "GET group": http.get(f"/jobs/localization/groups/{group_id}"),
                "GET jobs": http.get("/jobs/localization"),
                "SSE": http.get(f"/jobs/localization/groups/{group_id}/events"),
                "readyz": http.get("/readyz"),
            }
            for name, answer in answers.items():
                assert answer.status_code == 503, (name, answer.status_code, answer.text)
                assert answer.json()["_tag"] == "ServiceUnavailableError", name
                assert int(answer.headers["Retry-After"]) > 0, name
            ws = f"{stack.api_url.replace('http', 'ws')}/jobs/localization/groups/{group_id}/ws"
            status, refusal = asyncio.run(ws_refusal(ws, key))
            assert status == 503 and refusal["_tag"] == "ServiceUnavailableError", refusal
            assert http.get("/healthz").status_code == 200
        finally:
            for_api.heal()
        group = wait_for_group(http, group_id, timeout=90)
        assert group["status"] == "completed", group
        after = http.post("/jobs/localization", json=body)
        assert after.status_code == 202, after.text
        assert wait_for_group(http, after.json()["groupId"], timeout=90)["status"] == "completed"


def test_a_worker_that_loses_the_database_mid_group_waits_it_out(on_postgres: Env) -> None:
    stack, _, for_worker, key = on_postgres
    with httpx.Client(base_url=stack.api_url, headers={"X-API-Key": key}, timeout=60) as http:
        created = http.post(
            "/jobs/localization",
            json={
                "sourceLocale": "en",
                "targetLocales": ["de", "fr", "es", "it"],
                "data": big_document(sections=20),
            },
        )
        assert created.status_code == 202, created.text
        group_id = created.json()["groupId"]
        deadline = time.monotonic() + 60
        while http.get(f"/jobs/localization/groups/{group_id}").json()["status"] == "pending":
            assert time.monotonic() < deadline, "the group never started"
            time.sleep(0.1)
        for_worker.refuse()
        # Longer than every retry policy of the translate activity together (2 attempts,
        # 0.2 s apart): only waiting out the outage saves the jobs now.
        time.sleep(8)
        for_worker.heal()
        group = wait_for_group(http, group_id, timeout=180)
        assert group["status"] == "completed", group
        for job in group["jobs"]:
            detail = http.get(f"/jobs/localization/{job['id']}").json()
            assert detail["outputData"]["s3"]["l7"].count("{user}") == 1, detail["status"]
    assert all(proc.poll() is None for proc in stack.procs.values())
    # The outage shows on the worker's metrics endpoint, counted by activity.
    scraped = httpx.get(f"http://{stack.worker_metrics}/metrics", timeout=10).text  # type: ignore[attr-defined]
    failures = [
        line
        for line in scraped.splitlines()
        if line.startswith("tolk_activity_failures_total{")
        and 'kind="database_unavailable"' in line
    ]
    assert failures and sum(float(line.rsplit(" ", 1)[1]) for line in failures) > 0, failures


def test_ids_the_database_cannot_hold_are_simply_not_found(on_postgres: Env) -> None:
    # PostgreSQL refuses NUL in text: an id must not reach it to be found missing.
    stack, _, _, key = on_postgres
    with httpx.Client(base_url=stack.api_url, headers={"X-API-Key": key}, timeout=60) as http:
        for path in (
            "/jobs/localization/ljb_%00abcdefghijklmno",
            "/jobs/localization/groups/ljg_%00abcdefghijklmno",
            "/jobs/localization/groups/ljg_%00abcdefghijklmno/events",
            "/engines/eng_%00abcdefghijklmno",
        ):
            answer = http.get(path)
            assert answer.status_code == 404, (path, answer.text)
            assert answer.json()["_tag"] == "NotFoundError"


def test_postgres_outages_are_told_from_defects(on_postgres: Env) -> None:
    """The server ending a session (as at shutdown or restart) is an outage to wait out;
    a query that is wrong is a defect, however often it is tried."""
    stack, _, _, _ = on_postgres
    url = stack.settings.database_url

    async def scenario() -> None:
        db = Database(url)
        try:
            async with db.session() as session:
                with pytest.raises(DBAPIError) as wrong:
                    await session.execute(text("SELECT nothing FROM no_such_table"))
            assert not unavailable(wrong.value), wrong.value
            async with db.session() as session:
                await session.execute(text("SET lock_timeout = '1ms'"))
                with pytest.raises(DBAPIError) as ended:
                    # What a session sees when the server shuts down (SQLSTATE 57P01).
                    await session.execute(text("SELECT pg_terminate_backend(pg_backend_pid())"))
            assert unavailable(ended.value), ended.value
            async with db.session() as session:  # a server out of connections (53300)
                await session.execute(text("DROP ROLE IF EXISTS crowded"))
                await session.execute(text("CREATE ROLE crowded LOGIN CONNECTION LIMIT 0"))
                await session.commit()
            crowded = Database(url.replace("//tolk@", "//crowded@"))
            try:
                async with crowded.session() as session:
                    with pytest.raises(DBAPIError) as full:
                        await session.execute(text("SELECT 1"))
            finally:
                await crowded.close()
            assert unavailable(full.value), full.value
        finally:
            await db.close()

    asyncio.run(scenario())
