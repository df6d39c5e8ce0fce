"""Provider rate limits shared by every process (API.md, "Quotas, budgets and usage"): a
provider's ``requests_per_minute`` and ``tokens_per_minute`` hold for all workers and API
processes together, as a sliding 60 s window: never more than the limit in any 60 s.

Every call to a limited provider first reserves its place in the ``ProviderCall`` table, in
one write transaction: insert the reservation, read the provider's other calls still in the
window, and keep the row only if the call fits beside them (``window_wait``). SQLite has one
writer at a time, and the insert comes first, so the transaction holds the write lock while
it counts; on PostgreSQL a transaction-scoped advisory lock keyed by the provider does the
same. The reservation carries an estimate of the call's tokens (prompt plus the room for the
answer); after the answer its row gets the real usage, and its time moves to the answer's:
a call counts from its reservation until 60 s after its answer, so however long the request
took to arrive, two calls ``requests_per_minute`` apart arrive 60 s apart or more.

When the window is full the call waits where it is (the activity heartbeats meanwhile, and
its job stays ``processing``) for at most ``IN_PLACE_SECONDS``, trying again as the oldest
call leaves the window. A longer wait ends the attempt with ``ProviderBusy``: the job's
workflow sleeps on a timer and runs the activity again (``workflows/outages.py``), so no
worker slot is held and none of the job's attempts is used up.

Times are the processes' own clocks (seconds since the epoch): processes on several
machines need synchronized clocks (NTP) for the window to hold across them."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import delete, func, update
from sqlmodel import col, select
from temporalio import activity

from localization.batch import ProviderBusy
from store.db import Database
from store.tables import ProviderCall

log = logging.getLogger("tolk.providers")

WINDOW_SECONDS = 60.0
# Calls older than this are deleted now and then (two windows: nothing reads them).
KEEP_SECONDS = 2 * WINDOW_SECONDS
# An attempt's waiting stops this long before its start_to_close budget, beside the time
# the call itself may take (the provider's timeout).
BUDGET_MARGIN_SECONDS = 5.0
# A call waits for its place where it is (holding its worker slot) at most this long; a
# longer wait ends the attempt with ``ProviderBusy``, and the job's workflow waits instead.
IN_PLACE_SECONDS = 10.0
# Waiters wake up spread over this much, so they do not all try the same free place.
JITTER_SECONDS = 0.25

LIMIT_KEYS = ("requests_per_minute", "tokens_per_minute")


@dataclass(frozen=True)
class RateLimits:
    """A provider's limits; None: no such limit."""

    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None

    @property
    def any(self) -> bool:
        return self.requests_per_minute is not None or self.tokens_per_minute is not None

    def describe(self) -> str:
        parts = []
        if self.requests_per_minute is not None:
            parts.append(f"{self.requests_per_minute} requests")
        if self.tokens_per_minute is not None:
            parts.append(f"{self.tokens_per_minute} tokens")
        return " and ".join(parts) + " per minute"


def window_wait(
    others: Sequence[tuple[float, int]], now: float, limits: RateLimits, tokens: int
) -> float:
    """Seconds from ``now`` until a call of ``tokens`` fits beside ``others`` (the
    provider's calls in the log: time, tokens), 0 when it fits now. A call counts until
    ``WINDOW_SECONDS`` after its time. A call bigger than ``tokens_per_minute`` on its own
    goes when the window is empty (it could never go otherwise)."""
    live = sorted((at, used) for at, used in others if at + WINDOW_SECONDS > now)
    wait = 0.0
    rpm = limits.requests_per_minute
    if rpm is not None and len(live) >= rpm:
        # The oldest len(live) - rpm + 1 calls must leave the window first.
        wait = max(wait, live[len(live) - rpm][0] + WINDOW_SECONDS - now)
    tpm = limits.tokens_per_minute
    if tpm is not None and live:
        excess = sum(used for _, used in live) + tokens - tpm
        freed = 0
        for index, (at, used) in enumerate(live):
            if excess <= 0:
                break
            freed += used
            if freed >= excess or index == len(live) - 1:
                wait = max(wait, at + WINDOW_SECONDS - now)
                break
    return max(0.0, wait)


class CallLog:
    """One provider's calls in the shared ``ProviderCall`` table."""

    def __init__(self, db: Database, provider: str, limits: RateLimits) -> None:
        self.db, self.provider, self.limits = db, provider, limits
        self._postgres = db.url.startswith("postgresql")
        self._cleaned = 0.0  # time.monotonic() of this process's last cleanup

    async def reserve(self, tokens: int, now: float | None = None) -> tuple[int | None, float]:
        """Reserve a call of ``tokens``: (its row id, 0), or (None, seconds to wait)."""
        now = time.time() if now is None else now
        async with self.db.writing() as session:
            if self._postgres:
                key = f"tolk.providercall:{self.provider}"
                await session.exec(select(func.pg_advisory_xact_lock(func.hashtext(key))))
            # The insert first: on SQLite it takes the write lock for the whole count.
            row = ProviderCall(provider=self.provider, at=now, tokens=tokens)
            session.add(row)
            await session.flush()
            result = await session.exec(
                select(ProviderCall.at, ProviderCall.tokens).where(
                    col(ProviderCall.provider) == self.provider,
                    col(ProviderCall.at) > now - WINDOW_SECONDS,
                    col(ProviderCall.id) != row.id,
                )
            )
            others = [(float(at), int(used)) for at, used in result.all()]
            wait = window_wait(others, now, self.limits, tokens)
            if wait > 0:
                await session.rollback()
                return None, wait
            if time.monotonic() - self._cleaned > WINDOW_SECONDS:
                self._cleaned = time.monotonic()
                await session.exec(
                    delete(ProviderCall).where(
                        col(ProviderCall.provider) == self.provider,
                        col(ProviderCall.at) < now - KEEP_SECONDS,
                    )
                )
            await session.commit()
            return row.id, 0.0

    async def answered(self, call_id: int, tokens: int | None, now: float | None = None) -> None:
        """The call ended (answered or failed): it counts until a window after now, with
        ``tokens`` (the real usage) when known, else its estimate."""
        values: dict[str, float | int] = {"at": time.time() if now is None else now}
        if tokens is not None:
            values["tokens"] = tokens
        async with self.db.writing() as session:
            await session.exec(
                update(ProviderCall).where(col(ProviderCall.id) == call_id).values(**values)
            )
            await session.commit()


def wait_budget(call_timeout: float) -> float:
    """How long a call may wait for its place: in an activity, what its start_to_close
    budget leaves once the call itself (``call_timeout``) is set aside; elsewhere (the
    API's ``/process/localize``), as long as one call may take."""
    if not activity.in_activity():
        return call_timeout
    info = activity.info()
    if info.start_to_close_timeout is None:
        return call_timeout
    elapsed = (datetime.now(UTC) - info.started_time).total_seconds()
    left = info.start_to_close_timeout.total_seconds() - elapsed
    return max(0.0, left - call_timeout - BUDGET_MARGIN_SECONDS)


class Limiter:
    """Waits for a place in a provider's window before each call."""

    def __init__(self, calls: CallLog, call_timeout: float, owns_db: bool = False) -> None:
        self.calls, self.call_timeout, self.owns_db = calls, call_timeout, owns_db

    async def acquire(self, tokens: int) -> int:
        """Reserve a call of ``tokens``, waiting for its place while the budget allows;
        its row id. Raises a retryable ProviderError with ``retry_after`` beyond that."""
        deadline = time.monotonic() + min(IN_PLACE_SECONDS, wait_budget(self.call_timeout))
        waited = 0.0
        while True:
            call_id, wait = await self.calls.reserve(tokens)
            if call_id is not None:
                if waited:
                    log.info(
                        "provider %s: calling after %.1f s waiting for its rate limit",
                        self.calls.provider,
                        waited,
                    )
                return call_id
            limits = self.calls.limits.describe()
            if time.monotonic() + wait > deadline:
                log.info(
                    "provider %s is at its rate limit (%s) for %.1f s more: "
                    "its job waits for it without holding a worker",
                    self.calls.provider,
                    limits,
                    wait,
                )
                raise ProviderBusy(
                    f"at the rate limit of provider {self.calls.provider} ({limits}) "
                    f"for {wait:.0f} s more",
                    retry_after=wait,
                    summary=f"rate limit of provider {self.calls.provider}",
                )
            if not waited:
                log.info(
                    "provider %s is at its rate limit (%s): waiting %.1f s for a place",
                    self.calls.provider,
                    limits,
                    wait,
                )
            pause = wait + random.uniform(0, JITTER_SECONDS)
            await asyncio.sleep(pause)
            waited += pause

    async def answered(self, call_id: int, tokens: int | None) -> None:
        await self.calls.answered(call_id, tokens)
