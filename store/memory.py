"""The translation memory of one organization, in the database (``MemoryEntry``)."""

from __future__ import annotations

import logging

from sqlmodel import col, select

from store.db import Database, dialect_insert
from store.tables import MemoryEntry, utcnow

log = logging.getLogger("tolk.memory")
LOOKUP_CHUNK = 500  # keys per query (SQLite's variable limit is far above)


class DatabaseMemory:
    def __init__(self, db: Database, organization_id: str) -> None:
        self.db = db
        self.organization_id = organization_id

    async def lookup(self, keys: list[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        async with self.db.session() as session:
            for start in range(0, len(keys), LOOKUP_CHUNK):
                chunk = keys[start : start + LOOKUP_CHUNK]
                rows = await session.exec(
                    select(MemoryEntry.key, MemoryEntry.text).where(
                        MemoryEntry.organization_id == self.organization_id,
                        col(MemoryEntry.key).in_(chunk),
                    )
                )
                found.update({key: text for key, text in rows.all()})
        return found

    async def store(self, entries: dict[str, str]) -> None:
        """Best effort: memory is a cache, and a failed write must not fail a translation."""
        if not entries:
            return
        try:
            await self._upsert(entries)
        except Exception as err:
            log.warning("translation memory: could not store %d entries: %s", len(entries), err)

    async def _upsert(self, entries: dict[str, str]) -> None:
        now = utcnow()
        rows = [
            {"organization_id": self.organization_id, "key": key, "text": text, "created_at": now}
            for key, text in entries.items()
        ]
        async with self.db.writing() as session:
            stmt = dialect_insert(self.db.engine.dialect.name)(MemoryEntry).values(rows)
            stmt = stmt.on_conflict_do_update(
                index_elements=["organization_id", "key"], set_={"text": stmt.excluded.text}
            )
            await session.execute(stmt)
            await session.commit()
