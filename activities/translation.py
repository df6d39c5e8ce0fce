"""Translate a document with an engine: the one use case behind a job's ``translate_job``
activity and the synchronous ``POST /process/localize``; and run a quality stage
(``aiReview``, ``backTranslation``) on a translation with the same engine's plan, memory
and limits: the use case behind ``review_job`` and ``back_translate_job``.

The engine's plan for the pair (model chain, glossary, voice) is resolved here, and the
pipeline runs with the organization's translation memory, so a job and a synchronous call
translate the same document the same way. What a failure means to the caller (an activity
error, a 400 or a 502) and what is recorded (a step record, a usage row) stays with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import contract
from localization.batch import Provider
from localization.dispatch import BatchLimits, Meter
from localization.engine_plan import EnginePlan, EngineUnusable, ModelChoice, engine_plan
from localization.outcome import Outcome
from localization.pipeline import TranslationFailed, translate_document
from localization.review import StageOutcome, StageWork, back_translate, review_document
from store.db import Database
from store.memory import DatabaseMemory
from store.tables import Engine


class EngineTranslationFailed(TranslationFailed):
    """``TranslationFailed``, naming also the model the engine's plan put first (a job's
    failed step record shows it)."""

    def __init__(self, failed: TranslationFailed, planned: str) -> None:
        super().__init__(
            str(failed),
            retryable=failed.retryable,
            retry_after=failed.retry_after,
            fallbacks=failed.fallbacks,
        )
        self.planned = planned


@dataclass(frozen=True)
class EngineRun:
    """What a translation or a stage runs with: ``engine`` for the locale pair, the
    providers this server offers, the batch limits, the organization's translation memory,
    and the context, hints and locked keys of the group (or of the request)."""

    engine: Engine
    source_locale: str
    target_locale: str
    providers: dict[str, Provider]
    db: Database
    organization_id: str
    limits: BatchLimits
    context: str | None = None
    hints: dict[str, list[str]] | None = None
    locked_keys: Sequence[str] | None = None
    meter: Meter | None = None  # the spending limits it stops at, where its spend is kept

    def plan(self) -> EnginePlan:
        """The engine's plan for the pair; ``EngineUnusable`` when it has no model this
        server can run for it."""
        engine = self.engine
        return engine_plan(
            engine.id,
            engine.config,
            engine.provider,
            self.source_locale,
            self.target_locale,
            self.providers,
        )

    def memory(self) -> DatabaseMemory:
        return DatabaseMemory(self.db, self.organization_id)


async def translate_with_engine(data: Any, run: EngineRun) -> Outcome:
    """Translate ``data`` from ``run.source_locale`` to ``run.target_locale`` as its engine
    says.

    Raises ``EngineUnusable`` before any work when the engine has no model this server can
    run for the pair, and ``EngineTranslationFailed`` when no usable output came back."""
    plan = run.plan()
    try:
        return await translate_document(
            data,
            source_locale=run.source_locale,
            target_locale=run.target_locale,
            plan=plan,
            providers=run.providers,
            memory=run.memory(),
            limits=run.limits,
            context=run.context,
            hints=run.hints,
            locked_keys=run.locked_keys,
            meter=run.meter,
        )
    except TranslationFailed as err:
        raise EngineTranslationFailed(err, plan.chain[0].label) from err


def reviewer_chain(model: str | None, providers: dict[str, Provider]) -> list[ModelChoice] | None:
    """An ``aiReview`` ``model`` (``provider/model``, or a provider alone) as a reviewer
    chain; None (the engine's chain) without one. EngineUnusable when its provider is not
    configured on this server."""
    if model is None:
        return None
    provider, _, name = model.partition("/")
    if provider not in providers:
        raise EngineUnusable(f"reviewer {model}: provider {provider} not configured on this server")
    return [ModelChoice(provider, name or None)]


async def run_stage_with_engine(
    stage: str,
    source: Any,
    draft: Any,
    run: EngineRun,
    *,
    threshold: int | None = None,
    reviewer: str | None = None,
) -> StageOutcome:
    """Run ``stage`` (``contract.AI_REVIEW`` or ``contract.BACK_TRANSLATION``) on ``draft``,
    ``source`` as ``run.engine`` translated it. Raises ``EngineUnusable`` before any work,
    and ``TranslationFailed`` (``ReviewFailed``) when the stage gave nothing usable."""
    work = StageWork(
        source=source,
        output=draft,
        source_locale=run.source_locale,
        target_locale=run.target_locale,
        plan=run.plan(),
        providers=run.providers,
        limits=run.limits,
        memory=run.memory(),
        context=run.context,
        hints=run.hints,
        locked_keys=run.locked_keys,
        meter=run.meter,
    )
    if stage == contract.AI_REVIEW:
        reviewers = reviewer_chain(reviewer, run.providers)
        threshold = contract.AI_REVIEW_THRESHOLD if threshold is None else threshold
        return await review_document(replace(work, reviewers=reviewers), threshold)
    return await back_translate(work)
