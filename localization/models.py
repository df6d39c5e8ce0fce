"""Which provider and model an engine uses for a locale pair.

An engine's ``models`` is a ranked list of ``{sourceLocale, targetLocale, provider, model}``
where either locale may be ``*``. For a pair, the most specific matching entries win
(exact source and target, then ``* -> target``, then ``source -> *``, then ``* -> *``), in
rank order: that is the pair's fallback chain.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


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
