"""What every provider takes and gives: one batch of masked strings for one locale pair.

Providers never see user keys or the document's structure: items carry short opaque ids,
and placeholders, markup and do-not-translate terms arrive as opaque tokens (``⟦0⟧``)
that must come back unchanged. The pipeline (``localization/pipeline.py``) checks every
answer; a provider only has to call its API and classify what went wrong.

The review stages (``localization/review.py``) ask the same providers for judgements,
through one call with a mode: ``score`` rates each translation 0-100 with a one-line
reason, ``drift`` grades how far a back-translation strays from the source
(``DRIFT_GRADES``). Both judge masked pairs of the same kind and share one batching path,
so one call is enough; the mode picks the prompt and the answer's shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class Item:
    id: str
    text: str
    hints: tuple[str, ...] = ()


@dataclass(frozen=True)
class BatchRequest:
    source_locale: str
    target_locale: str
    items: tuple[Item, ...]
    context: str | None = None
    glossary: tuple[tuple[str, str], ...] = ()  # (term, translation) found in these items
    brand_voice: str | None = None
    instructions: str | None = None


# The modes of ``Provider.review``.
SCORE = "score"
DRIFT = "drift"
REVIEW_MODES = (SCORE, DRIFT)
# Drift of a back-translation from its source, least first.
DRIFT_GRADES = ("none", "minor", "major", "critical")


@dataclass(frozen=True)
class ReviewItem:
    """One string to judge, every text masked with the tokens of its source."""

    id: str
    source: str
    translation: str
    back_translation: str | None = None  # mode ``drift``: the translation put back
    hints: tuple[str, ...] = ()


@dataclass(frozen=True)
class ReviewRequest:
    mode: str  # one of REVIEW_MODES
    source_locale: str
    target_locale: str  # the translation's locale (also in mode ``drift``)
    items: tuple[ReviewItem, ...]
    context: str | None = None
    glossary: tuple[tuple[str, str], ...] = ()
    brand_voice: str | None = None
    instructions: str | None = None


@dataclass
class BatchAnswer:
    # id -> what came back (the pipeline checks types): a translation, or for a review
    # a verdict object ({"score", "reason"} or {"drift", "reason"}).
    texts: dict[str, Any]
    input_tokens: int = 0
    output_tokens: int = 0


class ProviderError(Exception):
    """A call that gave no usable answer.

    ``retryable``: the same call may work later (timeout, 5xx, 429, a malformed answer).
    Not retryable: credentials refused, unknown model, a request the provider rejects:
    the pipeline moves on to the next model at once and reports this message.
    ``summary`` is the message without the provider's own words (default: the message,
    for messages of our own making).
    """

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        retry_after: float | None = None,
        summary: str | None = None,
    ):
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after
        # The message without anything the provider said (its error text may quote the
        # request): what error messages that leave the database may carry.
        self.summary = summary or message


class ProviderBusy(ProviderError):
    """A provider's shared rate limit (``providers/limits.py``) has no place for this call
    for ``retry_after`` seconds: not the model's failure. The document stops once the
    batches in flight are done, and its job waits without holding a worker (the job's
    workflow sleeps and runs the activity again: ``workflows/locale_job.py``)."""

    def __init__(self, message: str, retry_after: float, summary: str | None = None) -> None:
        super().__init__(message, retryable=True, retry_after=retry_after, summary=summary)


class AnswerError(ProviderError):
    """The provider answered, but not in the required shape (malformed JSON, no items).
    Worth another try of the same model; not a sign the provider is down."""

    def __init__(self, message: str):
        super().__init__(message, retryable=True)


class Provider(Protocol):
    name: str
    # Whether answers are kept in the translation memory (a paid provider's are; the
    # offline pseudo provider recomputes for free).
    remembers: bool

    # False: the provider takes any number of strings at once (no token budget applies).
    batching: bool

    async def translate(self, model: str | None, request: BatchRequest) -> BatchAnswer: ...

    async def review(self, model: str | None, request: ReviewRequest) -> BatchAnswer: ...


def estimate_tokens(text: str) -> int:
    """A provider-independent estimate: about four bytes of UTF-8 per token, so about four
    Latin characters, and more tokens per character for other scripts (which tokenizers
    split finer)."""
    return max(1, len(text.encode("utf-8")) // 4)


class NoReview:
    """Base of a provider that only translates: its review call is refused for good, so a
    review stage passes on to the next model of the chain."""

    async def review(self, model: str | None, request: ReviewRequest) -> BatchAnswer:
        raise ProviderError("this provider does not review translations", retryable=False)
