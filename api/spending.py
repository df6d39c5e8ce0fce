"""Spending limits at the API's door: a spent monthly budget refuses new work (``402
QuotaExceededError``, naming the budget and when it resets)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from api.errors import QuotaExceededError
from api.state import AppState
from contract import MONTHLY_BUDGET_USD, MONTHLY_TOKENS
from settings import quota_defaults
from store import spend
from store.quotas import effective_limits


async def refuse_when_budget_spent(
    state: AppState, organization_id: str, own_limits: dict[str, Any] | None = None
) -> None:
    """402 once the organization's monthly budget (USD or tokens) is spent. With
    ``own_limits`` (the organization's own quotas, read just now by the caller) an
    organization without a budget costs no query."""
    now = datetime.now(UTC)
    if own_limits is not None:
        limits = effective_limits(quota_defaults(state.settings), own_limits)
        if limits.get(MONTHLY_BUDGET_USD) is None and limits.get(MONTHLY_TOKENS) is None:
            return
    async with state.db.session() as session:
        spent = await spend.budget_spent(
            session, organization_id, quota_defaults(state.settings), now
        )
    if spent is not None:
        resets = spend.next_month(now)
        raise QuotaExceededError(
            spend.budget_message(spent, now),
            quota=spent,
            resetsAt=resets.isoformat().replace("+00:00", "Z"),
        )
