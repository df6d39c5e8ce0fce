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
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from localization.batch import (
    AnswerError,
    BatchAnswer,
    BatchRequest,
    Item,
    Provider,
    ProviderError,
    estimate_tokens,
)
from localization.engine_plan import EnginePlan, ModelChoice
from localization.icu_plurals import adapt_plurals
from localization.locked import LockedKeys
from localization.masking import Masked, TokenError, mask, unmask, without_tokens
from localization.payload import Path, iter_strings, map_strings, path_str

MAX_WARNINGS = 100
ITEM_OVERHEAD_TOKENS = 8  # id, quotes and braces of one item in the JSON batch


@dataclass(frozen=True)
class BatchLimits:
    batch_tokens: int = 3000
    batch_max_items: int = 200
    attempts_per_model: int = 3
    max_retry_after: float = 60.0
    repair_rounds: int = 2
    concurrency: int = 4  # batches of one document in flight at once


# Providers without a token budget (pseudo) still get the document in chunks, so a cancel
# lands between chunks and the event loop breathes.
UNBATCHED = BatchLimits(batch_tokens=10**12, batch_max_items=2000, repair_rounds=0, concurrency=1)


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


@dataclass
class Segment:
    sid: str
    source: str
    hints: tuple[str, ...]
    masked: Masked
    paths: list[Path]
    glossary: tuple[tuple[str, str], ...] = ()
    memory_key: str = ""


@dataclass
class Outcome:
    output: Any
    planned: str  # the chain's first model: the answer when memory served every string
    strings: int = 0
    locked: int = 0
    memory_hits: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    calls: int = 0
    models: list[str] = field(default_factory=list)  # labels that translated something
    fallbacks: list[dict[str, str]] = field(default_factory=list)  # {"model", "error"}
    failures: list[str] = field(default_factory=list)  # "model: summary", no provider text
    warnings: list[dict[str, str]] = field(default_factory=list)

    @property
    def model(self) -> str:
        """The model that translated (the first, if several did)."""
        return self.models[0] if self.models else self.planned

    def reasons(self) -> str:
        """The last few model failures, for an error message (their summaries: no text of
        the document or of a provider's answer)."""
        return "; ".join(self.failures[-3:])

    def usage(self) -> dict[str, Any]:
        """The ``usage`` figures of a job (and of ``/process/localize``)."""
        return {
            "strings": self.strings,
            "lockedStrings": self.locked,
            "memoryHits": self.memory_hits,
            "inputTokens": self.input_tokens,
            "outputTokens": self.output_tokens,
            "providerCalls": self.calls,
            "model": self.model,
        }


def _sid(index: int) -> str:
    """Short opaque ids: 0-9a-z, then two characters, ..."""
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        index, rest = divmod(index, 36)
        out = digits[rest] + out
        if index == 0:
            return out


def _term_pattern(term: str) -> re.Pattern[str]:
    return re.compile(r"(?<!\w)" + re.escape(term) + r"(?!\w)", re.IGNORECASE)


@dataclass
class _Prepared:
    segments: list[Segment]
    by_path: dict[Path, Segment]
    strings: int
    locked: int


def prepare(
    data: Any,
    plan: EnginePlan,
    locked_keys: Sequence[str] | None,
    hints: dict[str, list[str]] | None,
    memory_scope: Sequence[Any] | None,
    target_locale: str | None = None,
) -> _Prepared:
    """Steps 1-2: segments by (text, hints), masked, with their glossary and memory key.
    The source of a segment is its text with the ICU plurals in the categories of
    ``target_locale`` (``localization.icu_plurals``): what is masked, checked, kept when
    no translation is usable, and the text in the memory key."""
    locked = LockedKeys(list(locked_keys or []))
    hints = hints or {}
    patterns = [(term, tr, _term_pattern(term)) for term, tr in plan.glossary]
    segments: dict[tuple[str, tuple[str, ...]], Segment] = {}
    by_path: dict[Path, Segment] = {}
    strings = locked_count = 0
    for path, text in iter_strings(data):
        if locked and locked.is_locked(path):
            locked_count += 1
            continue
        strings += 1
        seg_hints = tuple(hints.get(path_str(path), ()))
        seg = segments.get((text, seg_hints))
        if seg is None:
            source = adapt_plurals(text, target_locale) if target_locale else text
            masked = mask(source, plan.do_not_translate)
            seg = Segment(
                sid=_sid(len(segments)),
                source=source,
                hints=seg_hints,
                masked=masked,
                paths=[],
                # Terms inside placeholders or markup (tokens now) are not text to translate.
                glossary=tuple((t, tr) for t, tr, p in patterns if p.search(masked.text)),
            )
            if memory_scope is not None:
                key = json.dumps([*memory_scope, source, seg_hints], ensure_ascii=False)
                seg.memory_key = hashlib.sha256(key.encode()).hexdigest()
            segments[(text, seg_hints)] = seg
        seg.paths.append(path)
        by_path[path] = seg
    return _Prepared(list(segments.values()), by_path, strings, locked_count)


def _cost(seg: Segment) -> int:
    return (
        estimate_tokens(seg.masked.text)
        + sum(estimate_tokens(h) for h in seg.hints)
        + ITEM_OVERHEAD_TOKENS
    )


def pack(segments: Sequence[Segment], limits: BatchLimits) -> Iterator[list[Segment]]:
    """Consecutive batches of at most ``batch_tokens`` estimated tokens (a longer string
    goes alone) and ``batch_max_items`` items."""
    batch: list[Segment] = []
    size = 0
    for seg in segments:
        cost = _cost(seg)
        if batch and (size + cost > limits.batch_tokens or len(batch) >= limits.batch_max_items):
            yield batch
            batch, size = [], 0
        batch.append(seg)
        size += cost
    if batch:
        yield batch


@dataclass
class _Check:
    text: str | None = None  # usable translation (unmasked)
    code: str | None = None  # problem code when not perfect
    message: str | None = None


def check(seg: Segment, answer: Any) -> _Check:
    """One answer against its segment: tokens, then glossary."""
    if not isinstance(answer, str) or not answer.strip():
        return _Check(code="missing_translation", message="no translation came back")
    try:
        text = unmask(answer, seg.masked)
    except TokenError as err:
        return _Check(
            code="placeholder_mismatch",
            message=f"the translation broke placeholders or markup: {str(err)[:300]}",
        )
    outside_tokens = without_tokens(answer).casefold()
    missing = [tr for term, tr in seg.glossary if tr.casefold() not in outside_tokens]
    if missing:
        return _Check(
            text=text,
            code="glossary_term_missing",
            message="glossary translation not used: " + ", ".join(missing[:5]),
        )
    return _Check(text=text)


Sleep = Callable[[float], Awaitable[None]]


class _Run:
    """State of one document's translation across batches, rounds and models."""

    def __init__(
        self,
        memory: Memory,
        limits: BatchLimits,
        request: Callable[[list[Segment]], BatchRequest],
        outcome: Outcome,
        sleep: Sleep,
    ) -> None:
        self.memory, self.limits = memory, limits
        self.request, self.outcome, self.sleep = request, outcome, sleep
        self.done: dict[str, str] = {}  # sid -> translation
        self.soft: dict[str, _Check] = {}  # sid -> usable but imperfect (glossary)
        self.hard: dict[str, _Check] = {}  # sid -> last problem of a string still owed
        # Strings no model has answered because of an outage (unreachable, rate-limited):
        # if any is still owed at the end, a later attempt may do better.
        self.outage: set[str] = set()
        self.retry_after: float | None = None  # the longest wait a provider asked for

    async def call(
        self, provider: Provider, choice: ModelChoice, batch: list[Segment]
    ) -> BatchAnswer:
        """One batch on one model, retrying transient errors up to ``attempts_per_model``."""
        request = self.request(batch)
        for attempt in range(self.limits.attempts_per_model):
            self.outcome.calls += 1
            try:
                answer = await provider.translate(choice.model, request)
            except ProviderError as err:
                if err.retry_after is not None:
                    self.retry_after = max(self.retry_after or 0.0, err.retry_after)
                last = attempt + 1 >= self.limits.attempts_per_model
                if not err.retryable or last:
                    raise
                wait = err.retry_after if err.retry_after is not None else 0.5 * 2**attempt
                if wait > self.limits.max_retry_after:
                    raise
                await self.sleep(wait)
                continue
            self.outcome.input_tokens += answer.input_tokens
            self.outcome.output_tokens += answer.output_tokens
            return answer
        raise AssertionError("attempts_per_model must be at least 1")

    def accept(
        self, provider: Provider, choice: ModelChoice, batch: list[Segment], answer: BatchAnswer
    ) -> tuple[list[Segment], dict[str, str]]:
        """Check one answer: returns the segments still owed, and what memory may keep."""
        owed: list[Segment] = []
        learned: dict[str, str] = {}
        for seg in batch:
            self.outage.discard(seg.sid)
            result = check(seg, answer.texts.get(seg.sid))
            if result.code is None and result.text is not None:
                self.done[seg.sid] = result.text
                self.soft.pop(seg.sid, None)
                self.hard.pop(seg.sid, None)
                learned[seg.memory_key] = result.text
                if choice.label not in self.outcome.models:
                    self.outcome.models.append(choice.label)
            else:
                (self.soft if result.text is not None else self.hard)[seg.sid] = result
                owed.append(seg)
        return owed, learned if provider.remembers else {}

    async def send(
        self,
        gate: asyncio.Semaphore,
        failure: list[ProviderError],
        provider: Provider,
        choice: ModelChoice,
        batch: list[Segment],
    ) -> list[Segment]:
        """One batch of a round; returns its segments still owed. After a batch of the
        round failed for good (``failure``), the batches still waiting are not sent. A batch
        whose answer keeps coming back unusable as a whole (cut off, malformed) is split in
        halves, each sent on its own."""
        async with gate:
            if failure:
                return batch
            try:
                answer = await self.call(provider, choice, batch)
            except AnswerError as err:
                if len(batch) == 1:
                    failure.append(err)
                    return batch
                answer = None
            except ProviderError as err:
                failure.append(err)
                return batch
        if answer is None:
            half = len(batch) // 2
            owed_halves = [
                await self.send(gate, failure, provider, choice, part)
                for part in (batch[:half], batch[half:])
            ]
            return [seg for part in owed_halves for seg in part]
        owed, learned = self.accept(provider, choice, batch, answer)
        if learned:
            await self.memory.store(learned)
        return owed

    async def on_model(
        self, provider: Provider, choice: ModelChoice, todo: list[Segment]
    ) -> list[Segment]:
        """Translate ``todo`` with one model, ``concurrency`` batches at a time, repairing
        what comes back broken. Returns the segments still owed a good translation; once a
        batch fails for good on this model, batches not yet sent are not sent."""
        limits = self.limits if provider.batching else UNBATCHED
        gate = asyncio.Semaphore(limits.concurrency)
        for _round in range(1 + limits.repair_rounds):
            failure: list[ProviderError] = []
            try:
                async with asyncio.TaskGroup() as tasks:  # one fails: the others stop
                    sent = [
                        tasks.create_task(self.send(gate, failure, provider, choice, batch))
                        for batch in pack(todo, limits)
                    ]
            except BaseExceptionGroup as group:
                raise group.exceptions[0] from None
            todo = [seg for task in sent for seg in task.result()]
            if failure:
                err = failure[0]
                self.outcome.fallbacks.append({"model": choice.label, "error": str(err)})
                self.outcome.failures.append(f"{choice.label}: {err.summary}")
                outage = err.retryable and not isinstance(err, AnswerError)
                for seg in todo:
                    if outage and seg.sid not in self.soft and seg.sid not in self.hard:
                        self.outage.add(seg.sid)
                    self.hard.setdefault(
                        seg.sid,
                        _Check(code="missing_translation", message=f"{choice.label}: {err}"),
                    )
                return todo
            if not todo:
                break
        return todo


async def translate_document(
    data: Any,
    *,
    source_locale: str,
    target_locale: str,
    plan: EnginePlan,
    providers: dict[str, Provider],
    memory: Memory | None = None,
    limits: BatchLimits | None = None,
    context: str | None = None,
    hints: dict[str, list[str]] | None = None,
    locked_keys: Sequence[str] | None = None,
    sleep: Sleep = asyncio.sleep,
) -> Outcome:
    limits = limits or BatchLimits()
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

    run = _Run(memory, limits, request, outcome, sleep)
    todo = [seg for seg in wanted if seg.memory_key not in found]
    for choice in plan.chain:
        if not todo:
            break
        todo = await run.on_model(providers[choice.provider], choice, todo)

    if any(seg.sid in run.outage for seg in todo):
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
                or _Check(code="missing_translation", message="no translation came back")
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
