"""The spend ledger (``SpendEntry``): what an organization's provider answers cost, month by
month (calendar months, UTC), and what one group has cost, for budgets and the cost fuse."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

import contract
from store.quotas import effective_limits, own_limits
from store.tables import GroupSpendLimit, Job, ProcessUsage, SpendEntry


def month_start(moment: datetime) -> datetime:
    """The first instant of ``moment``'s calendar month, UTC."""
    moment = moment.astimezone(UTC)
    return datetime(moment.year, moment.month, 1, tzinfo=UTC)


def next_month(moment: datetime) -> datetime:
    """The first instant of the calendar month after ``moment``'s, UTC: when a budget resets."""
    start = month_start(moment)
    if start.month == 12:
        return start.replace(year=start.year + 1, month=1)
    return start.replace(month=start.month + 1)


@dataclass(frozen=True)
class Spent:
    cost_usd: float = 0.0
    tokens: int = 0


async def record_spend(session: AsyncSession, entry: SpendEntry) -> None:
    session.add(entry)
    await session.commit()


async def month_spent(session: AsyncSession, organization_id: str, moment: datetime) -> Spent:
    """What the organization spent in ``moment``'s calendar month (UTC)."""
    start, end = month_start(moment), next_month(moment)
    row = (
        await session.exec(
            select(
                func.coalesce(func.sum(SpendEntry.cost_usd), 0.0),
                func.coalesce(func.sum(SpendEntry.input_tokens + SpendEntry.output_tokens), 0),
            ).where(
                col(SpendEntry.organization_id) == organization_id,
                col(SpendEntry.created_at) >= start,
                col(SpendEntry.created_at) < end,
            )
        )
    ).one()
    return Spent(cost_usd=round(float(row[0]), 6), tokens=int(row[1]))


async def group_spent(session: AsyncSession, group_id: str) -> float:
    """What a group's jobs have cost so far, in USD."""
    total = (
        await session.exec(
            select(func.coalesce(func.sum(SpendEntry.cost_usd), 0.0)).where(
                col(SpendEntry.group_id) == group_id
            )
        )
    ).one()
    return round(float(total), 6)


async def group_limit(session: AsyncSession, group_id: str) -> GroupSpendLimit | None:
    return await session.get(GroupSpendLimit, group_id)


async def budget_spent(
    session: AsyncSession,
    organization_id: str,
    defaults: Mapping[str, Any],
    moment: datetime,
) -> str | None:
    """The monthly budget (``contract.MONTHLY_BUDGET_USD`` or ``MONTHLY_TOKENS``) the
    organization has spent in ``moment``'s month, if any; None while within its budgets."""
    limits = effective_limits(defaults, await own_limits(session, organization_id))
    usd, tokens = limits.get(contract.MONTHLY_BUDGET_USD), limits.get(contract.MONTHLY_TOKENS)
    if usd is None and tokens is None:
        return None
    spent = await month_spent(session, organization_id, moment)
    if usd is not None and spent.cost_usd >= float(usd):
        return contract.MONTHLY_BUDGET_USD
    if tokens is not None and spent.tokens >= int(tokens):
        return contract.MONTHLY_TOKENS
    return None


def budget_message(quota: str, moment: datetime) -> str:
    """What a spent budget is called, and when it resets (no user content)."""
    resets = next_month(moment).date().isoformat()
    return f"the organization's monthly budget ({quota}) is spent; it resets on {resets}"


async def usage_rows(
    session: AsyncSession, organization_id: str, start: datetime, end: datetime
) -> tuple[list[Job], list[ProcessUsage], list[SpendEntry]]:
    """An organization's jobs, ``/process/localize`` calls and ledger entries created in
    ``[start, end)``: what ``GET /usage`` adds up."""
    jobs = await session.exec(
        select(Job).where(
            col(Job.organization_id) == organization_id,
            col(Job.created_at) >= start,
            col(Job.created_at) < end,
        )
    )
    calls = await session.exec(
        select(ProcessUsage).where(
            col(ProcessUsage.organization_id) == organization_id,
            col(ProcessUsage.created_at) >= start,
            col(ProcessUsage.created_at) < end,
        )
    )
    entries = await session.exec(
        select(SpendEntry).where(
            col(SpendEntry.organization_id) == organization_id,
            col(SpendEntry.created_at) >= start,
            col(SpendEntry.created_at) < end,
        )
    )
    return list(jobs.all()), list(calls.all()), list(entries.all())
