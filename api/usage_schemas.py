"""``GET /usage``: its query and its answer (API.md, "Quotas, budgets and usage")."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from api.schemas import WireModel

USAGE_GROUP_BY = ("day", "engine", "targetLocale", "model")


class UsageQuery(WireModel):
    """``from``/``to``: ISO dates, both days included (default: this calendar month, UTC)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=False, extra="forbid")

    from_: date | None = Field(default=None, alias="from")
    to: date | None = None
    group_by: Literal[USAGE_GROUP_BY] = "day"  # type: ignore[valid-type]

    @model_validator(mode="after")
    def _ordered(self) -> UsageQuery:
        if self.from_ is not None and self.to is not None and self.from_ > self.to:
            raise ValueError("from must not be after to")
        return self


class UsageFigures(WireModel):
    jobs: int = 0
    strings: int = 0
    memory_hits: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    provider_calls: int = 0
    cost_usd: float = 0.0


class UsageRow(UsageFigures):
    key: str


class UsageOut(WireModel):
    from_: date = Field(alias="from")
    to: date
    group_by: str
    rows: list[UsageRow]
    totals: UsageFigures
    limits: dict[str, Any]
    remaining: dict[str, float | int]
