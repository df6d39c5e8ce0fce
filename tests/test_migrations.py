"""Schema migrations on real SQLite files and a real PostgreSQL server: a database of the
last release without migrations (made by revision 0001, or on SQLite by that release's
``create_all``) upgrades to the head through ``tolk db upgrade`` and keeps every row; a
second upgrade changes nothing; after an upgrade the schema is exactly the models' (the
guard that a table change comes with its revision); processes upgrading one database at
once all succeed."""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, MetaData, inspect, pool, select, text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlmodel import SQLModel

from connections import keep_trying
from store import migrations, schema
from store.db import Database
from store.tables import Job, JobGroup, SpendEntry
from tests.conftest import stack_settings
from tests.postgres import PostgresServer

ROOT = Path(__file__).resolve().parent.parent
# What the last release's create_all made, per backend (revision 0001's DDL).
OLD_DDL = {
    name: ROOT / "tests" / "data" / f"schema-0001-{name}.sql" for name in ("sqlite", "postgresql")
}
HEAD = "0003"
# What revision 0002 adds: the tables and indexes a database of the last release lacks.
NEW_TABLES = {
    "orglimits", "review", "consolesession", "ratewindow", "providercall", "spendentry",
    "groupspendlimit",
}  # fmt: skip
NEW_INDEXES = {
    "job": {"ix_job_org_status"},
    "review": {"ix_review_job"},
    "providercall": {"ix_providercall_provider_at"},
    "spendentry": {"ix_spendentry_group", "ix_spendentry_org_created"},
}
AT = datetime(2026, 11, 30, 12, 30, tzinfo=UTC)
SHA = "ab" * 32
# Rows in every table of the last release, in its columns.
OLD_ROWS: dict[str, list[dict[str, Any]]] = {
    "organization": [{"id": "org_1", "name": "Acme", "created_at": AT}],
    "apikey": [
        {"id": "tolk_ab12cd34", "organization_id": "org_1", "key_hash": "hash",
         "email": "ops@acme.test", "created_at": AT, "revoked_at": None},
    ],
    "engine": [
        {"id": "eng_1", "organization_id": "org_1", "name": "default", "description": "",
         "is_default": True, "provider": "pseudo", "config": {"models": []}, "created_at": AT},
    ],
    "blob": [
        {"organization_id": "org_1", "sha256": SHA, "body": b'{"t": "Hello"}', "size": 14,
         "created_at": AT},
    ],
    "jobgroup": [
        {"id": "ljg_1", "organization_id": "org_1", "engine_id": "eng_1", "source_locale": "en",
         "target_locales": ["de", "fr"], "source_ref": SHA, "context": "a greeting",
         "hints": {"t": ["salutation"]}, "locked_keys": None, "callback_url": None,
         "idempotency_key": "idem-1", "fingerprint": "fp", "status": "completed",
         "event_log": [[1, "group.completed"]], "created_at": AT, "completed_at": AT},
    ],
    "job": [
        {"id": f"ljb_{locale}", "group_id": "ljg_1", "organization_id": "org_1",
         "engine_id": "eng_1", "source_locale": "en", "target_locale": locale,
         "status": "completed", "output_ref": SHA, "error": None, "warnings": [],
         "steps": [{"stage": "translate"}], "usage": {"inputTokens": 3}, "attempts": 1,
         "created_at": AT, "started_at": AT, "completed_at": AT}
        for locale in ("de", "fr")
    ],
    "delivery": [
        {"id": 7, "organization_id": "org_1", "job_id": "ljb_de", "event_id": "evt_1",
         "event_type": "job.completed", "url": "https://hooks.acme.test/", "series": 1,
         "attempt": 1, "outcome": "delivered", "status_code": 200, "error": None,
         "duration_ms": 12, "next_attempt_at": None, "created_at": AT},
    ],
    "memoryentry": [
        {"organization_id": "org_1", "key": "cd" * 32, "text": "Hallo", "created_at": AT},
    ],
    "webhookconfig": [
        {"organization_id": "org_1", "default_url": None, "secret": "whsec_x",
         "previous_secret": None, "previous_until": None, "updated_at": AT},
    ],
    "processusage": [
        {"id": 3, "organization_id": "org_1", "created_at": AT, "source_locale": "en",
         "target_locale": "de", "engine_id": "eng_1", "model": "pseudo", "strings": 2,
         "memory_hits": 1, "input_tokens": 5, "output_tokens": 6, "provider_calls": 1,
         "duration_ms": 40, "trigger_type": "cli", "file_path": "app/en.json",
         "session_id": None},
    ],
}  # fmt: skip


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    server = PostgresServer().start()
    try:
        yield server
    finally:
        server.stop()


_databases = itertools.count(1)


def new_postgres_database(server: PostgresServer) -> str:
    """A fresh, empty database on ``server``; its URL."""
    url = server.url.rsplit("/", 1)[0] + f"/migrations_{next(_databases)}"
    create_database_next_to(server.url, url)
    return url


def create_database_next_to(existing: str, url: str) -> None:
    """Create the database ``url`` names, on the server of the database ``existing``."""

    async def create() -> None:
        engine = create_async_engine(existing, isolation_level="AUTOCOMMIT")
        try:
            async with engine.connect() as conn:
                await conn.execute(text(f"CREATE DATABASE {url.rsplit('/', 1)[1]}"))
        finally:
            await engine.dispose()

    asyncio.run(create())


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database of each backend."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'tolk.db'}"
    return new_postgres_database(request.getfixturevalue("postgres"))


def on(url: str, fn: Callable[[Connection], Any], *, write: bool = False) -> Any:
    """``fn`` on a synchronous connection to ``url`` (in one transaction when ``write``)."""

    async def run() -> Any:
        engine = create_async_engine(url, poolclass=pool.NullPool)
        try:
            async with engine.begin() if write else engine.connect() as conn:
                return await conn.run_sync(fn)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def environment(url: str, root: Path) -> dict[str, str]:
    """A ``tolk`` process's environment: the database at ``url``, its files in ``root``."""
    env = {k: v for k, v in os.environ.items() if k not in {"TOLK_DEBUG", "CI"}}
    env.update(stack_settings(root, TOLK_DATABASE_URL=url))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def tolk_db(url: str, root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``tolk db ...`` as a process of its own, on the database at ``url``."""
    return subprocess.run(
        [sys.executable, "-m", "cli.main", "db", *args],
        env=environment(url, root), cwd=root, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def upgrade_to(revision: str) -> Callable[[Connection], None]:
    def run(conn: Connection) -> None:
        command.upgrade(migrations.config(connection=conn), revision)

    return run


def differences(conn: Connection) -> list[Any]:
    """What autogenerate would write between the database and the models."""
    context = MigrationContext.configure(conn, opts={"compare_type": True})
    return list(compare_metadata(context, SQLModel.metadata))


def shape(conn: Connection) -> dict[str, Any]:
    """The schema as the database reports it, and its version."""
    found = inspect(conn)
    tables = {
        name: (
            [
                (c["name"], repr(c["type"]), c["nullable"], c.get("default"))
                for c in found.get_columns(name)
            ],
            sorted((str(i["name"]), tuple(i["column_names"])) for i in found.get_indexes(name)),
            found.get_pk_constraint(name)["constrained_columns"],
            sorted(
                (tuple(fk["constrained_columns"]), str(fk["referred_table"]))
                for fk in found.get_foreign_keys(name)
            ),
        )
        for name in found.get_table_names()
    }
    return {"tables": tables, "version": MigrationContext.configure(conn).get_current_revision()}


def insert_old_rows(conn: Connection) -> None:
    old = MetaData()
    old.reflect(conn)
    for name, rows in OLD_ROWS.items():
        conn.execute(old.tables[name].insert(), rows)


def _plain(value: Any) -> Any:
    """A value as both backends give it back: datetimes naive UTC (SQLite keeps no zone)."""
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    return value


def old_rows_now(conn: Connection) -> dict[str, list[dict[str, Any]]]:
    """The old tables' rows, in the old columns, as the database holds them now."""
    now = MetaData()
    now.reflect(conn)
    found = {}
    for name, rows in OLD_ROWS.items():
        table = now.tables[name]
        columns = [table.c[column] for column in rows[0]]
        found[name] = [
            {key: _plain(value) for key, value in row._mapping.items()}
            for row in conn.execute(select(*columns).order_by(*table.primary_key.columns))
        ]
    return found


def expected_rows() -> dict[str, list[dict[str, Any]]]:
    return {
        name: [{key: _plain(value) for key, value in row.items()} for row in rows]
        for name, rows in OLD_ROWS.items()
    }


def make_previous_schema(kind: str, url: str) -> None:
    """The last release's schema: revision 0001, or that release's create_all."""
    if kind == "revision 0001":
        on(url, upgrade_to("0001"), write=True)
        return
    ddl = OLD_DDL["sqlite" if url.startswith("sqlite") else "postgresql"].read_text()
    lines = [line for line in ddl.splitlines() if not line.startswith("--")]
    statements = [statement for statement in "\n".join(lines).split(";") if statement.strip()]

    def create(conn: Connection) -> None:
        for statement in statements:
            conn.exec_driver_sql(statement)

    on(url, create, write=True)


def test_revision_0001_is_the_last_releases_schema(database_url: str, tmp_path: Path) -> None:
    """Revision 0001 makes what that release's create_all made, table for table."""
    make_previous_schema("create_all", database_url)
    made_by_create_all = on(database_url, shape)
    other = (
        f"sqlite+aiosqlite:///{tmp_path / 'other.db'}"
        if database_url.startswith("sqlite")
        else database_url + "_other"
    )
    if not database_url.startswith("sqlite"):
        create_database_next_to(database_url, other)
    make_previous_schema("revision 0001", other)
    made_by_0001 = on(other, shape)
    assert made_by_0001["tables"].pop("alembic_version")
    assert made_by_0001 == {**made_by_create_all, "version": "0001"}


@pytest.mark.parametrize("kind", ["revision 0001", "create_all"])
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_the_previous_schema_upgrades_to_head_and_keeps_every_row(
    backend: str, kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'tolk.db'}"
    else:
        url = new_postgres_database(request.getfixturevalue("postgres"))
    make_previous_schema(kind, url)
    on(url, insert_old_rows, write=True)
    assert NEW_TABLES.isdisjoint(inspect_tables(url))

    done = tolk_db(url, tmp_path, "upgrade")

    assert done.returncode == 0, done
    before = "none (tables of 0001, not yet versioned)" if kind == "create_all" else "0001"
    assert done.stdout.splitlines() == [
        f"revision before: {before}",
        f"revision after:  {HEAD} (head)",
    ]
    assert on(url, old_rows_now) == expected_rows()
    assert NEW_TABLES <= inspect_tables(url)
    indexes = on(url, lambda conn: {t: index_names(conn, t) for t in NEW_INDEXES})
    for table, names in NEW_INDEXES.items():
        assert names <= indexes[table], (table, indexes[table])
    assert on(url, differences) == []
    assert on(url, lambda conn: MigrationContext.configure(conn).get_current_revision()) == HEAD

    async def through_the_models() -> None:
        """The service's own models read the old rows and write the new tables."""
        db = Database(url)
        try:
            async with db.session() as session:
                job = await session.get(Job, "ljb_de")
                group = await session.get(JobGroup, "ljg_1")
                assert job is not None and job.draft_ref is None and job.steps
                assert group is not None and group.pipeline is None
                assert group.target_locales == ["de", "fr"]
                session.add(
                    SpendEntry(
                        organization_id="org_1", kind="job", group_id="ljg_1", job_id="ljb_de",
                        engine_id="eng_1", target_locale="de", model="pseudo", cost_usd=0.5,
                    )
                )  # fmt: skip
                await session.commit()
        finally:
            await db.close()

    asyncio.run(through_the_models())


def inspect_tables(url: str) -> set[str]:
    return set(on(url, lambda conn: inspect(conn).get_table_names()))


def index_names(conn: Connection, table: str) -> set[str]:
    return {str(index["name"]) for index in inspect(conn).get_indexes(table)}


def test_a_second_upgrade_changes_nothing_and_says_so(database_url: str, tmp_path: Path) -> None:
    first = tolk_db(database_url, tmp_path, "upgrade")
    assert first.returncode == 0, first
    assert first.stdout.splitlines() == [
        "revision before: none",
        f"revision after:  {HEAD} (head)",
    ]
    schema_after_first = on(database_url, shape)

    second = tolk_db(database_url, tmp_path, "upgrade")

    assert second.returncode == 0, second
    assert second.stdout.splitlines() == [
        f"revision before: {HEAD} (head)",
        f"revision after:  {HEAD} (head)",
        "up to date: nothing changed",
    ]
    assert on(database_url, shape) == schema_after_first
    current = tolk_db(database_url, tmp_path, "current")
    assert current.returncode == 0, current
    assert current.stdout == f"{HEAD} (head)\n"


def test_after_an_upgrade_the_schema_is_exactly_the_models(database_url: str) -> None:
    """The guard for the next table change: without its revision, this fails."""
    done = asyncio.run(schema.upgrade(database_url))
    assert (done.before, done.after, done.stamped) == (None, HEAD, None)
    assert on(database_url, differences) == []


def test_a_database_create_all_made_of_todays_tables_is_stamped_at_head(
    database_url: str,
) -> None:
    """Made before there were versions, yet with every table of today: nothing to create,
    only the version to record."""
    on(database_url, SQLModel.metadata.create_all, write=True)
    before = on(database_url, shape)

    done = asyncio.run(schema.upgrade(database_url))

    assert (done.before, done.after, done.stamped) == (None, HEAD, HEAD)
    after = on(database_url, shape)
    assert after["tables"].pop("alembic_version")
    assert after == {**before, "version": HEAD}


def test_a_database_of_an_in_between_release_gets_only_what_it_lacks(tmp_path: Path) -> None:
    """Made by create_all after 0001 but before some of 0002's tables: stamped at 0001,
    and 0002 adds the rest without tripping over what is there."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'tolk.db'}"
    make_previous_schema("create_all", url)
    review = SQLModel.metadata.tables["review"]
    on(url, lambda conn: review.create(conn), write=True)
    on(url, insert_old_rows, write=True)

    done = asyncio.run(schema.upgrade(url))

    assert (done.before, done.after, done.stamped) == (None, HEAD, "0001")
    assert on(url, differences) == []
    assert on(url, old_rows_now) == expected_rows()


def test_tables_matching_no_revision_are_left_alone(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'tolk.db'}"
    on(url, lambda conn: SQLModel.metadata.tables["organization"].create(conn), write=True)

    with pytest.raises(schema.UnknownSchema, match="organization"):
        asyncio.run(schema.upgrade(url))

    assert inspect_tables(url) == {"organization"}


def test_two_processes_upgrading_one_fresh_postgresql_database_both_succeed(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    """Both start while the upgrade lock is held, so both are waiting when it is let go:
    one upgrades, the other then finds the work done."""
    url = new_postgres_database(postgres)

    async def race() -> list[subprocess.CompletedProcess[str]]:
        engine = create_async_engine(url, poolclass=pool.NullPool)
        try:
            async with engine.connect() as holder:
                await holder.execute(
                    text("SELECT pg_advisory_lock(:key)"), {"key": schema.LOCK_KEY}
                )
                upgrades = [
                    asyncio.create_task(asyncio.to_thread(tolk_db, url, tmp_path, "upgrade"))
                    for _ in range(2)
                ]
                deadline = time.monotonic() + 120  # only to catch a hang
                while time.monotonic() < deadline and not any(u.done() for u in upgrades):
                    waiting = await holder.scalar(
                        text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                             "AND NOT granted")
                    )  # fmt: skip
                    if waiting == 2:
                        break
                    await asyncio.sleep(0.05)
                await holder.execute(
                    text("SELECT pg_advisory_unlock(:key)"), {"key": schema.LOCK_KEY}
                )
                await holder.commit()
            return list(await asyncio.gather(*upgrades))
        finally:
            await engine.dispose()

    results = asyncio.run(race())

    for done in results:
        assert done.returncode == 0, done
    befores = sorted(done.stdout.splitlines()[0] for done in results)
    assert befores == [f"revision before: {HEAD} (head)", "revision before: none"]
    assert on(url, differences) == []
    assert on(url, lambda conn: MigrationContext.configure(conn).get_current_revision()) == HEAD


def test_two_processes_upgrading_one_fresh_sqlite_file_both_succeed(tmp_path: Path) -> None:
    """Both start while another writer holds the file: each waits for the writer slot, one
    upgrades, the other then finds the work done."""
    file = tmp_path / "tolk.db"
    url = f"sqlite+aiosqlite:///{file}"
    holder = sqlite3.connect(file, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        upgrade = [sys.executable, "-m", "cli.main", "db", "upgrade"]
        env = environment(url, tmp_path)
        upgrades = [
            subprocess.Popen(upgrade, env=env, cwd=tmp_path, stdout=subprocess.PIPE, text=True)
            for _ in range(2)
        ]
        time.sleep(2)  # let both reach the writer slot (they wait up to the busy timeout)
    finally:
        holder.rollback()
        holder.close()
    results = [(proc.communicate(timeout=300)[0], proc.returncode) for proc in upgrades]

    for out, code in results:
        assert code == 0, out
    befores = sorted(out.splitlines()[0] for out, _ in results)
    assert befores == [f"revision before: {HEAD} (head)", "revision before: none"]
    assert on(url, differences) == []


def test_a_process_waits_out_a_database_that_is_not_there_yet() -> None:
    """As before migrations: the upgrade at start is retried until the server answers."""
    server = PostgresServer()  # its port chosen, nothing listening there yet
    log = logging.getLogger("tests.migrations")

    class Waits(logging.Handler):
        def __init__(self) -> None:
            super().__init__()
            self.messages: list[str] = []
            self.logged = asyncio.Event()

        def emit(self, record: logging.LogRecord) -> None:
            self.messages.append(record.getMessage())
            self.logged.set()

    waits = Waits()
    log.addHandler(waits)

    async def scenario() -> None:
        db = Database(server.url)
        try:
            waiting = asyncio.create_task(
                keep_trying("the database", db.create_schema, max_delay=0.5, log=log)
            )
            await asyncio.wait_for(waits.logged.wait(), 120)  # only to catch a hang
            assert "waiting for the database" in waits.messages[0]
            assert not waiting.done()
            await asyncio.to_thread(server.start)
            await asyncio.wait_for(waiting, 120)
        finally:
            await db.close()

    try:
        asyncio.run(scenario())
        assert asyncio.run(schema.current(server.url)) == HEAD
    finally:
        log.removeHandler(waits)
        server.stop()
