"""The real stack for the whole test session: a Temporal dev server, the worker and the API,
each a separate process on free loopback ports, with a fresh SQLite file in a temp dir, or
(``TOLK_TEST_DATABASE=postgresql``) a PostgreSQL server of its own that the session starts
and removes. ``make test`` runs the whole suite on SQLite, then the tests marked ``pg``
(``tests/pg_suite.py``: the ones that go through the database the most) on PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme
from sqlalchemy import Executable, Row, func, select, text
from sqlalchemy.ext.asyncio import create_async_engine

from stack import Stack, free_port
from store.tables import Blob, Job, JobGroup
from tests.fake_llm import FakeLLM
from tests.pg_suite import PG_SUITE
from tests.postgres import PostgresServer
from tests.receiver import Receiver, Reply

# The session stack's database: "sqlite" (a file) or "postgresql" (a server of its own).
DATABASE = os.environ.get("TOLK_TEST_DATABASE", "sqlite")
if DATABASE not in {"sqlite", "postgresql"}:
    raise pytest.UsageError(f"TOLK_TEST_DATABASE is sqlite or postgresql, not {DATABASE!r}")
# For tests about one backend itself (a SQLite file's pragmas, a PostgreSQL server's
# behaviour): ``@sqlite_only`` / ``@postgresql_only``.
sqlite_only = pytest.mark.skipif(
    DATABASE != "sqlite", reason="about SQLite itself; the session stack runs on PostgreSQL"
)
postgresql_only = pytest.mark.skipif(
    DATABASE != "postgresql", reason="about PostgreSQL itself; the session stack runs on SQLite"
)

# The only callback address the test stack may reach: webhook receivers bind it, and
# every other loopback form stays forbidden for the SSRF tests.
RECEIVER_HOST = "127.0.0.2"
# Provider calls in tests: a short timeout (the fake's slow mode waits twice as long) and a
# small batch budget, so a few hundred strings take several calls.
LLM_TIMEOUT = 1.5
LLM_BATCH_TOKENS = 1000
# Shortened webhook schedule: attempts 1-5, waits in seconds.
WEBHOOK_DELAYS = [0.3, 0.6, 0.6, 0.6]


def stack_settings(root: Path, **extra: str) -> dict[str, str]:
    """A stack's settings for tests: free loopback ports, its files in ``root``, a fixed
    secret, quiet logs; ``extra`` on top (``TOLK_...`` names)."""
    return {
        "TOLK_TEMPORAL_PORT": str(free_port()),
        "TOLK_TEMPORAL_UI_PORT": str(free_port()),
        "TOLK_TEMPORAL_DB_FILE": str(root / "temporal.db"),
        "TOLK_API_PORT": str(free_port()),
        "TOLK_DATABASE_URL": f"sqlite+aiosqlite:///{root / 'tolk.db'}",
        "TOLK_VAR_DIR": str(root / "var"),
        "TOLK_SECRET_KEY": "test-secret-key",
        "TOLK_LOG_LEVEL": "warning",
        # The suite's organizations share one stack and hammer it: the server's default
        # quotas stay out of the way (tests/test_quotas.py sets each organization's own).
        "TOLK_QUOTAS_REQUESTS_PER_MINUTE": "1000000",
        "TOLK_QUOTAS_ACTIVE_GROUPS": "1000000",
        **extra,
    }


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark ``PG_SUITE`` with ``pg``. A name there that its collected file no longer has
    (a renamed test) is an error, not a test quietly left out of the PostgreSQL leg."""
    modules: dict[str, Any] = {}
    for item in items:
        if item.path.name in PG_SUITE or collected_name(item) in PG_SUITE:
            item.add_marker(pytest.mark.pg)
        if isinstance(item, pytest.Function):
            modules[item.path.name] = item.module
    named = (entry.split("::") for entry in PG_SUITE if "::" in entry)
    stale = [f"{f}::{t}" for f, t in named if f in modules and not hasattr(modules[f], t)]
    if stale:
        raise pytest.UsageError(f"PG_SUITE names tests that do not exist: {sorted(stale)}")


def collected_name(item: pytest.Item) -> str:
    """``file::test``, without the test's parameters."""
    return f"{item.path.name}::{getattr(item, 'originalname', item.name)}"


@pytest.fixture(scope="session")
def session_database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The session stack's database: a SQLite file, or a PostgreSQL server started for the
    session and removed (data and all) after it."""
    if DATABASE == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('db') / 'tolk.db'}"
        return
    server = PostgresServer().start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="session")
def webhook_ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="session")
def fake_llm() -> Iterator[FakeLLM]:
    """The stand-in for paid LLM providers: one server, both wire formats; a test picks a
    behaviour through the model name (``drop-keys:mytest``)."""
    with FakeLLM() as fake:
        fake.slow_seconds = LLM_TIMEOUT * 2
        yield fake


@pytest.fixture(scope="session")
def stack(
    tmp_path_factory: pytest.TempPathFactory,
    webhook_ca: trustme.CA,
    fake_llm: FakeLLM,
    session_database_url: str,
) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("stack")
    ca_file = root / "webhook-ca.pem"
    webhook_ca.cert_pem.write_to_path(str(ca_file))
    overrides = {
        "TOLK_TEMPORAL_NAMESPACE": "tolk-test",
        "TOLK_TRANSLATE_MAX_ATTEMPTS": "3",
        "TOLK_TRANSLATE_INITIAL_INTERVAL_SECONDS": "0.2",
        "TOLK_TRANSLATE_HEARTBEAT_SECONDS": "4",
        # WebSocket pings every second, so a test sees one soon (clients still get the
        # default 20 s to answer: a busy test process must not be taken for a dead one).
        "TOLK_PROGRESS_PING_SECONDS": "1",
        "TOLK_WORKER_GRACEFUL_SHUTDOWN_SECONDS": "3",
        # Few activities at once, so a big group is reliably still in flight after its
        # first job finishes (cancel tests rely on this).
        "TOLK_WORKER_MAX_CONCURRENT_ACTIVITIES": "4",
        "TOLK_WEBHOOKS_CA_FILE": str(ca_file),
        "TOLK_WEBHOOKS_ALLOWED_HOSTS": json.dumps([RECEIVER_HOST]),
        "TOLK_WEBHOOKS_RETRY_DELAYS_SECONDS": json.dumps(WEBHOOK_DELAYS),
        "TOLK_WEBHOOKS_TIMEOUT_SECONDS": "3",
        # The reconciler looks for accepted groups without a workflow every second.
        "TOLK_RECONCILE_INTERVAL_SECONDS": "1",
        "TOLK_RECONCILE_GRACE_SECONDS": "2",
        "TOLK_LLM_PROVIDERS": json.dumps(
            {
                "openai": {
                    "type": "openai",
                    "base_url": fake_llm.openai_base,
                    "api_key": fake_llm.api_key,
                },
                "anthropic": {
                    "type": "anthropic",
                    "base_url": fake_llm.anthropic_base,
                    "api_key": fake_llm.api_key,
                },
                "stale": {
                    "type": "openai",
                    "base_url": fake_llm.openai_base,
                    "api_key": "revoked-key",
                },
            }
        ),
        "TOLK_LLM_TIMEOUT_SECONDS": str(LLM_TIMEOUT),
        "TOLK_LLM_ATTEMPTS_PER_MODEL": "2",
        "TOLK_LLM_BATCH_TOKENS": str(LLM_BATCH_TOKENS),
        "TOLK_LLM_PRICES": json.dumps({"openai/priced": {"input": 2.0, "output": 8.0}}),
        "TOLK_DATABASE_URL": session_database_url,
    }
    s = Stack(stack_settings(root, **overrides), log_dir=root / "logs", headless=True)
    s.root = root  # type: ignore[attr-defined]
    try:
        s.start()
        yield s
    finally:
        s.stop()


def run_tolk(stack: Stack, *args: str) -> str:
    """Run the real ``tolk`` admin command against the test stack's database."""
    result = subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        env=stack.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout


def broken_engine(stack: Stack, org_id: str, name: str, locale: str = "ja") -> str:
    """An engine whose model for ``locale`` names a provider this server does not have:
    jobs into that locale fail for good (a configuration error is not retried); other
    locales use the pseudo provider."""
    models = json.dumps(
        [{"targetLocale": locale, "provider": "unconfigured"}, {"provider": "pseudo"}]
    )
    created = run_tolk(
        stack, "engines", "create", "--org", org_id, "--name", name, "--json", "--models", models
    )
    engine_id: str = json.loads(created)["id"]
    return engine_id


def new_org_key(stack: Stack, name: str) -> tuple[str, str]:
    org = json.loads(run_tolk(stack, "orgs", "create", name, "--json"))["id"]
    key = json.loads(run_tolk(stack, "keys", "create", "--org", org, "--json"))["key"]
    return org, key


def run_sql(stack: Stack, statement: str | Executable, **params: Any) -> list[Row[Any]]:
    """Run one statement against ``stack``'s own database, SQLite or PostgreSQL, through
    the driver the stack uses, in a transaction of its own; its rows (none for a write).
    A ``str`` is SQL with ``:name`` parameters; a SQLAlchemy statement on the tables
    (``update(JobGroup)...``) binds datetimes and JSON the way each backend stores them.
    Callable from sync and async tests alike (its own event loop, in a thread)."""
    url = stack.settings.database_url
    sql = text(statement) if isinstance(statement, str) else statement

    async def run() -> list[Row[Any]]:
        engine = create_async_engine(url)
        try:
            async with engine.begin() as conn:
                result = await conn.execute(sql, params)
                return list(result.fetchall()) if result.returns_rows else []
        finally:
            await engine.dispose()

    with ThreadPoolExecutor(1) as thread:
        return thread.submit(asyncio.run, run()).result()


@pytest.fixture(scope="session")
def org_key(stack: Stack) -> tuple[str, str]:
    return new_org_key(stack, "Acme")


@pytest.fixture(scope="session")
def api_key(org_key: tuple[str, str]) -> str:
    return org_key[1]


@pytest.fixture(scope="session")
def other_key(stack: Stack) -> str:
    return new_org_key(stack, "Globex")[1]


@pytest.fixture()
def client(stack: Stack, api_key: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.api_url, headers={"X-API-Key": api_key}, timeout=30) as c:
        yield c


@pytest.fixture()
def db_counts(stack: Stack) -> Callable[[], dict[str, int]]:
    """Row counts of the real database, read directly."""

    def counts() -> dict[str, int]:
        return {
            name: run_sql(stack, select(func.count()).select_from(table))[0][0]
            for name, table in (("jobgroup", JobGroup), ("job", Job), ("blob", Blob))
        }

    return counts


def wait_for_group(
    client: httpx.Client, group_id: str, timeout: float = 60, terminal: bool = True
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        resp = client.get(f"/jobs/localization/groups/{group_id}")
        resp.raise_for_status()
        body = resp.json()
        if body["status"] in {"completed", "partial", "failed", "cancelled"}:
            return body
        time.sleep(0.2)
    raise AssertionError(f"group {group_id} not terminal after {timeout}s: {body}")


@pytest.fixture()
def receiver(webhook_ca: trustme.CA) -> Iterator[Callable[..., Receiver]]:
    """Start HTTPS webhook receivers (``receiver(Reply(500), Reply(200))``); all stop after
    the test. The default host is the one the test stack allows."""
    started: list[Receiver] = []

    def make(*replies: Reply, host: str = RECEIVER_HOST) -> Receiver:
        r = Receiver(webhook_ca, host=host, script=list(replies)).__enter__()
        started.append(r)
        return r

    yield make
    for r in started:
        r.__exit__(None, None, None)
