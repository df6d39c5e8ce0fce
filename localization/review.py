"""The quality stages after ``translate`` (API.md "Pipeline stages"), pure over providers:

- ``review_document`` (``aiReview``): a reviewer scores every translated string 0-100 with
  a one-line reason; strings under ``threshold`` are translated once more with the reason as
  feedback and scored again; the better of the two stays, and what is still under the
  threshold gets a ``low_quality_score`` warning per key.
- ``back_translate`` (``backTranslation``): the output is translated back into the source
  locale and each key's drift from the source graded ``none|minor|major|critical``;
  ``major`` and ``critical`` strings are corrected once (re-translated with the grade as
  feedback, put back and graded again, the better kept), and what stays ``major`` or
  ``critical`` gets a ``back_translation_drift`` warning per key.

Judging goes through ``localization/judging.py`` (masking, units, the dispatch); every
re-translation through ``translate_document``, the feedback as the string's last hint.
A key without a verdict keeps its translation with a ``not_reviewed`` warning. Failures:
``TranslationFailed`` (``ReviewFailed`` for the judging), retryable when a provider was
unreachable; a stage that fails otherwise leaves the output as it was.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from localization.batch import DRIFT, DRIFT_GRADES, SCORE, Provider
from localization.dispatch import BatchLimits, Meter, Sleep
from localization.engine_plan import EnginePlan, ModelChoice
from localization.judging import Unit, Verdict, judge, units
from localization.masking import remask
from localization.outcome import Outcome
from localization.payload import Path, map_strings, path_str
from localization.pipeline import Memory, TranslationFailed, translate_document

LOW_QUALITY = "low_quality_score"
DRIFTED = "back_translation_drift"
NOT_REVIEWED = "not_reviewed"
CORRECTED_GRADES = ("major", "critical")
FEEDBACK = (
    "Some items end their hints with a reviewer's note on an earlier translation of theirs: "
    "translate them so that the note no longer applies."
)


@dataclass
class StageOutcome(Outcome):
    """A stage's output and usage (its own calls and those of its re-translations),
    ``verdicts`` per key path of the output, and the step record's ``figures``."""

    verdicts: dict[str, Verdict] = field(default_factory=dict)
    figures: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StageWork:
    """What a stage checks, and with what: ``output``, ``source`` as ``plan`` translated it
    from ``source_locale`` into ``target_locale``; the providers and limits of its calls;
    ``reviewers``, the chain that judges (default: the plan's); the translation memory of
    its re-translations; the context, hints and locked keys of the document."""

    source: Any
    output: Any
    source_locale: str
    target_locale: str
    plan: EnginePlan
    providers: dict[str, Provider]
    limits: BatchLimits
    reviewers: Sequence[ModelChoice] | None = None
    memory: Memory | None = None
    context: str | None = None
    hints: dict[str, list[str]] | None = None
    locked_keys: Sequence[str] | None = None
    sleep: Sleep = asyncio.sleep
    meter: Meter | None = None  # the spending limits its calls stop at


@dataclass
class _Run:
    """One stage at work: its reviewer chain and the outcome its calls add up to."""

    work: StageWork
    chain: Sequence[ModelChoice]
    stage: StageOutcome

    @classmethod
    def start(cls, work: StageWork) -> _Run:
        chain = tuple(work.reviewers or work.plan.chain)
        return cls(work, chain, StageOutcome(output=work.output, planned=chain[0].label))

    def units(self, plural_locale: str, back: Any = None) -> list[Unit]:
        """The units to judge: the output's strings (with ``back``, their way back)."""
        work = self.work
        return units(
            work.source,
            work.output,
            work.plan,
            plural_locale=plural_locale,
            locked_keys=work.locked_keys,
            hints=work.hints,
            back=back,
        )

    async def judge(self, todo: list[Unit], mode: str) -> tuple[dict[str, Verdict], dict[str, str]]:
        work = self.work
        judged = await judge(
            todo,
            mode,
            source_locale=work.source_locale,
            target_locale=work.target_locale,
            plan=work.plan,
            chain=self.chain,
            providers=work.providers,
            limits=work.limits,
            context=work.context,
            outcome=self.stage,
            sleep=work.sleep,
            meter=work.meter,
        )
        return judged.verdicts, judged.problems

    async def translate(
        self, data: dict[str, str], hints: dict[str, list[str]], plan: EnginePlan, back: bool
    ) -> dict[str, str]:
        """``data`` (unit id -> text) translated forward (or ``back``), usage added to the
        stage; only the strings that came back usable (not the text they were sent as)."""
        work = self.work
        source, target = work.source_locale, work.target_locale
        result = await translate_document(
            data,
            source_locale=target if back else source,
            target_locale=source if back else target,
            plan=plan,
            providers=work.providers,
            limits=work.limits,
            memory=work.memory,
            context=work.context,
            hints=hints,
            sleep=work.sleep,
            meter=work.meter,
        )
        _add_usage(self.stage, result)
        warned = {w["key"] for w in result.warnings}
        return {
            sid: text
            for sid, text in result.output.items()
            if not (sid in warned and text == data[sid])
        }

    async def retranslate(self, todo: list[Unit], notes: dict[str, str]) -> dict[str, str]:
        """``todo`` translated once more, each with its note as its last hint; a failure
        that a later attempt cannot mend gives nothing."""
        plan = replace(
            self.work.plan,
            instructions="\n".join(filter(None, [self.work.plan.instructions, FEEDBACK])),
        )
        hints = {u.sid: [*u.hints, notes[u.sid]] for u in todo}
        try:
            return await self.translate({u.sid: u.original for u in todo}, hints, plan, False)
        except TranslationFailed as err:
            if err.retryable:
                raise
            return {}

    async def keep_better(
        self,
        redone: list[Unit],
        mode: str,
        texts: dict[str, str],
        verdicts: dict[str, Verdict],
    ) -> None:
        """Judge the re-translations ``redone`` and keep each one whose verdict beats the
        first (in ``texts`` and ``verdicts``); none when no reviewer could judge them."""
        second = await self.judge_again(redone, mode)
        for unit in redone:
            if unit.sid in second and second[unit.sid].better_than(verdicts[unit.sid], mode):
                texts[unit.sid], verdicts[unit.sid] = unit.translation, second[unit.sid]

    async def judge_again(self, todo: list[Unit], mode: str) -> dict[str, Verdict]:
        """Verdicts on re-translations; none when no reviewer could give any for good."""
        if not todo:
            return {}
        try:
            verdicts, _problems = await self.judge(todo, mode)
        except TranslationFailed as err:
            if err.retryable:
                raise
            return {}
        return verdicts


def _add_usage(stage: Outcome, part: Outcome) -> None:
    stage.input_tokens += part.input_tokens
    stage.output_tokens += part.output_tokens
    stage.calls += part.calls
    stage.models.extend(m for m in part.models if m not in stage.models)
    stage.fallbacks.extend(part.fallbacks)
    stage.failures.extend(part.failures)


def _warn(stage: StageOutcome, unit: Unit, code: str, message: str) -> None:
    for path in unit.paths:
        stage.warnings.append({"code": code, "key": path_str(path), "message": message})


def _finish(
    stage: StageOutcome,
    output: Any,
    todo: list[Unit],
    texts: dict[str, str],
    verdicts: dict[str, Verdict],
    problems: dict[str, str],
) -> None:
    """The output with the kept texts, the verdicts per key, the unreviewed warnings."""
    by_path: dict[Path, Unit] = {path: u for u in todo for path in u.paths}
    stage.output = map_strings(
        output, lambda path, text: texts[by_path[path].sid] if path in by_path else text
    )
    stage.strings = sum(len(u.paths) for u in todo)
    for unit in todo:
        if unit.sid in verdicts:
            for path in unit.paths:
                stage.verdicts[path_str(path)] = verdicts[unit.sid]
        else:
            _warn(stage, unit, NOT_REVIEWED, problems.get(unit.sid, "no verdict came back"))


async def review_document(work: StageWork, threshold: int) -> StageOutcome:
    """``aiReview`` of ``work.output``. Figures: ``scoreMin``, ``scoreMean`` (over the keys
    reviewed, after re-translation; None without any) and ``retranslated`` (keys)."""
    run = _Run.start(work)
    stage = run.stage
    todo = run.units(work.target_locale)
    verdicts, problems = await run.judge(todo, SCORE) if todo else ({}, {})
    texts = {u.sid: u.translation for u in todo}
    low = [u for u in todo if u.sid in verdicts and verdicts[u.sid].score < threshold]
    if low:
        notes = {
            u.sid: f"Reviewer's note (scored {verdicts[u.sid].score}/100): {verdicts[u.sid].reason}"
            for u in low
        }
        fixed = await run.retranslate(low, notes)
        again = [
            replace(u, translation=fixed[u.sid], masked_translation=remask(fixed[u.sid], u.masked))
            for u in low
            if u.sid in fixed
        ]
        await run.keep_better(again, SCORE, texts, verdicts)
        for unit in low:
            kept = verdicts[unit.sid]
            if kept.score < threshold:
                message = f"scored {kept.score} (threshold {threshold}): {kept.reason}"
                _warn(stage, unit, LOW_QUALITY, message)
    _finish(stage, work.output, todo, texts, verdicts, problems)
    scores = [v.score for v in stage.verdicts.values()]
    stage.figures = {
        "scoreMin": min(scores) if scores else None,
        "scoreMean": round(sum(scores) / len(scores), 1) if scores else None,
        "retranslated": sum(len(u.paths) for u in low),
    }
    return stage


def back_plan(plan: EnginePlan) -> EnginePlan:
    """The plan of the way back: the same models and do-not-translate terms, the glossary
    reversed, no brand voice or instructions (they are the target's)."""
    glossary = tuple((translation, term) for term, translation in plan.glossary)
    return replace(plan, glossary=glossary, brand_voice=None, instructions=None)


async def back_translate(work: StageWork) -> StageOutcome:
    """``backTranslation`` of ``work.output``: the plan's models translate back, the
    reviewers grade. Figures: ``drift``, the keys per final grade (after correction)."""
    run = _Run.start(work)
    stage = run.stage
    reverse = back_plan(work.plan)
    back = await translate_document(
        work.output,
        source_locale=work.target_locale,
        target_locale=work.source_locale,
        plan=reverse,
        providers=work.providers,
        limits=work.limits,
        memory=work.memory,
        context=work.context,
        hints=work.hints,
        locked_keys=work.locked_keys,
        sleep=work.sleep,
        meter=work.meter,
    )
    _add_usage(stage, back)
    unusable = {w["key"] for w in back.warnings}
    todo = run.units(work.source_locale, back=back.output)
    # A key the way back could not translate (it kept the text it was sent) has nothing
    # to grade.
    failed = {
        u.sid
        for u in todo
        if u.back == u.translation and any(path_str(p) in unusable for p in u.paths)
    }
    graded = [u for u in todo if u.sid not in failed]
    verdicts, problems = await run.judge(graded, DRIFT) if graded else ({}, {})
    problems.update(dict.fromkeys(failed, "the back-translation of this string failed"))
    texts = {u.sid: u.translation for u in todo}
    bad = [u for u in graded if u.sid in verdicts and verdicts[u.sid].drift in CORRECTED_GRADES]
    if bad:
        notes = {
            u.sid: f"A back-translation of the earlier translation drifted "
            f"({verdicts[u.sid].drift}): {verdicts[u.sid].reason}"
            for u in bad
        }
        fixed = await run.retranslate(bad, notes)
        returned = await run.translate(fixed, {}, reverse, True) if fixed else {}
        again = [
            replace(
                u,
                translation=fixed[u.sid],
                masked_translation=remask(fixed[u.sid], u.masked),
                back=returned[u.sid],
                masked_back=remask(returned[u.sid], u.masked),
            )
            for u in bad
            if u.sid in returned
        ]
        await run.keep_better(again, DRIFT, texts, verdicts)
        for unit in bad:
            kept = verdicts[unit.sid]
            if kept.drift in CORRECTED_GRADES:
                _warn(stage, unit, DRIFTED, f"{kept.drift} drift: {kept.reason}")
    _finish(stage, work.output, todo, texts, verdicts, problems)
    counts = dict.fromkeys(DRIFT_GRADES, 0)
    for verdict in stage.verdicts.values():
        counts[verdict.drift] += 1
    stage.figures = {"drift": counts}
    return stage
