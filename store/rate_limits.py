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

from sqlalchemy import Select, delete, select
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from store.db import dialect_insert
from store.tables import RateWindow

WINDOW_SECONDS = 60


@dataclass(frozen=True)
class RateCheck:
    """One request's place against the limit: taken or not, and the ``RateLimit-*``
    figures (remaining requests, seconds until the window resets, seconds to wait).
    ``fits_at``: for a refused request, the exact moment (epoch seconds) one more request
    fits (counts only grow, so none fits sooner, whatever other processes count)."""

    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int
    retry_after: int
    fits_at: float = 0.0


async def take(session: AsyncSession, organization_id: str, limit: int, now: float) -> RateCheck:
    """``count``, then commit."""
    check = await count(session, organization_id, limit, now)
    await session.commit()
    return check


def window_of(now: float) -> int:
    """The clock minute of ``now`` (epoch seconds): the window a request counts in."""
    return int(now // WINDOW_SECONDS)


def previous_count_query(organization_id: str, window: int) -> Select[int]:
    """The organization's count in the minute before ``window``: what the estimate carries
    over. That minute is over, so this read may be made before the transaction that
    counts (``count``'s ``previous``), off the write path."""
    return select(col(RateWindow.count)).where(
        col(RateWindow.organization_id) == organization_id, col(RateWindow.window) == window - 1
    )


async def count(
    session: AsyncSession,
    organization_id: str,
    limit: int,
    now: float,
    previous: tuple[int, int | None] | None = None,
) -> RateCheck:
    """Count one request of the organization at ``now`` (epoch seconds) unless it would take
    the estimate of the last 60 s over ``limit``, in the session's transaction: the caller
    commits it, with whatever else the request writes (``POST /jobs/localization`` counts
    in the transaction that stores the group), or rolls it back with them. ``previous``:
    (window, the count ``previous_count_query`` read for it), read before; used when
    ``now`` still falls in that window."""
    window = window_of(now)
    elapsed = now - window * WINDOW_SECONDS
    reset = max(1, math.ceil(WINDOW_SECONDS - elapsed))
    if previous is not None and previous[0] == window:
        prior = previous[1]
    else:
        prior = await session.scalar(previous_count_query(organization_id, window))
    previous_count = prior or 0
    carried = previous_count * (WINDOW_SECONDS - elapsed) / WINDOW_SECONDS
    room = limit - carried  # what this minute may still count
    counted = None
    if room >= 1:
        insert = dialect_insert(session.get_bind().dialect.name)
        stmt = insert(RateWindow).values(organization_id=organization_id, window=window, count=1)
        stmt = stmt.on_conflict_do_update(
            index_elements=["organization_id", "window"],
            set_={"count": col(RateWindow.count) + 1},
            where=col(RateWindow.count) + 1 <= room,
        ).returning(RateWindow.count)
        counted = (await session.execute(stmt)).scalar()
        if counted == 1:  # a new minute: the ones before the previous are of no more use
            await session.execute(
                delete(RateWindow).where(
                    col(RateWindow.organization_id) == organization_id,
                    col(RateWindow.window) < window - 1,
                )
            )
    if counted is not None:
        remaining = max(0, math.floor(room - counted))
        return RateCheck(True, limit, remaining, reset, 0)
    current = await session.scalar(
        select(col(RateWindow.count)).where(
            col(RateWindow.organization_id) == organization_id, col(RateWindow.window) == window
        )
    )
    fits_in = _fits_in(limit, previous_count, current or 0, elapsed)
    return RateCheck(False, limit, 0, reset, max(1, math.ceil(fits_in)), now + fits_in)


def _fits_in(limit: int, previous: int, current: int, elapsed: float) -> float:
    """Seconds until one more request fits: until the previous minute's weight has fallen
    far enough, or (this minute full) until the next minute."""
    if current + 1 > limit or previous == 0:
        return WINDOW_SECONDS - elapsed
    # previous * (60 - t) / 60 + current + 1 <= limit,
    # so t >= 60 * (1 - (limit - current - 1) / previous)
    fits_at = WINDOW_SECONDS * (1 - (limit - current - 1) / previous)
    return max(0.0, fits_at - elapsed)
