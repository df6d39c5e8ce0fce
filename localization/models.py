"""Which provider and model an engine uses for a locale pair.

An engine's ``models`` is a ranked list of ``{sourceLocale, targetLocale, provider, model}``
where either locale may be ``*``. For a pair, the most specific matching entries win
(exact source and target, then ``* -> target``, then ``source -> *``, then ``* -> *``), in
rank order: that is the pair's fallback chain.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from localization.document import Provider, PseudoProvider


@dataclass(frozen=True)
class ModelChoice:
    provider: str
    model: str | None = None

    @property
    def label(self) -> str:
        return f"{self.provider}/{self.model}" if self.model else self.provider


def _specificity(entry: dict[str, Any], source: str, target: str) -> int | None:
    entry_source, entry_target = entry.get("sourceLocale", "*"), entry.get("targetLocale", "*")
    if entry_source not in ("*", source) or entry_target not in ("*", target):
        return None
    return (2 if entry_target == target else 0) + (1 if entry_source == source else 0)


def model_chain(
    models: list[dict[str, Any]], source: str, target: str, default_provider: str
) -> list[ModelChoice]:
    """The ranked choices for ``source -> target``; the engine's provider when none match
    (none at all when the engine has no fallback provider)."""
    ranked = [
        (s, i, m)
        for i, m in enumerate(models)
        if (s := _specificity(m, source, target)) is not None
    ]
    if not ranked:
        return [ModelChoice(default_provider)] if default_provider else []
    best = max(s for s, _, _ in ranked)
    return [ModelChoice(str(m["provider"]), m.get("model")) for s, _, m in ranked if s == best]


# The providers this server has. LLM providers join this registry when configured.
PROVIDERS: dict[str, Provider] = {"pseudo": PseudoProvider()}


class EngineUnusable(ValueError):
    """The engine cannot translate this pair here; the message says why and what to change."""


def pick_model(
    engine_id: str,
    models: list[dict[str, Any]],
    default_provider: str,
    source: str,
    target: str,
) -> tuple[ModelChoice, Provider]:
    """The first choice of the pair's chain that this server can run."""
    chain = model_chain(models, source, target, default_provider)
    if not chain:
        raise EngineUnusable(
            f"engine {engine_id} has no model for {source} -> {target}: "
            "add a models entry that matches this pair"
        )
    choice = next((c for c in chain if c.provider in PROVIDERS), None)
    if choice is None:
        wanted = ", ".join(c.label for c in chain)
        raise EngineUnusable(
            f"engine {engine_id} has no usable model for {source} -> {target}: "
            f"{wanted} not configured on this server"
        )
    return choice, PROVIDERS[choice.provider]
