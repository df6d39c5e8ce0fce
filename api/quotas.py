"""Per-organization quotas in the API (API.md, "Quotas, budgets and usage"): the request
rate on every keyed route (``api/auth.py`` asks before the handler runs) and the number of
active groups (``POST /jobs/localization``). Both hold across API processes: the counts are
the database's. An organization's own limits are read at most every few seconds per
process (``QuotaLimits``); a change by ``tolk orgs limits`` applies within that time."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any, TypeVar

from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.requests import HTTPConnection

import contract
from api.errors import RateLimitError
from settings import quota_defaults
from store import quotas, rate_limits
from store.db import Database

E = TypeVar("E", bound=Callable[..., Any])

# How long a process keeps an organization's limits before reading them again.
LIMITS_TTL_SECONDS = 5.0
# What a client refused for its active groups is told to wait: one finishes soon, or not.
ACTIVE_GROUPS_RETRY_AFTER = 10


class QuotaLimits:
    """The effective limits of organizations, as this process last read them."""

    def __init__(self, defaults: dict[str, Any]) -> None:
        self.defaults = defaults
        self._read: dict[str, tuple[float, dict[str, Any]]] = {}
        # Organizations refused for their rate: (limit, epoch seconds until one more
        # request fits). Exact, not a guess: counts only grow until then.
        self.refused: dict[str, tuple[int, float]] = {}

    async def of(self, db: Database, organization_id: str) -> dict[str, Any]:
        found = self._read.get(organization_id)
        if found is not None and time.monotonic() - found[0] < LIMITS_TTL_SECONDS:
            return found[1]
        async with db.session() as session:
            own = await quotas.own_limits(session, organization_id)
        limits = quotas.effective_limits(self.defaults, own)
        self._read[organization_id] = (time.monotonic(), limits)
        return limits


def quota_limits(settings: Any) -> QuotaLimits:
    return QuotaLimits(quota_defaults(settings))


def rate_headers(check: rate_limits.RateCheck) -> dict[str, str]:
    """The IETF draft's ``RateLimit-*`` headers, integer form."""
    return {
        "RateLimit-Limit": str(check.limit),
        "RateLimit-Remaining": str(check.remaining),
        "RateLimit-Reset": str(check.reset_seconds),
    }


async def take_request(db: Database, limits: QuotaLimits, organization_id: str) -> dict[str, str]:
    """Count one keyed request against the organization's rate in a transaction of its
    own: its ``RateLimit-*`` headers, or ``RateLimitError`` (429, ``Retry-After``) when
    over. Nothing when the organization has no rate limit."""
    count = RequestCount(db, limits, organization_id)
    await count.alone()
    return count.headers or {}


class RequestCount:
    """One keyed request's count against its organization's rate, made once: ``alone``
    in a write transaction of its own (every keyed route, before its handler), or
    ``within`` the one transaction a handler writes anyway (a route marked
    ``counted_in_its_write``: one write instead of two for each new group, and one
    chance fewer to wait for SQLite's other writer).

    Either way the count is the database's, so the limit holds across API processes.
    Once counted, ``headers`` holds the ``RateLimit-*`` headers (empty: no limit)."""

    def __init__(self, db: Database, limits: QuotaLimits, organization_id: str) -> None:
        self.db, self.limits, self.organization_id = db, limits, organization_id
        self.headers: dict[str, str] | None = None
        self._limit: int | None = None

    @property
    def counted(self) -> bool:
        return self.headers is not None

    async def resolve(self) -> None:
        """The organization's limit, before any write transaction (cached: ``QuotaLimits``).
        Refused at once, with nothing counted, while this process knows no request fits
        (a count refused here before, and its wait not over): a flood of requests over
        the limit costs no database write."""
        limit = (await self.limits.of(self.db, self.organization_id)).get(
            contract.REQUESTS_PER_MINUTE
        )
        self._limit = None if limit is None else int(limit)
        refused = self.limits.refused.get(self.organization_id)
        if refused is None or self._limit is None or refused[0] != self._limit:
            return
        now = time.time()
        if now >= refused[1]:
            del self.limits.refused[self.organization_id]
            return
        elapsed = now - rate_limits.window_of(now) * rate_limits.WINDOW_SECONDS
        reset = max(1, math.ceil(rate_limits.WINDOW_SECONDS - elapsed))
        wait = max(1, math.ceil(refused[1] - now))
        self._settle(rate_limits.RateCheck(False, self._limit, 0, reset, wait, refused[1]))

    async def alone(self) -> None:
        """Count in a transaction of its own, unless counted already."""
        if self.counted:
            return
        await self.resolve()  # may refuse at once
        if self._limit is None:
            self.headers = {}
            return
        async with self.db.writing() as session:
            self._settle(
                await rate_limits.take(session, self.organization_id, self._limit, time.time())
            )

    async def within(
        self, session: AsyncSession, previous: tuple[int, int | None] | None = None
    ) -> None:
        """Count in ``session``'s transaction, which the caller commits (a refusal: the
        caller rolls back what it wrote, as leaving the session does), with the previous
        minute's count if the caller read it already (``rate_limits.count``). Call
        ``resolve`` first. If the transaction does not commit, the count was not made:
        ``forget``."""
        if self._limit is None:
            self.headers = {}
            return
        check = await rate_limits.count(
            session, self.organization_id, self._limit, time.time(), previous
        )
        self._settle(check)

    def forget(self) -> None:
        """The transaction ``within`` counted in was rolled back: count again."""
        self.headers = None

    def _settle(self, check: rate_limits.RateCheck) -> None:
        self.headers = rate_headers(check)
        if not check.allowed:
            self.limits.refused[self.organization_id] = (check.limit, check.fits_at)
            raise RateLimitError(
                f"over the rate limit of {check.limit} requests per minute;"
                f" retry in {check.retry_after} s",
                check.retry_after,
                self.headers,
            )


COUNTED_IN_ITS_WRITE = "counted_in_its_write"


def counted_in_its_write(endpoint: E) -> E:
    """Mark a keyed route whose handler counts its request itself (``request_count``):
    ``within`` its write transaction when it writes, ``alone`` on every other way out
    (``api/auth.py`` counts it alone when the handler raises without having counted)."""
    setattr(endpoint, COUNTED_IN_ITS_WRITE, True)
    return endpoint


def request_count(conn: HTTPConnection) -> RequestCount:
    """The count a ``counted_in_its_write`` route's handler is to make."""
    count = conn.scope.get(COUNT_SCOPE_KEY)
    assert isinstance(count, RequestCount), "the route is not marked counted_in_its_write"
    return count


COUNT_SCOPE_KEY = "tolk.request_count"


def refuse_over_active_groups(limits: dict[str, Any], active: int | None) -> None:
    """``RateLimitError`` when the organization already has ``active`` groups not yet
    terminal and its ``activeGroups`` limit (in ``limits``, its effective quotas) allows
    no more; ``active`` is None when nothing was counted (no limit, or a replay)."""
    limit = limits.get(contract.ACTIVE_GROUPS)
    if limit is None or active is None:
        return
    if active >= int(limit):
        raise RateLimitError(
            f"{active} groups are still running, the limit of active groups is {limit}:"
            " wait for one to finish",
            ACTIVE_GROUPS_RETRY_AFTER,
        )
