"""Translate one JSON document into one locale: the pipeline of the design (section Engines).

1. Flatten ``data`` to key paths; locked keys and non-strings are set aside.
2. Identical strings with identical hints become one *segment*, its ICU plurals in the
   target's plural categories (``localization/icu_plurals``), masked: placeholders,
   markup and do-not-translate terms turn into opaque tokens (``localization/masking``).
3. Look every segment up in the translation memory (key: engine plan, locales, context,
   hints, source text).
4. Send the rest in batches packed to a token budget, with short opaque ids, down the
   engine's model chain: transient errors (timeouts, 5xx, 429 with ``Retry-After``,
   malformed answers) are retried on the same model, then the next model takes over.
5. Check every answer: each id back, each token restored exactly once, each glossary term
   translated as the glossary says. Only the missing or broken strings are sent again
   (``repair_rounds``), then to the next model.
6. Store good answers in memory as each batch lands (a retried activity resumes cheaply).
7. Rebuild the document in source order.

What is usable but imperfect becomes a warning (the job ends ``completed_with_warnings``):
a string whose translation lost a placeholder keeps its source text; one that no model
translated keeps its source text; one that ignores the glossary keeps its translation.
Nothing usable at all (every string failed) raises ``TranslationFailed``.

Steps 1-2 and the checks of step 5 are ``localization/segments.py``; steps 4-6, the batches
down the chain, ``localization/dispatch.py``; this module looks segments up in memory, runs
the chain and rebuilds the document.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, Protocol

from localization.batch import BatchRequest, Item, Provider
from localization.dispatch import BatchLimits, Dispatch, Meter, Sleep, ask_translation
from localization.engine_plan import EnginePlan
from localization.outcome import Outcome
from localization.payload import map_strings, path_str
from localization.segments import Check, Segment, check, prepare

MAX_WARNINGS = 100


class Memory(Protocol):
    async def lookup(self, keys: list[str]) -> dict[str, str]: ...

    async def store(self, entries: dict[str, str]) -> None: ...


class NoMemory:
    async def lookup(self, keys: list[str]) -> dict[str, str]:
        return {}

    async def store(self, entries: dict[str, str]) -> None:
        return None


class TranslationFailed(Exception):
    """No usable output. ``retryable``: a provider was unreachable or rate-limited, so a
    later attempt may succeed; otherwise the models answered and the answers were unusable,
    or the configuration is wrong.

    The message names models, counts, codes and HTTP statuses, never the document's text
    nor a provider's own words (it travels through workflow history); ``fallbacks`` has
    each model's full error, for the job's step record in the database."""

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        retry_after: float | None = None,
        fallbacks: list[dict[str, str]] | None = None,
    ):
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after  # what the providers asked to wait, at most
        self.fallbacks = fallbacks or []


async def translate_document(
    data: Any,
    *,
    source_locale: str,
    target_locale: str,
    plan: EnginePlan,
    providers: dict[str, Provider],
    limits: BatchLimits,
    memory: Memory | None = None,
    context: str | None = None,
    hints: dict[str, list[str]] | None = None,
    locked_keys: Sequence[str] | None = None,
    sleep: Sleep = asyncio.sleep,
    meter: Meter | None = None,
) -> Outcome:
    memory = memory or NoMemory()
    remembers = any(getattr(providers.get(c.provider), "remembers", False) for c in plan.chain)
    scope = [plan.fingerprint, source_locale, target_locale, context or ""] if remembers else None
    prepared = await asyncio.to_thread(
        prepare, data, plan, locked_keys, hints, scope, target_locale
    )
    outcome = Outcome(
        output=None,
        planned=plan.chain[0].label,
        strings=prepared.strings,
        locked=prepared.locked,
    )

    wanted = [seg for seg in prepared.segments if seg.masked.has_text]
    found = await memory.lookup([seg.memory_key for seg in wanted]) if remembers else {}
    outcome.memory_hits = sum(1 for seg in wanted if seg.memory_key in found)

    def request(batch: list[Segment]) -> BatchRequest:
        terms = dict(pair for seg in batch for pair in seg.glossary)
        return BatchRequest(
            source_locale=source_locale,
            target_locale=target_locale,
            items=tuple(Item(seg.sid, seg.masked.text, seg.hints) for seg in batch),
            context=context,
            glossary=tuple(terms.items()),
            brand_voice=plan.brand_voice,
            instructions=plan.instructions,
        )

    run = Dispatch(memory.store, limits, request, outcome, sleep, ask_translation, check, meter)
    todo = [seg for seg in wanted if seg.memory_key not in found]
    todo = await run.down_chain(plan.chain, providers, todo)

    if run.cut_off(todo):
        raise TranslationFailed(
            f"{len(todo)} of {len(wanted)} strings not translated yet ({outcome.reasons()})",
            retryable=True,
            retry_after=run.retry_after,
            fallbacks=outcome.fallbacks,
        )
    usable = len(run.done) + len(run.soft) + outcome.memory_hits
    if wanted and usable == 0:
        reasons = outcome.reasons()
        if not reasons:
            first = next(iter(run.hard.values()), None)
            reasons = first.code if first and first.code else "no usable answer"
        raise TranslationFailed(
            f"no string could be translated ({reasons})",
            retryable=False,
            fallbacks=outcome.fallbacks,
        )

    final: dict[str, str] = {}
    for seg in prepared.segments:
        if not seg.masked.has_text:
            final[seg.sid] = seg.source
        elif seg.memory_key in found:
            final[seg.sid] = found[seg.memory_key]
        elif seg.sid in run.done:
            final[seg.sid] = run.done[seg.sid]
        else:
            problem = (
                run.soft.get(seg.sid)
                or run.hard.get(seg.sid)
                or Check(code="missing_translation", message="no translation came back")
            )
            kept = problem.text is not None
            final[seg.sid] = problem.text if problem.text is not None else seg.source
            note = "" if kept else " (kept the source text)"
            for path in seg.paths:
                outcome.warnings.append(
                    {
                        "code": problem.code or "missing_translation",
                        "key": path_str(path),
                        "message": f"{problem.message}{note}",
                    }
                )
    if len(outcome.warnings) > MAX_WARNINGS:
        more = len(outcome.warnings) - MAX_WARNINGS
        outcome.warnings = [
            *outcome.warnings[:MAX_WARNINGS],
            {"code": "more_warnings", "key": "", "message": f"{more} more warnings not listed"},
        ]

    by_path = prepared.by_path

    def rebuild() -> Any:
        return map_strings(
            data, lambda path, text: final[by_path[path].sid] if path in by_path else text
        )

    outcome.output = await asyncio.to_thread(rebuild)
    return outcome
