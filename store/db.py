"""One async database engine per process. SQLite gets WAL and a busy timeout because the
API and the worker write to the same file from different processes.

The API's frequent small reads (the progress hub's checks, and each stream connect's key
and group-owner lookups) go through ``Database.read``. On a SQLite file they run on a
plain ``sqlite3`` connection in a reader thread of their own, one hop from the event
loop: through aiosqlite every driver call (connect, execute, fetch, close) is a round
trip between the loop and the driver's thread, and while a loop is busy with a thousand
streams connecting each trip waits for it (BENCHMARKS.md, "Reading these figures")."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib
import logging
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.orm import Session
from sqlmodel.ext.asyncio.session import AsyncSession

from store import tables  # noqa: F401  (registers the tables)

T = TypeVar("T")
log = logging.getLogger("tolk.db")


def dialect_insert(dialect: str) -> Any:
    """The dialect's own INSERT, with its ON CONFLICT clauses (SQLite or PostgreSQL). Imported
    on use: the engine loads its own dialect, and importing the other one as well would
    cost every process 2 MB."""
    return importlib.import_module(f"sqlalchemy.dialects.{dialect}").insert


# SQLite result codes that mean "busy, or the file out of reach", not a defect in a query.
_SQLITE_OUTAGES = {
    "SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_IOERR", "SQLITE_CANTOPEN", "SQLITE_FULL",
    "SQLITE_PROTOCOL", "SQLITE_READONLY",
}  # fmt: skip
# PostgreSQL SQLSTATE classes and codes of the same kind: connection exceptions (08),
# insufficient resources (53: too many clients, out of memory), the server shutting down
# or starting up (57P01-57P03), and serialization failures and deadlocks (40001, 40P01)
# that a new attempt resolves.
_PG_OUTAGE_CLASSES = ("08", "53")
_PG_OUTAGES = {"57P01", "57P02", "57P03", "40001", "40P01"}


def unavailable(err: BaseException) -> bool:
    """The database could not be reached, dropped the connection, was busy or out of
    resources: an outage to wait out (a 503 for the API, another attempt for an activity),
    not a defect (a query that is wrong fails the same way however often it is tried).
    Drivers say so in several forms: SQLAlchemy's DBAPI errors carrying SQLite's result
    code or PostgreSQL's SQLSTATE, an invalidated connection, or, while connecting, the
    socket's own OSError (asyncpg's ``ConnectionError: unexpected connection_lost()``)."""
    if isinstance(err, DBAPIError):
        if err.connection_invalidated:
            return True
        driver_error = err.orig
        causes = [driver_error, getattr(driver_error, "__cause__", None)]
        for cause in causes:
            name = getattr(cause, "sqlite_errorname", None)
            if name is not None:
                return name in _SQLITE_OUTAGES
            state = getattr(cause, "sqlstate", None)
            if isinstance(state, str):
                return state[:2] in _PG_OUTAGE_CLASSES or state in _PG_OUTAGES
            if isinstance(cause, (OSError, TimeoutError)):
                return True
        return False
    return isinstance(err, (OSError, TimeoutError))


class Database:
    def __init__(self, url: str) -> None:
        self.url = url
        self._read_file: str | None = None  # a SQLite file: ``read`` uses a reader thread
        self._read_engine: Engine | None = None
        self._reader: ThreadPoolExecutor | None = None
        if url.startswith("sqlite"):
            file = url.split(":///", 1)[-1]
            if file and file != ":memory:":
                Path(file).parent.mkdir(parents=True, exist_ok=True)
                self._read_file = file
        # A file cannot drop a connection: pinging each checkout only costs SQLite a round
        # trip through its thread, a thousand times a second when streams connect at once.
        # hide_parameters: an error's message (logged) never carries the bound values,
        # which are user content (documents, outputs).
        self.engine: AsyncEngine = create_async_engine(
            url, pool_pre_ping=not url.startswith("sqlite"), hide_parameters=True
        )
        if url.startswith("sqlite"):
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        self.sessions = async_sessionmaker(self.engine, class_=AsyncSession, expire_on_commit=False)
        is_sqlite = url.startswith("sqlite")
        self._write_lock: contextlib.AbstractAsyncContextManager[Any] = (
            asyncio.Lock() if is_sqlite else contextlib.nullcontext()
        )

    async def create_schema(self) -> None:
        """Bring the schema to the newest revision (``store/schema.py``: versioned, safe
        when processes start together)."""
        from store import schema  # Alembic is loaded by the processes that upgrade

        done = await schema.upgrade(self.url)
        if done.changed:
            log.info("%s", done)

    def session(self) -> AsyncSession:
        return self.sessions()

    @contextlib.asynccontextmanager
    async def writing(self) -> AsyncIterator[AsyncSession]:
        """A session for one short write transaction. SQLite has a single writer: queueing
        this process's writers here is much faster than SQLite's sleeping busy handler
        (BENCHMARKS.md, "Reading these figures")."""
        async with self._write_lock, self.sessions() as session:
            yield session

    async def read(self, fn: Callable[[Session], T]) -> T:
        """Run ``fn`` (reads only) with a synchronous session: on a SQLite file in the
        reader thread, elsewhere through the async engine."""
        if self._read_file is None:
            async with self.sessions() as session:
                return await session.run_sync(fn)
        if self._reader is None:  # made on first use: only the API (hub, streams) reads so
            self._read_engine = create_engine(f"sqlite:///{self._read_file}", hide_parameters=True)
            event.listen(self._read_engine, "connect", _sqlite_pragmas)
            self._reader = ThreadPoolExecutor(1, thread_name_prefix="tolk-db-read")
        engine = self._read_engine
        return await asyncio.get_running_loop().run_in_executor(
            self._reader, functools.partial(_read, engine, fn)
        )

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.exec_driver_sql("SELECT 1")

    async def close(self) -> None:
        await self.engine.dispose()
        if self._reader is not None and self._read_engine is not None:
            await asyncio.get_running_loop().run_in_executor(
                self._reader, self._read_engine.dispose
            )
            self._reader.shutdown()


def _read(engine: Engine | None, fn: Callable[[Session], T]) -> T:
    with Session(engine) as session:
        return fn(session)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
