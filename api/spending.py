"""Spending limits at the API's door: a spent monthly budget refuses new work (``402
QuotaExceededError``, naming the budget and when it resets)."""

from __future__ import annotations

from datetime import UTC, datetime

from api.errors import QuotaExceededError
from api.state import AppState
from settings import quota_defaults
from store import spend


async def refuse_when_budget_spent(state: AppState, organization_id: str) -> None:
    """402 once the organization's monthly budget (USD or tokens) is spent."""
    now = datetime.now(UTC)
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
