"""The database layer on a real SQLite file: the progress hub's reader path."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import sqlite3
import threading
from pathlib import Path

import pytest
from sqlalchemy import text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from store import accounts, groups, jobs, progress_reads
from store.db import Database, unavailable
from store.tables import Blob, Job, JobGroup


async def accept_group(
    session: AsyncSession, group_id: str, locales: list[str], source_ref: str = "r"
) -> None:
    """An organization and an accepted group of it, one job ``ljb_<locale>`` per locale."""
    org = await accounts.create_organization(session, "acme")
    group = JobGroup(
        id=group_id,
        organization_id=org.id,
        engine_id="eng_x",
        source_locale="en",
        target_locales=locales,
        fingerprint="f",
        source_ref=source_ref,
    )
    jobs = [
        Job(
            id=f"ljb_{locale}",
            group_id=group_id,
            organization_id=org.id,
            engine_id="eng_x",
            source_locale="en",
            target_locale=locale,
        )
        for locale in locales
    ]
    assert await groups.insert_group(session, group, jobs, b"{}")


def test_hub_reads_see_committed_writes_from_the_reader_thread(tmp_path: Path) -> None:
    async def scenario() -> None:
        db = Database(f"sqlite+aiosqlite:///{tmp_path / 'tolk.db'}")
        await db.create_schema()
        async with db.session() as session:
            await accept_group(session, "ljg_store", ["de", "fr"])

        markers = functools.partial(
            progress_reads.progress_markers, group_ids=["ljg_store", "ljg_none"]
        )
        assert await db.read(markers) == {"ljg_store": (0, 0, False, 0)}

        def thread_name(_session: Session) -> str:
            return threading.current_thread().name

        assert (await db.read(thread_name)).startswith("tolk-db-read")

        # Written through the async engine, read at once on the reader's own connection.
        async with db.writing() as session:
            await session.exec(
                update(Job).where(col(Job.id) == "ljb_de").values(status="completed")
            )
            await session.exec(
                update(Job).where(col(Job.id) == "ljb_fr").values(status="failed", error="boom")
            )
            await session.exec(
                update(JobGroup).where(col(JobGroup.id) == "ljg_store").values(status="partial")
            )
            await session.commit()
        assert await db.read(markers) == {"ljg_store": (2, 2, True, 0)}
        states = functools.partial(progress_reads.job_states, group_id="ljg_store")
        assert await db.read(states) == {
            "ljb_de": ("completed", None),
            "ljb_fr": ("failed", "boom"),
        }
        await db.close()

    asyncio.run(scenario())


def test_an_outage_is_told_from_a_defect_on_sqlite(tmp_path: Path) -> None:
    """Busy and out-of-reach are outages (waited out); a wrong query is a defect (fails)."""

    async def scenario() -> None:
        file = tmp_path / "locked.db"
        db = Database(f"sqlite+aiosqlite:///{file}")
        await db.create_schema()
        holder = sqlite3.connect(file)
        holder.execute("BEGIN EXCLUSIVE")  # another process holds the only writer
        try:
            async with db.session() as session:
                await session.execute(text("PRAGMA busy_timeout=0"))
                with pytest.raises(DBAPIError) as busy:
                    await session.execute(text("UPDATE job SET attempts = 1"))
            assert unavailable(busy.value), busy.value
        finally:
            holder.rollback()
            holder.close()
        async with db.session() as session:
            with pytest.raises(DBAPIError) as wrong:
                await session.execute(text("SELECT nothing FROM no_such_table"))
        assert not unavailable(wrong.value), wrong.value
        await db.close()

    asyncio.run(scenario())


def test_an_output_that_comes_too_late_leaves_no_blob(tmp_path: Path) -> None:
    """A translation that finishes after its job was cancelled changes nothing: the job
    keeps its end, and its output is not stored either (no blob nobody refers to)."""

    source_ref = hashlib.sha256(b"{}").hexdigest()

    async def scenario() -> None:
        db = Database(f"sqlite+aiosqlite:///{tmp_path / 'tolk.db'}")
        await db.create_schema()
        async with db.session() as session:
            await accept_group(session, "ljg_late", ["de"], source_ref)
            assert await jobs.record_job_result(session, "ljb_de", status="cancelled", error=None)
            late = b'{"title": "Zu spaet"}'
            stored = await jobs.complete_job(
                session,
                "ljb_de",
                status="completed",
                output=late,
                warnings=[],
                usage={},
                steps=[],
            )
            assert stored == "cancelled"
            row = await session.get(Job, "ljb_de", populate_existing=True)
            assert row is not None and row.output_ref is None
            refs = (await session.exec(select(Blob.sha256))).all()
            assert refs == [source_ref]
        await db.close()

    asyncio.run(scenario())
