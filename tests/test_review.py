"""The review stages (``localization/review.py``) on their own: the pseudo reviewer and
grader, then ``review_document`` and ``back_translate`` with the pseudo provider and with
the LLM stand-in over both wire formats (low scores, malformed verdicts, outages)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from localization import pseudo_review
from localization.batch import Provider
from localization.engine_plan import EnginePlan, ModelChoice
from localization.judging import ReviewFailed
from localization.masking import mask, remask
from localization.pseudo import pseudo_localize
from localization.review import StageOutcome, StageWork, back_translate, review_document
from providers.anthropic import AnthropicProvider
from providers.openai import OpenAIProvider
from providers.pseudo import PseudoProvider
from settings import Settings, batch_limits
from tests.fake_llm import FakeLLM
from tests.fake_llm_modes import GOOD_SCORE, LOW_SCORE

LIMITS = batch_limits(Settings())
GLOSSARY = (("course", "Kurs"),)
PSEUDO = EnginePlan("eng_p", (ModelChoice("pseudo"),), glossary=GLOSSARY)


async def no_sleep(_seconds: float) -> None:
    return None


def test_pseudo_reviewer_scores_100_unless_a_token_or_glossary_term_is_broken() -> None:
    assert pseudo_review.score("Hi ⟦0⟧", "Hallo ⟦0⟧", GLOSSARY)[0] == 100
    assert pseudo_review.score("Hi ⟦0⟧", "Hallo", GLOSSARY)[0] == pseudo_review.TOKEN_SCORE
    assert "⟦0⟧" in pseudo_review.score("Hi ⟦0⟧", "Hallo", GLOSSARY)[1]
    assert pseudo_review.score("Hi ⟦0⟧", "⟦0⟧ ⟦0⟧", ())[0] == pseudo_review.TOKEN_SCORE
    low, reason = pseudo_review.score("Open the course", "Öffne den Lehrgang", GLOSSARY)
    assert low == pseudo_review.GLOSSARY_SCORE and "Kurs" in reason
    assert pseudo_review.score("Open the course", "Öffne den Kurs", GLOSSARY)[0] == 100


def test_pseudo_grader_grades_drift_from_tokens_and_glossary() -> None:
    assert pseudo_review.drift("Hi ⟦0⟧", "Hallo ⟦0⟧", "Hello ⟦0⟧", ())[0] == "none"
    assert pseudo_review.drift("Hi ⟦0⟧", "Hallo ⟦0⟧", "Hello", ())[0] == "critical"
    assert pseudo_review.drift("Hi", "Hallo", " ", ())[0] == "critical"
    assert pseudo_review.drift("the course", "der Lehrgang", "the class", GLOSSARY)[0] == "minor"


def test_remask_gives_a_translation_its_sources_tokens() -> None:
    masked = mask("Hi {name}, <b>{n, plural, one {# file} other {# files}}</b>")
    translated = "Hallo {name}, <b>{n, plural, one {# Datei} other {# Dateien}}</b>"
    assert remask(translated, masked) == "Hallo ⟦0⟧, ⟦1⟧⟦2⟧⟦3⟧ Datei⟦4⟧⟦5⟧ Dateien⟦6⟧⟦7⟧"
    assert remask("Hallo {nme}", mask("Hi {name}")) == "Hallo {nme}"


def work(
    source: Any, output: Any, plan: EnginePlan, providers: dict[str, Provider], **extra: Any
) -> StageWork:
    """A stage's work on ``output``, ``source`` translated from en into de."""
    return StageWork(source, output, "en", "de", plan, providers, LIMITS, sleep=no_sleep, **extra)


def review(
    source: Any, output: Any, plan: EnginePlan, providers: dict[str, Provider], **extra: Any
) -> StageOutcome:
    return asyncio.run(
        review_document(work(source, output, plan, providers, **extra), threshold=80)
    )


def back(
    source: Any, output: Any, plan: EnginePlan, providers: dict[str, Provider]
) -> StageOutcome:
    return asyncio.run(back_translate(work(source, output, plan, providers)))


SOURCE = {"id": "x-1", "hello": "Hello {name}", "course": "Open the course", "plain": "Plain"}


def test_pseudo_review_retranslates_a_broken_string_and_warns_about_what_stays_low() -> None:
    output = {"id": "x-1", "hello": "Hallo", "course": "Öffne den Lehrgang", "plain": "Einfach"}
    result = review(SOURCE, output, PSEUDO, {"pseudo": PseudoProvider()}, locked_keys=["id"])
    # The lost placeholder is re-translated (pseudo keeps tokens, so it now scores 100);
    # pseudo ignores the glossary, so the course string scores low twice: the first stays.
    assert result.output == {
        "id": "x-1",
        "hello": pseudo_localize("Hello {name}"),
        "course": "Öffne den Lehrgang",
        "plain": "Einfach",
    }
    assert {key: v.score for key, v in result.verdicts.items()} == {
        "hello": 100,
        "course": pseudo_review.GLOSSARY_SCORE,
        "plain": 100,
    }
    assert [(w["code"], w["key"]) for w in result.warnings] == [("low_quality_score", "course")]
    assert "Kurs" in result.warnings[0]["message"]
    assert result.figures == {
        "scoreMin": pseudo_review.GLOSSARY_SCORE,
        "scoreMean": round((100 + 60 + 100) / 3, 1),
        "retranslated": 2,
    }
    assert result.strings == 3 and result.model == "pseudo" and result.calls == 3


def test_pseudo_back_translation_corrects_critical_drift() -> None:
    output = {"id": "x-1", "hello": "Hallo", "course": "Öffne den Kurs", "plain": "Einfach"}
    result = back(SOURCE, output, PSEUDO, {"pseudo": PseudoProvider()})
    assert result.output["hello"] == pseudo_localize("Hello {name}")  # corrected
    assert result.output["course"] == "Öffne den Kurs" and result.output["id"] == "x-1"
    assert result.figures == {"drift": {"none": 4, "minor": 0, "major": 0, "critical": 0}}
    assert result.warnings == []


# -- the LLM stand-in --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeLLM]:
    with FakeLLM() as server:
        yield server


@pytest.fixture(params=["openai", "anthropic"])
def api(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def llm(fake: FakeLLM, api: str) -> dict[str, Provider]:
    config = {"api_key": fake.api_key, "timeout_seconds": 10}
    if api == "openai":
        return {api: OpenAIProvider(api, {**config, "base_url": fake.openai_base})}
    return {api: AnthropicProvider(api, {**config, "base_url": fake.anthropic_base})}


def plan_of(api: str, *modes: str) -> tuple[EnginePlan, list[str]]:
    names = [f"{mode}:{uuid.uuid4().hex[:8]}" for mode in modes]
    plan = EnginePlan(
        "eng_llm",
        tuple(ModelChoice(api, name) for name in names),
        glossary=GLOSSARY,
        brand_voice="Du-Form.",
        instructions="Keep it short.",
    )
    return plan, names


DOC = {"a": "Hello {name}", "b": "Open the course", "c": "Bye"}
FAKE_DE = {"a": "de: Hello {name}", "b": "de: Open the Kurs", "c": "de: Bye"}


def reviews(fake: FakeLLM, name: str, task: str) -> list[Any]:
    return [c for c in fake.calls(model=name) if (c.user or {}).get("task") == task]


def test_review_request_carries_masked_pairs_glossary_voice_and_instructions(
    fake: FakeLLM, api: str
) -> None:
    plan, (name,) = plan_of(api, "good")
    result = review(DOC, FAKE_DE, plan, llm(fake, api), context="A course app")
    assert result.output == FAKE_DE and result.warnings == []
    assert result.figures == {"scoreMin": GOOD_SCORE, "scoreMean": GOOD_SCORE, "retranslated": 0}
    (call,) = fake.calls(model=name)
    assert call.status == 200 and call.user is not None
    assert call.user["task"] == "score" and call.user["context"] == "A course app"
    assert call.user["glossary"] == [{"term": "course", "translation": "Kurs"}]
    assert {"id": "0", "source": "Hello ⟦0⟧", "translation": "de: Hello ⟦0⟧"} in call.user["items"]
    assert "{name}" not in json.dumps(call.user, ensure_ascii=False)
    assert "Du-Form." in call.system and "Keep it short." in call.system
    assert "0 (wrong or unusable) to 100" in call.system
    assert result.input_tokens > 0 and result.output_tokens > 0 and result.calls == 1


def test_a_low_score_is_retranslated_once_with_the_reason_and_accepted_when_better(
    fake: FakeLLM, api: str
) -> None:
    plan, (name,) = plan_of(api, "low-score-once")
    result = review(DOC, FAKE_DE, plan, llm(fake, api))
    assert result.output == FAKE_DE and result.warnings == []
    assert result.figures["retranslated"] == 3 and result.figures["scoreMin"] == GOOD_SCORE
    assert len(reviews(fake, name, "score")) == 2
    (again,) = [c for c in fake.calls(model=name) if c.user and "task" not in c.user]
    assert all(item["hints"][-1].startswith("Reviewer's note (scored 40/100): fake: too literal")
               for item in again.items)  # fmt: skip
    assert "reviewer's note" in again.system


def test_a_score_still_low_after_retranslation_is_a_warning_per_key(
    fake: FakeLLM, api: str
) -> None:
    plan, (name,) = plan_of(api, "low-score")
    result = review({**DOC, "d": "Bye"}, {**FAKE_DE, "d": "de: Bye"}, plan, llm(fake, api))
    assert result.output == {**FAKE_DE, "d": "de: Bye"}
    assert sorted(w["key"] for w in result.warnings) == ["a", "b", "c", "d"]
    assert {w["code"] for w in result.warnings} == {"low_quality_score"}
    assert f"scored {LOW_SCORE} (threshold 80)" in result.warnings[0]["message"]
    assert result.figures == {"scoreMin": LOW_SCORE, "scoreMean": LOW_SCORE, "retranslated": 4}
    # One retranslation only: review, translate, review.
    assert len(fake.calls(model=name)) == 3


@pytest.mark.parametrize("bad", ["bad-review", "malformed"])
def test_unusable_verdicts_are_retried_then_the_next_model_reviews(
    fake: FakeLLM, api: str, bad: str
) -> None:
    plan, (broken, good) = plan_of(api, bad, "good")
    result = review(DOC, FAKE_DE, plan, llm(fake, api))
    assert result.output == FAKE_DE and result.warnings == []
    assert result.model == f"{api}/{good}" and len(result.verdicts) == 3
    calls = len(fake.calls(model=broken))
    if bad == "bad-review":  # checked per verdict: sent again in each repair round
        assert calls == 1 + LIMITS.repair_rounds
    else:  # the answer as a whole: retried, split, then given up with a fallback
        assert calls > 1 and result.fallbacks[0]["model"] == f"{api}/{broken}"


def test_no_usable_verdict_at_all_fails_for_good(fake: FakeLLM, api: str) -> None:
    plan, _ = plan_of(api, "bad-review")
    with pytest.raises(ReviewFailed, match="no string could be reviewed") as caught:
        review(DOC, FAKE_DE, plan, llm(fake, api))
    assert not caught.value.retryable
    assert "Hello" not in str(caught.value)


def test_an_outage_of_the_reviewer_is_a_retryable_failure(fake: FakeLLM, api: str) -> None:
    plan, (name,) = plan_of(api, "server-error")
    with pytest.raises(ReviewFailed, match="not reviewed yet") as caught:
        review(DOC, FAKE_DE, plan, llm(fake, api))
    assert caught.value.retryable
    assert len(fake.calls(model=name)) == LIMITS.attempts_per_model


def test_back_translation_corrects_major_drift_once(fake: FakeLLM, api: str) -> None:
    plan, (name,) = plan_of(api, "low-score-once")
    result = back(DOC, FAKE_DE, plan, llm(fake, api))
    assert result.output == FAKE_DE and result.warnings == []
    assert result.figures == {"drift": {"none": 3, "minor": 0, "major": 0, "critical": 0}}
    grades = reviews(fake, name, "drift")
    assert len(grades) == 2
    first = grades[0].user["items"]
    assert {item["backTranslation"] for item in first} >= {"en: de: Bye"}


def test_drift_that_remains_is_a_warning(fake: FakeLLM, api: str) -> None:
    plan, _ = plan_of(api, "low-score")
    result = back(DOC, FAKE_DE, plan, llm(fake, api))
    assert result.output == FAKE_DE
    assert sorted((w["code"], w["key"]) for w in result.warnings) == [
        ("back_translation_drift", k) for k in "abc"
    ]
    assert result.figures == {"drift": {"none": 0, "minor": 0, "major": 3, "critical": 0}}
