"""The judging half of the review stages (``localization/review.py``): a document's strings
paired with their translation (and back-translation) as *units*, masked with their source's
tokens, sent to a reviewer chain through the translation's dispatch
(``localization/dispatch.py``: token-budget batches, retries, splits of malformed answers,
repair rounds, fallbacks), and every verdict checked before it counts.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from localization.batch import (
    DRIFT_GRADES,
    SCORE,
    BatchAnswer,
    Provider,
    ReviewItem,
    ReviewRequest,
    estimate_tokens,
)
from localization.dispatch import BatchLimits, Dispatch, Meter, Sleep
from localization.engine_plan import EnginePlan, ModelChoice
from localization.masking import remask
from localization.outcome import Outcome
from localization.payload import Path, iter_strings
from localization.pipeline import TranslationFailed
from localization.segments import Check, Segment, prepare, short_id

MAX_REASON = 300


class ReviewFailed(TranslationFailed):
    """A review stage without a usable verdict: ``retryable`` when a reviewer was
    unreachable, so a later attempt may do better. A ``TranslationFailed``, so whoever runs
    a stage treats its failures like the translation's: the message names models, counts
    and codes, never a text; ``fallbacks`` has each model's full error."""


@dataclass
class Verdict:
    """A checked judgement: ``score`` (0-100) in mode ``score``, ``drift`` (one of
    ``DRIFT_GRADES``) in mode ``drift``; ``reason`` on one line."""

    reason: str
    score: int = 0
    drift: str = "none"

    def better_than(self, other: Verdict, mode: str) -> bool:
        if mode == SCORE:
            return self.score > other.score
        return DRIFT_GRADES.index(self.drift) < DRIFT_GRADES.index(other.drift)


@dataclass
class Unit(Segment):
    """One source string (all its keys with the same translation) and what is judged."""

    original: str = ""  # the source text as the document has it (for a re-translation)
    translation: str = ""  # unmasked, as in the output
    back: str | None = None  # unmasked back-translation (mode ``drift``)
    masked_translation: str = ""
    masked_back: str | None = None

    @property
    def tokens(self) -> int:
        texts = [self.masked_translation, self.masked_back or ""]
        return super().tokens + sum(estimate_tokens(text) for text in texts)


def units(
    source: Any,
    output: Any,
    plan: EnginePlan,
    *,
    plural_locale: str,
    locked_keys: Sequence[str] | None,
    hints: dict[str, list[str]] | None,
    back: Any = None,
) -> list[Unit]:
    """The units of a document: each segment of ``source`` with text (ICU plurals in the
    categories of ``plural_locale``), split by the distinct (translation, back-translation)
    its keys have in ``output`` (and ``back``). Keys missing from ``output`` are left out."""
    prepared = prepare(source, plan, locked_keys, hints, None, plural_locale)
    originals = dict(iter_strings(source))
    translated = dict(iter_strings(output))
    backs = dict(iter_strings(back)) if back is not None else {}
    found: list[Unit] = []
    for seg in prepared.segments:
        if not seg.masked.has_text:
            continue
        groups: dict[tuple[str, str | None], list[Path]] = {}
        for path in seg.paths:
            if path in translated:
                groups.setdefault((translated[path], backs.get(path)), []).append(path)
        for (translation, back_text), paths in groups.items():
            found.append(
                Unit(
                    sid=short_id(len(found)),
                    source=seg.source,
                    hints=seg.hints,
                    masked=seg.masked,
                    paths=paths,
                    glossary=seg.glossary,
                    original=originals[paths[0]],
                    translation=translation,
                    back=back_text,
                    masked_translation=remask(translation, seg.masked),
                    masked_back=None if back_text is None else remask(back_text, seg.masked),
                )
            )
    return found


def _reason(value: Any) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    return re.sub(r"\s+", " ", value).strip()[:MAX_REASON]


def _malformed(what: str) -> Check[Verdict]:
    return Check(code="malformed_review", message=f"the reviewer's verdict was unusable: {what}")


def judge_score(seg: Segment, answer: Any) -> Check[Verdict]:
    if not isinstance(answer, dict):
        return Check(code="missing_review", message="no verdict came back")
    score, reason = answer.get("score"), _reason(answer.get("reason"))
    if isinstance(score, float) and score.is_integer():
        score = int(score)
    if not isinstance(score, int) or isinstance(score, bool) or not 0 <= score <= 100:
        return _malformed("score is not an integer from 0 to 100")
    if reason is None:
        return _malformed("no reason given")
    return Check(text=Verdict(reason=reason, score=score))


def judge_drift(seg: Segment, answer: Any) -> Check[Verdict]:
    if not isinstance(answer, dict):
        return Check(code="missing_review", message="no verdict came back")
    grade, reason = answer.get("drift"), _reason(answer.get("reason"))
    if grade not in DRIFT_GRADES:
        return _malformed("drift is not one of " + ", ".join(DRIFT_GRADES))
    if reason is None:
        return _malformed("no reason given")
    return Check(text=Verdict(reason=reason, drift=str(grade)))


async def ask_review(provider: Provider, model: str | None, request: Any) -> BatchAnswer:
    """The ``ask`` of the review stages."""
    answer: BatchAnswer = await provider.review(model, request)
    return answer


async def _forget(entries: dict[str, Verdict]) -> None:
    return None  # verdicts are never remembered: they judge one output


@dataclass
class Judged:
    verdicts: dict[str, Verdict]  # unit id -> verdict
    problems: dict[str, str]  # unit id -> why it has none


async def judge(
    todo: list[Unit],
    mode: str,
    *,
    source_locale: str,
    target_locale: str,
    plan: EnginePlan,
    chain: Sequence[ModelChoice],
    providers: dict[str, Provider],
    limits: BatchLimits,
    context: str | None,
    outcome: Outcome,
    sleep: Sleep,
    meter: Meter | None = None,
) -> Judged:
    """Verdicts on ``todo`` down ``chain``; counts go to ``outcome``. Raises
    ReviewFailed when a reviewer was unreachable for a string still owed a verdict
    (retryable), or when no string got one."""

    def request(batch: list[Segment]) -> ReviewRequest:
        chosen = [unit for unit in batch if isinstance(unit, Unit)]
        terms = dict(pair for unit in chosen for pair in unit.glossary)
        return ReviewRequest(
            mode=mode,
            source_locale=source_locale,
            target_locale=target_locale,
            items=tuple(
                ReviewItem(u.sid, u.masked.text, u.masked_translation, u.masked_back, u.hints)
                for u in chosen
            ),
            context=context,
            glossary=tuple(terms.items()),
            brand_voice=plan.brand_voice,
            instructions=plan.instructions,
        )

    check = judge_score if mode == SCORE else judge_drift
    run = Dispatch(_forget, limits, request, outcome, sleep, ask_review, check, meter)
    owed = await run.down_chain(chain, providers, list(todo))
    if run.cut_off(owed):
        raise ReviewFailed(
            f"{len(owed)} of {len(todo)} strings not reviewed yet ({outcome.reasons()})",
            retryable=True,
            retry_after=run.retry_after,
            fallbacks=outcome.fallbacks,
        )
    if todo and not run.done:
        reasons = outcome.reasons() or "no usable verdict"
        raise ReviewFailed(
            f"no string could be reviewed ({reasons})",
            retryable=False,
            fallbacks=outcome.fallbacks,
        )
    problems = {
        seg.sid: (run.hard[seg.sid].message if seg.sid in run.hard else None)
        or "no verdict came back"
        for seg in owed
    }
    return Judged(run.done, problems)
