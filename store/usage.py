"""The usage of the synchronous ``/process/localize`` calls, one row per call."""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from store.tables import ProcessUsage


async def record_process_usage(session: AsyncSession, usage: ProcessUsage) -> None:
    """Keep one ``/process/localize`` call's usage. Text is cut to its column's length (the
    request models bound it already; this keeps every row within its columns whatever)."""
    for column in ProcessUsage.__table__.columns:  # type: ignore[attr-defined]
        limit = getattr(column.type, "length", None)
        value = getattr(usage, column.name)
        if limit is not None and isinstance(value, str) and len(value) > limit:
            setattr(usage, column.name, value[:limit])
    session.add(usage)
    await session.commit()
