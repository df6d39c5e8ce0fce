"""What every step record of a job (API ``steps[]``) writes alike, whichever activity
writes it: its times and its price, and which records are of an earlier review round."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import contract
from contract import HUMAN_REVIEW
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


# The usage figures that add up over a job's steps (a stage's calls and re-translations,
# each review round's translation); the others describe the output as it stands.
ADDED_USAGE = ("inputTokens", "outputTokens", "providerCalls")


def added_usage(usage: Mapping[str, Any], more: Mapping[str, Any]) -> dict[str, Any]:
    """The job's usage after ``more`` (another step's figures): ``ADDED_USAGE`` summed."""
    return {**usage, **{k: int(usage.get(k) or 0) + int(more.get(k) or 0) for k in ADDED_USAGE}}


def current(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records of the output as it stands: those of earlier review rounds left out."""
    return [s for s in steps if "round" not in s]


def of_earlier_round(steps: list[dict[str, Any]], round_: int) -> list[dict[str, Any]]:
    """``steps`` once review round ``round_`` was rejected: each record of that round kept,
    with ``round`` (so ``steps[]`` shows every stage that ran, and what it cost). The
    humanReview record is the review's own and stays current."""
    return [
        s if "round" in s or s.get("stepId") == HUMAN_REVIEW else {**s, "round": round_}
        for s in steps
    ]


def review_ended(
    steps: list[dict[str, Any]], final: str, error: str | None, now: datetime
) -> list[dict[str, Any]] | None:
    """``steps`` once the job ended ``final`` while its humanReview record still said
    ``waiting`` (the last round rejected, a timeout with ``onTimeout: fail``, a cancel):
    that record ``failed`` (with the ``action`` that ended it) or ``skipped`` (cancelled),
    so no ended job shows a review still waiting. None when no record waits."""
    if not any(
        s.get("stepId") == HUMAN_REVIEW and s.get("status") == contract.STEP_WAITING for s in steps
    ):
        return None
    actions = {
        contract.REVIEW_REJECTED_OUT: contract.REJECT,
        contract.REVIEW_TIMED_OUT_ERROR: "timeout",
    }

    def ended(step: dict[str, Any]) -> dict[str, Any]:
        if step.get("stepId") != HUMAN_REVIEW or step.get("status") != contract.STEP_WAITING:
            return step
        kept = {k: v for k, v in step.items() if k != "reviewDueAt"}
        status = contract.STEP_SKIPPED if final == contract.CANCELLED else contract.STEP_FAILED
        action = actions.get(error or "") if final == contract.FAILED else None
        return {
            **kept,
            "status": status,
            "completedAt": iso(now),
            **({"action": action} if action else {}),
        }

    return [ended(s) for s in steps]
