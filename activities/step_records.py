"""What every step record of a job (API ``steps[]``) writes alike, whichever activity
writes it: its times and its price."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from localization.pricing import cost_usd


def iso(moment: datetime) -> str:
    """A step record's time: UTC, milliseconds, ``Z``."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def priced(
    model: str, input_tokens: int, output_tokens: int, prices: Mapping[str, Mapping[str, float]]
) -> dict[str, float]:
    """A step record's ``costUsd`` for its tokens (``localization/pricing.py``, the rule of
    ``/process/estimate``); nothing for a model without a price."""
    cost = cost_usd(model, input_tokens, output_tokens, prices)
    return {} if cost is None else {"costUsd": cost}
