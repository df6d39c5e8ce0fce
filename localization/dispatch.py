"""Steps 4 to 6 of the pipeline (``localization/pipeline.py``): segments sent to the
engine's models in batches packed to a token budget, ``concurrency`` batches at a time.
Transient errors are retried on the same model, a batch whose answer is unusable as a whole
is split in halves, broken strings are sent again (``repair_rounds``), and what one model
still owes goes to the next. Good answers go to memory as each batch lands.

The same machinery carries the review stages (``localization/review.py``): what a batch
asks of a provider (``ask``) and how one answer is checked (``judge``) are parameters, so a
review batch is packed, retried, split, repaired and passed down the chain like a
translation batch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any, Generic, Protocol, TypeVar

from localization.batch import AnswerError, BatchAnswer, Provider, ProviderBusy, ProviderError
from localization.engine_plan import ModelChoice
from localization.outcome import Outcome
from localization.pricing import is_free
from localization.segments import Check, Segment

ITEM_OVERHEAD_TOKENS = 8  # id, quotes and braces of one item in the JSON batch

T = TypeVar("T")

Sleep = Callable[[float], Awaitable[None]]
# Memory key -> what was learned (a translation), stored.
Remember = Callable[[dict[str, T]], Awaitable[None]]
# One batch on one model: the provider call that answers ``request``.
Ask = Callable[[Provider, str | None, Any], Awaitable[BatchAnswer]]
# One answer (``BatchAnswer.texts[sid]``, anything) checked against its segment.
Judge = Callable[[Segment, Any], Check[T]]


class SpendStopped(Exception):
    """A spending limit stops the document before its next batch: ``code`` is the job error
    (``contract.BUDGET_EXCEEDED``, ``contract.COST_LIMIT_REACHED``); the message names the
    limit, never the document's text."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


class Meter(Protocol):
    """Where a document's spending is checked and counted, batch by batch: ``check`` before
    each provider call (raises ``SpendStopped`` once a limit is reached), ``spent`` as each
    answer's usage is known."""

    async def check(self) -> None: ...

    async def spent(self, model: str, input_tokens: int, output_tokens: int) -> None: ...


async def ask_translation(provider: Provider, model: str | None, request: Any) -> BatchAnswer:
    """The ``ask`` of the translation step."""
    answer: BatchAnswer = await provider.translate(model, request)
    return answer


@dataclass(frozen=True)
class BatchLimits:
    """How one document is sent to its providers; built from the settings' ``llm`` section
    by ``settings.batch_limits``, their one default."""

    batch_tokens: int
    batch_max_items: int
    attempts_per_model: int
    max_retry_after: float
    repair_rounds: int
    concurrency: int  # batches of one document in flight at once


def unbatched(limits: BatchLimits) -> BatchLimits:
    """The limits for a provider without a token budget (pseudo): the document still goes
    in chunks, so that a cancel lands between chunks and the event loop breathes."""
    return replace(
        limits, batch_tokens=10**12, batch_max_items=2000, repair_rounds=0, concurrency=1
    )


def _cost(seg: Segment) -> int:
    return seg.tokens + ITEM_OVERHEAD_TOKENS


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


class Dispatch(Generic[T]):
    """State of one document's translation (or review) across batches, rounds and models.
    ``request`` builds a batch's request, ``ask`` sends it, ``judge`` checks each answer."""

    def __init__(
        self,
        remember: Remember[T],
        limits: BatchLimits,
        request: Callable[[list[Segment]], Any],
        outcome: Outcome,
        sleep: Sleep,
        ask: Ask,
        judge: Judge[T],
        meter: Meter | None = None,
    ) -> None:
        self.remember, self.limits, self.meter = remember, limits, meter
        # A spending limit reached: batches still waiting are not sent (those in flight
        # finish), then the document stops with it.
        # The same when a provider's shared rate limit has no place (``ProviderBusy``).
        self.stopped: list[SpendStopped | ProviderBusy] = []
        self.request, self.outcome, self.sleep = request, outcome, sleep
        self.ask, self.judge = ask, judge
        self.done: dict[str, T] = {}  # sid -> translation (or verdict)
        self.soft: dict[str, Check[T]] = {}  # sid -> usable but imperfect (glossary)
        self.hard: dict[str, Check[T]] = {}  # sid -> last problem of a string still owed
        # Strings no model has answered because of an outage (unreachable, rate-limited):
        # if any is still owed at the end, a later attempt may do better.
        self.outage: set[str] = set()
        self.retry_after: float | None = None  # the longest wait a provider asked for

    async def call(
        self, provider: Provider, choice: ModelChoice, batch: list[Segment]
    ) -> BatchAnswer:
        """One batch on one model, retrying transient errors up to ``attempts_per_model``."""
        request = self.request(batch)
        # A free model (pseudo, run locally) spends nothing: no limit stops it.
        meter = None if is_free(choice.label) else self.meter
        for attempt in range(self.limits.attempts_per_model):
            if meter is not None:
                await meter.check()
            self.outcome.calls += 1
            try:
                answer = await self.ask(provider, choice.model, request)
            except ProviderBusy:
                raise  # no place at the provider's limit: not this model's failure
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
            if meter is not None:
                await meter.spent(choice.label, answer.input_tokens, answer.output_tokens)
            return answer
        raise AssertionError("attempts_per_model must be at least 1")

    def accept(
        self, provider: Provider, choice: ModelChoice, batch: list[Segment], answer: BatchAnswer
    ) -> tuple[list[Segment], dict[str, T]]:
        """Check one answer: returns the segments still owed, and what memory may keep
        (segments without a memory key, such as review items, leave nothing to keep)."""
        owed: list[Segment] = []
        learned: dict[str, T] = {}
        for seg in batch:
            self.outage.discard(seg.sid)
            result = self.judge(seg, answer.texts.get(seg.sid))
            if result.code is None and result.text is not None:
                self.done[seg.sid] = result.text
                self.soft.pop(seg.sid, None)
                self.hard.pop(seg.sid, None)
                if seg.memory_key:
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
            if failure or self.stopped:
                return batch
            try:
                answer = await self.call(provider, choice, batch)
            except (SpendStopped, ProviderBusy) as stop:
                self.stopped.append(stop)
                return batch
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
            await self.remember(learned)
        return owed

    async def on_model(
        self, provider: Provider, choice: ModelChoice, todo: list[Segment]
    ) -> list[Segment]:
        """Translate ``todo`` with one model, ``concurrency`` batches at a time, repairing
        what comes back broken. Returns the segments still owed a good translation; once a
        batch fails for good on this model, batches not yet sent are not sent."""
        limits = self.limits if provider.batching else unbatched(self.limits)
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
            if self.stopped:
                spent = [s for s in self.stopped if isinstance(s, SpendStopped)]
                raise (spent or self.stopped)[0]  # a spending limit is final: it goes first
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
                        Check(code="missing_translation", message=f"{choice.label}: {err}"),
                    )
                return todo
            if not todo:
                break
        return todo

    async def down_chain(
        self, chain: Sequence[ModelChoice], providers: dict[str, Provider], todo: list[Segment]
    ) -> list[Segment]:
        """``todo`` down ``chain``, each model given what the models before it left. Returns
        the segments still owed at the end."""
        for choice in chain:
            if not todo:
                break
            todo = await self.on_model(providers[choice.provider], choice, todo)
        return todo

    def cut_off(self, owed: list[Segment]) -> bool:
        """Whether a segment still owed was kept from an answer by an outage (a later
        attempt may do better)."""
        return any(seg.sid in self.outage for seg in owed)
