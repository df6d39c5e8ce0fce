"""``GET /usage``: what an organization's jobs and ``/process/localize`` calls used and
spent over a range of days, by day, engine, target locale or model; its limits and what
remains of its monthly budgets.

Tokens, answered provider calls and cost come from the spend ledger (every answer a paid
model gave, failed jobs' included); jobs, strings and memory hits from the jobs and calls
created in the range (a job's figures once it has them)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

import contract
from api.auth import api_key
from api.requests import app_state, validate, wire
from api.usage_schemas import UsageFigures, UsageOut, UsageQuery, UsageRow
from settings import quota_defaults
from store import spend
from store.quotas import effective_limits, own_limits
from store.tables import Job, ProcessUsage, SpendEntry

NO_MODEL = "none"


def _day(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).date().isoformat()


def _key(group_by: str, row: Job | ProcessUsage | SpendEntry) -> str:
    if group_by == "day":
        return _day(row.created_at)
    if group_by == "engine":
        return row.engine_id
    if group_by == "targetLocale":
        return row.target_locale
    if isinstance(row, Job):
        return str((row.usage or {}).get("model") or NO_MODEL)
    return row.model or NO_MODEL


def _bounds(query: UsageQuery, now: datetime) -> tuple[date, date]:
    start = query.from_ or spend.month_start(now).date()
    end = query.to or (spend.next_month(now) - timedelta(days=1)).date()
    if query.from_ is None and query.to is not None and end < start:
        start = end.replace(day=1)
    if query.to is None and query.from_ is not None and end < start:
        end = (spend.next_month(datetime.combine(start, time(), UTC)) - timedelta(days=1)).date()
    return start, end


async def get_usage(request: Request) -> JSONResponse:
    key = api_key(request)
    state = app_state(request)
    query = validate(UsageQuery, dict(request.query_params))
    now = datetime.now(UTC)
    start, end = _bounds(query, now)
    org = key.organization_id
    async with state.db.session() as session:
        jobs, calls, entries = await spend.usage_rows(
            session,
            org,
            datetime.combine(start, time(), UTC),
            datetime.combine(end + timedelta(days=1), time(), UTC),
        )
        limits = effective_limits(quota_defaults(state.settings), await own_limits(session, org))
        month = await spend.month_spent(session, org, now)

    rows: dict[str, dict[str, Any]] = {}

    def add(row: Job | ProcessUsage | SpendEntry, **figures: float) -> None:
        bucket = rows.setdefault(_key(query.group_by, row), {})
        for name, value in figures.items():
            bucket[name] = bucket.get(name, 0) + value

    for job in jobs:
        usage = job.usage or {}
        add(
            job,
            jobs=1,
            strings=int(usage.get("strings") or 0),
            memory_hits=int(usage.get("memoryHits") or 0),
        )
    for call in calls:
        add(call, strings=call.strings, memory_hits=call.memory_hits)
    for entry in entries:
        add(
            entry,
            input_tokens=entry.input_tokens,
            output_tokens=entry.output_tokens,
            provider_calls=1,
            cost_usd=entry.cost_usd,
        )

    out_rows = [
        UsageRow(key=name, **{**figures, "cost_usd": round(figures.get("cost_usd", 0.0), 6)})
        for name, figures in sorted(rows.items())
    ]
    totals = UsageFigures(
        **{name: sum(getattr(row, name) for row in out_rows) for name in UsageFigures.model_fields}
    )
    totals.cost_usd = round(totals.cost_usd, 6)
    remaining: dict[str, float | int] = {}
    if limits.get(contract.MONTHLY_BUDGET_USD) is not None:
        left = float(limits[contract.MONTHLY_BUDGET_USD]) - month.cost_usd
        remaining[contract.MONTHLY_BUDGET_USD] = round(max(0.0, left), 6)
    if limits.get(contract.MONTHLY_TOKENS) is not None:
        remaining[contract.MONTHLY_TOKENS] = max(
            0, int(limits[contract.MONTHLY_TOKENS]) - month.tokens
        )
    out = {
        "from": start,
        "to": end,
        "groupBy": query.group_by,
        "rows": out_rows,
        "totals": totals,
        "limits": limits,
        "remaining": remaining,
    }
    return wire(UsageOut.model_validate(out))
