"""The request rate limit's counters, in the database so that every API process counts
against the same limit: a sliding window counter over clock minutes. The estimate of the
last 60 s is this minute's count plus the previous minute's, weighted by how much of it
still lies within 60 s of now (Cloudflare's "sliding window counter").

Why not a limiter library: the well-kept ones (``limits``, ``pyrate-limiter``) keep shared
counters in Redis, Memcached, MongoDB or blocking SQLite/PostgreSQL connections; the
service's own database, reached asynchronously, is the one store every deployment has.
One conditional upsert per request keeps the count atomic across processes."""

from __future__ import annotations

import math
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from store.db import dialect_insert
from store.tables import RateWindow

WINDOW_SECONDS = 60


@dataclass(frozen=True)
class RateCheck:
    """One request's place against the limit: taken or not, and the ``RateLimit-*``
    figures (remaining requests, seconds until the window resets, seconds to wait)."""

    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int
    retry_after: int


async def take(session: AsyncSession, organization_id: str, limit: int, now: float) -> RateCheck:
    """Count one request of the organization at ``now`` (epoch seconds) unless it would take
    the estimate of the last 60 s over ``limit``; commits."""
    window = int(now // WINDOW_SECONDS)
    elapsed = now - window * WINDOW_SECONDS
    reset = max(1, math.ceil(WINDOW_SECONDS - elapsed))
    previous = await session.scalar(
        select(col(RateWindow.count)).where(
            col(RateWindow.organization_id) == organization_id, col(RateWindow.window) == window - 1
        )
    )
    carried = (previous or 0) * (WINDOW_SECONDS - elapsed) / WINDOW_SECONDS
    room = limit - carried  # what this minute may still count
    count = None
    if room >= 1:
        insert = dialect_insert(session.get_bind().dialect.name)
        stmt = insert(RateWindow).values(organization_id=organization_id, window=window, count=1)
        stmt = stmt.on_conflict_do_update(
            index_elements=["organization_id", "window"],
            set_={"count": col(RateWindow.count) + 1},
            where=col(RateWindow.count) + 1 <= room,
        ).returning(RateWindow.count)
        count = (await session.execute(stmt)).scalar()
        if count == 1:  # a new minute: the ones before the previous are of no more use
            await session.execute(
                delete(RateWindow).where(
                    col(RateWindow.organization_id) == organization_id,
                    col(RateWindow.window) < window - 1,
                )
            )
    await session.commit()
    if count is not None:
        remaining = max(0, math.floor(room - count))
        return RateCheck(True, limit, remaining, reset, 0)
    current = await session.scalar(
        select(col(RateWindow.count)).where(
            col(RateWindow.organization_id) == organization_id, col(RateWindow.window) == window
        )
    )
    return RateCheck(False, limit, 0, reset, _wait(limit, previous or 0, current or 0, elapsed))


def _wait(limit: int, previous: int, current: int, elapsed: float) -> int:
    """Whole seconds until one more request fits: until the previous minute's weight has
    fallen far enough, or (this minute full) until the next minute."""
    if current + 1 > limit or previous == 0:
        return max(1, math.ceil(WINDOW_SECONDS - elapsed))
    # previous * (60 - t) / 60 + current + 1 <= limit,
    # so t >= 60 * (1 - (limit - current - 1) / previous)
    fits_at = WINDOW_SECONDS * (1 - (limit - current - 1) / previous)
    return max(1, math.ceil(fits_at - elapsed))
