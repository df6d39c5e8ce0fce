"""Per-organization quotas in the API (API.md, "Quotas, budgets and usage"): the request
rate on every keyed route (``api/auth.py`` asks before the handler runs) and the number of
active groups (``POST /jobs/localization``). Both hold across API processes: the counts are
the database's. An organization's own limits are read at most every few seconds per
process (``QuotaLimits``); a change by ``tolk orgs limits`` applies within that time."""

from __future__ import annotations

import time
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

import contract
from api.errors import RateLimitError
from settings import quota_defaults
from store import groups, quotas, rate_limits
from store.db import Database

# How long a process keeps an organization's limits before reading them again.
LIMITS_TTL_SECONDS = 5.0
# What a client refused for its active groups is told to wait: one finishes soon, or not.
ACTIVE_GROUPS_RETRY_AFTER = 10


class QuotaLimits:
    """The effective limits of organizations, as this process last read them."""

    def __init__(self, defaults: dict[str, Any]) -> None:
        self.defaults = defaults
        self._read: dict[str, tuple[float, dict[str, Any]]] = {}

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
    """Count one keyed request against the organization's rate: its ``RateLimit-*``
    headers, or ``RateLimitError`` (429, ``Retry-After``) when over. Nothing when the
    organization has no rate limit."""
    limit = (await limits.of(db, organization_id)).get(contract.REQUESTS_PER_MINUTE)
    if limit is None:
        return {}
    async with db.writing() as session:
        check = await rate_limits.take(session, organization_id, int(limit), time.time())
    headers = rate_headers(check)
    if not check.allowed:
        raise RateLimitError(
            f"over the rate limit of {limit} requests per minute; retry in {check.retry_after} s",
            check.retry_after,
            headers,
        )
    return headers


async def check_active_groups(
    session: AsyncSession, limits: QuotaLimits, db: Database, organization_id: str
) -> None:
    """``RateLimitError`` when the organization already has as many groups not yet
    terminal as its ``activeGroups`` limit allows."""
    limit = (await limits.of(db, organization_id)).get(contract.ACTIVE_GROUPS)
    if limit is None:
        return
    active = await groups.active_groups(session, organization_id)
    if active >= int(limit):
        raise RateLimitError(
            f"{active} groups are still running, the limit of active groups is {limit}:"
            " wait for one to finish",
            ACTIVE_GROUPS_RETRY_AFTER,
        )
