"""The database's schema version: ``upgrade`` brings a database to the newest revision
(``store/migrations/``), ``current`` reads where it is. Every process upgrades as it starts,
and ``tolk db upgrade`` does it ahead of a rollout.

Processes starting together upgrade one at a time: on PostgreSQL the upgrade holds a
transaction-level advisory lock (DDL is transactional there: the others wait, then find the
work done); on SQLite the upgrade is one ``BEGIN IMMEDIATE`` transaction, which takes the
file's single writer slot first, so the others wait out the busy timeout, then retry.

A database made by ``create_all`` before there were migrations has the tables and no
``alembic_version``: one that matches the tables of today is stamped at the head, one with
the tables of revision 0001 is stamped there and upgraded from it (0002 adds only what it
lacks), anything else is refused rather than guessed at.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from pathlib import Path
from typing import Any

# Alembic logs at INFO as it is imported and as it works, on every start of every process
# and admin command (their stderr): set before its imports, only its warnings pass. What an
# upgrade did, its callers log (``Upgrade``'s text).
logging.getLogger("alembic").setLevel(logging.WARNING)

from alembic import command  # noqa: E402
from alembic.autogenerate import compare_metadata  # noqa: E402
from alembic.migration import MigrationContext  # noqa: E402
from alembic.script import ScriptDirectory  # noqa: E402
from sqlalchemy import Connection, event, inspect, pool, text  # noqa: E402
from sqlalchemy.exc import OperationalError  # noqa: E402
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine  # noqa: E402
from sqlmodel import SQLModel  # noqa: E402

from store import migrations, tables  # noqa: E402, F401  (tables: registers the tables)
from store.db import _sqlite_pragmas as sqlite_pragmas  # noqa: E402

# pg_advisory_xact_lock's key: any constant of this application's own ("tolk" in ASCII).
LOCK_KEY = 0x746F6C6B
# SQLite's result codes of another writer holding the file past the busy timeout.
_SQLITE_BUSY = ("SQLITE_BUSY", "SQLITE_LOCKED")
_ATTEMPTS = 5


class UnknownSchema(RuntimeError):
    """Tables of Tolk without a version, matching no revision: not touched."""


@dataclasses.dataclass(frozen=True)
class Upgrade:
    before: str | None  # the revision found; None: none (an empty or unversioned database)
    after: str | None
    stamped: str | None = None  # an unversioned database: the revision it was found to match

    @property
    def changed(self) -> bool:
        return self.before != self.after

    def __str__(self) -> str:
        before = self.before or (
            f"unversioned tables of {self.stamped}" if self.stamped else "an empty database"
        )
        if not self.changed:
            return f"schema up to date at {self.after}"
        return f"schema upgraded from {before} to {self.after}"


def head() -> str | None:
    return ScriptDirectory.from_config(migrations.config()).get_current_head()


async def upgrade(database_url: str) -> Upgrade:
    """Bring the database to the head revision; idempotent."""
    for attempt in range(_ATTEMPTS):
        try:
            done: Upgrade = await _in_transaction(database_url, _upgrade)
        except OperationalError as err:
            if not _busy(err) or attempt == _ATTEMPTS - 1:
                raise
            await asyncio.sleep(0.2 * (attempt + 1))
            continue
        return done
    raise AssertionError("unreachable")


async def current(database_url: str) -> str | None:
    """The database's revision, None for none."""
    engine = create_async_engine(database_url, poolclass=pool.NullPool)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(_revision)
    finally:
        await engine.dispose()


async def _in_transaction(database_url: str, fn: Any) -> Any:
    engine = _engine(database_url)
    try:
        async with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})
            return await conn.run_sync(fn)
    finally:
        await engine.dispose()


def _busy(err: OperationalError) -> bool:
    """Another SQLite writer held the file past the busy timeout (the driver's error or the
    one it wraps carries SQLite's result code)."""
    causes = (err.orig, getattr(err.orig, "__cause__", None))
    return any(getattr(cause, "sqlite_errorname", None) in _SQLITE_BUSY for cause in causes)


def _engine(database_url: str) -> AsyncEngine:
    engine = create_async_engine(database_url, poolclass=pool.NullPool, hide_parameters=True)
    if engine.dialect.name == "sqlite":
        if engine.url.database and engine.url.database != ":memory:":  # as store/db.py does
            Path(engine.url.database).parent.mkdir(parents=True, exist_ok=True)

        # The driver's own transaction handling would not put DDL in the transaction:
        # switched off, and the transaction begun here, taking the writer slot at once.
        @event.listens_for(engine.sync_engine, "connect")
        def _connect(dbapi_connection: Any, record: Any) -> None:
            sqlite_pragmas(dbapi_connection, record)  # WAL and the busy timeout, as always
            dbapi_connection.isolation_level = None

        @event.listens_for(engine.sync_engine, "begin")
        def _begin(conn: Connection) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _revision(conn: Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


def _upgrade(conn: Connection) -> Upgrade:
    before = _revision(conn)
    cfg = migrations.config(connection=conn)
    stamped = None
    if before is None:
        stamped = _unversioned_match(conn)
        if stamped is not None:
            command.stamp(cfg, stamped)
    command.upgrade(cfg, "head")
    return Upgrade(before=before, after=_revision(conn), stamped=stamped)


def _unversioned_match(conn: Connection) -> str | None:
    """The revision an unversioned database's tables match; None for an empty one."""
    found = set(inspect(conn).get_table_names()) & set(SQLModel.metadata.tables)
    if not found:
        return None
    context = MigrationContext.configure(conn, opts={"compare_type": True})
    if not compare_metadata(context, SQLModel.metadata):
        return head()
    first = ScriptDirectory.from_config(migrations.config()).get_revision("0001")
    if first is not None and first.module.TABLES <= found:
        return "0001"
    raise UnknownSchema(
        f"the database has some of Tolk's tables ({', '.join(sorted(found))}) but no schema "
        "version, and they match no revision: not upgraded"
    )
