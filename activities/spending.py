"""The spend ledger as a document's ``Meter`` (``localization/dispatch.py``): before each
provider batch, whether the organization's monthly budget is spent (``budget_exceeded``) or
the group's ``maxCostUsd`` passed (``cost_limit_reached``); as each answer lands, its tokens
and price (``settings.llm_prices``) in the ledger. The database holds the counts, so every
API and worker process sees the same spend: a budget stops the next batch of any job."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import contract
from localization.dispatch import SpendStopped
from localization.pricing import cost_usd
from store import spend
from store.db import Database
from store.tables import SpendEntry


@dataclass
class LedgerMeter:
    """The meter of one job (``group_id``, ``job_id``) or one ``/process/localize`` call."""

    db: Database
    organization_id: str
    engine_id: str
    target_locale: str
    prices: Mapping[str, Mapping[str, float]]
    quota_defaults: Mapping[str, Any]
    group_id: str | None = None
    job_id: str | None = None
    _max_cost: float | None = field(default=None, init=False)
    _max_cost_read: bool = field(default=False, init=False)

    async def check(self) -> None:
        now = datetime.now(UTC)
        async with self.db.session() as session:
            spent = await spend.budget_spent(
                session, self.organization_id, self.quota_defaults, now
            )
            if spent is not None:
                raise SpendStopped(contract.BUDGET_EXCEEDED, spend.budget_message(spent, now))
            if self.group_id is None:
                return
            if not self._max_cost_read:
                row = await spend.group_limit(session, self.group_id)
                self._max_cost = row.max_cost_usd if row is not None else None
                self._max_cost_read = True
            if self._max_cost is None:
                return
            if await spend.group_spent(session, self.group_id) >= self._max_cost:
                raise SpendStopped(
                    contract.COST_LIMIT_REACHED,
                    f"the group's maxCostUsd ({self._max_cost:g}) is reached",
                )

    async def spent(self, model: str, input_tokens: int, output_tokens: int) -> None:
        entry = SpendEntry(
            organization_id=self.organization_id,
            kind="job" if self.job_id is not None else "process",
            group_id=self.group_id,
            job_id=self.job_id,
            engine_id=self.engine_id,
            target_locale=self.target_locale,
            model=model,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cost_usd=cost_usd(model, input_tokens, output_tokens, self.prices) or 0.0,
        )
        async with self.db.writing() as session:
            await spend.record_spend(session, entry)
