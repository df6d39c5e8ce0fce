"""What tokens of a model cost: the one rule for ``/process/estimate`` and for the
``costUsd`` of a job's step records, so an estimate and the spend it forecasts agree.

Prices are ``settings.llm_prices``: USD per million tokens, by ``provider/model``, with
``input`` and ``output`` rates. The pseudo provider runs locally and costs nothing."""

from __future__ import annotations

from collections.abc import Mapping

FREE_PROVIDERS = ("pseudo",)


def is_free(model: str | None) -> bool:
    """No model (nothing runs) or a free provider's."""
    return model is None or model.split("/", 1)[0] in FREE_PROVIDERS


def cost_usd(
    model: str | None,
    input_tokens: int,
    output_tokens: int,
    prices: Mapping[str, Mapping[str, float]],
) -> float | None:
    """The cost of ``input_tokens`` and ``output_tokens`` of ``model`` in USD (rounded to
    the micro-dollar); 0 for no model or a free provider; None when the model has no
    configured price."""
    if is_free(model):
        return 0.0
    price = prices.get(model or "")
    if price is None:
        return None
    spent = input_tokens * price.get("input", 0.0) + output_tokens * price.get("output", 0.0)
    return round(spent / 1_000_000, 6)
