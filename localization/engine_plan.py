"""Which provider and model an engine uses for a locale pair.

An engine's ``models`` is a ranked list of ``{sourceLocale, targetLocale, provider, model}``
where either locale may be ``*``. For a pair, the most specific matching entries win
(exact source and target, then ``* -> target``, then ``source -> *``, then ``* -> *``), in
rank order: that is the pair's fallback chain.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection
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


def fallback_provider(models: list[dict[str, Any]]) -> str:
    """The provider for pairs no ``models`` entry matches: ``pseudo`` for an engine without
    models; none for an engine with models (such a pair fails with a clear error rather
    than silently getting something else)."""
    return "" if models else "pseudo"


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


class EngineUnusable(ValueError):
    """The engine cannot translate this pair here; the message says why and what to change."""


def locale_matches(pattern: str, locale: str) -> bool:
    """``*`` matches any locale, ``de`` matches ``de`` and its variants (``de-AT``)."""
    return pattern in ("*", locale) or locale.startswith(pattern + "-")


@dataclass(frozen=True)
class EnginePlan:
    """What an engine says for one locale pair: the ranked models this server can run,
    the glossary, do-not-translate terms, brand voice and instructions."""

    engine_id: str
    chain: tuple[ModelChoice, ...]
    glossary: tuple[tuple[str, str], ...] = ()
    do_not_translate: tuple[str, ...] = ()
    brand_voice: str | None = None
    instructions: str | None = None

    @property
    def fingerprint(self) -> str:
        """Changes whenever anything that shapes a translation of this pair changes
        (translation memory entries are keyed by it)."""
        fields = [
            self.engine_id,
            [c.label for c in self.chain],
            self.glossary,
            self.do_not_translate,
            self.brand_voice,
            self.instructions,
        ]
        return hashlib.sha256(json.dumps(fields, ensure_ascii=False).encode()).hexdigest()[:32]


def _texts_for(entries: list[dict[str, Any]], target: str) -> str | None:
    """Texts for ``target`` (exact or language match first, then ``*``), joined."""
    specific = [
        e["text"]
        for e in entries
        if e.get("targetLocale", "*") != "*" and locale_matches(e["targetLocale"], target)
    ]
    general = [e["text"] for e in entries if e.get("targetLocale", "*") == "*"]
    texts = specific + general
    return "\n".join(texts) if texts else None


def engine_plan(
    engine_id: str,
    config: dict[str, Any],
    default_provider: str,
    source: str,
    target: str,
    available: Collection[str],
) -> EnginePlan:
    """The plan for ``source -> target``; EngineUnusable when no model can run here."""
    chain = model_chain(config.get("models") or [], source, target, default_provider)
    if not chain:
        raise EngineUnusable(
            f"engine {engine_id} has no model for {source} -> {target}: "
            "add a models entry that matches this pair"
        )
    usable = tuple(c for c in chain if c.provider in available)
    if not usable:
        wanted = ", ".join(c.label for c in chain)
        raise EngineUnusable(
            f"engine {engine_id} has no usable model for {source} -> {target}: "
            f"{wanted} not configured on this server"
        )
    glossary: list[tuple[str, str]] = []
    keep: list[str] = []
    for entry in config.get("glossary") or []:
        if not (
            locale_matches(entry.get("sourceLocale", "*"), source)
            and locale_matches(entry.get("targetLocale", "*"), target)
        ):
            continue
        if entry.get("doNotTranslate"):
            keep.append(entry["term"])
        elif entry.get("translation"):
            glossary.append((entry["term"], entry["translation"]))
    return EnginePlan(
        engine_id=engine_id,
        chain=usable,
        glossary=tuple(glossary),
        do_not_translate=tuple(dict.fromkeys(keep)),
        brand_voice=_texts_for(config.get("brandVoices") or [], target),
        instructions=_texts_for(config.get("instructions") or [], target),
    )
