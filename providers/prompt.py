"""The prompts and answer schemas every LLM provider uses: instructions in the system
message, the batch as one JSON object in the user message, the answer constrained to
``{"items": [{"id", "text"}]}`` for a translation, ``{"items": [{"id", "score", "reason"}]}``
for a review and ``{"items": [{"id", "drift", "reason"}]}`` for a drift grading."""

from __future__ import annotations

import json
from typing import Any

from localization.batch import DRIFT, DRIFT_GRADES, SCORE, AnswerError, BatchRequest, ReviewRequest


def _items_schema(properties: dict[str, Any]) -> dict[str, Any]:
    """``{"items": [{"id", ...properties}]}``, strict: every property required, no others."""
    fields = {"id": {"type": "string"}, **properties}
    return {
        "type": "object",
        "properties": {
            "items": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": fields,
                    "required": list(fields),
                    "additionalProperties": False,
                },
            }
        },
        "required": ["items"],
        "additionalProperties": False,
    }


ANSWER_SCHEMA = _items_schema({"text": {"type": "string"}})
REASON = {"type": "string", "description": "one line, in English"}
REVIEW_SCHEMAS: dict[str, dict[str, Any]] = {
    # The range is in words: strict schemas of some providers refuse minimum/maximum.
    SCORE: _items_schema(
        {"score": {"type": "integer", "description": "0 to 100"}, "reason": REASON}
    ),
    DRIFT: _items_schema(
        {"drift": {"type": "string", "enum": list(DRIFT_GRADES)}, "reason": REASON}
    ),
}
# The answer's name per mode (OpenAI's schema name, Anthropic's tool).
REVIEW_NAMES = {SCORE: "reviews", DRIFT: "drift_grades"}

SYSTEM_PROMPT = """\
You are a professional software localizer. Translate each item's text from the source \
locale to the target locale, for the product described by the context.
Rules:
- Answer every item, with the same id, exactly once. Answer with the JSON schema given; \
nothing else.
- Tokens like ⟦0⟧ stand for placeholders, markup or names: keep every token exactly as \
written, each exactly once, placing them where the grammar of the target language needs them.
- Use the glossary translation for each glossary term that occurs.
- Hints name where a text appears in the product (a breadcrumb); use them to choose wording.
- Keep the meaning, tone and register; do not add or drop information; do not transliterate \
tokens."""


REVIEW_PROMPTS = {
    SCORE: """\
You are a senior reviewer of software translations. For each item, rate how well its \
translation renders its source from the source locale into the target locale, for the \
product described by the context, with a score from 0 (wrong or unusable) to 100 (nothing \
to improve), and give the main reason in one short line.
Judge:
- Meaning: nothing added, dropped or changed; the tone and register of the source.
- Tokens like ⟦0⟧ stand for placeholders, markup or names: each must appear in the \
translation exactly as in the source, each exactly once. A missing, altered or repeated \
token is a serious fault.
- Each glossary term that occurs in the source must be translated as the glossary says.
- The brand voice and the instructions below, when given; hints name where a text appears.
Answer every item, with the same id, exactly once, with the JSON schema given; nothing \
else.""",
    DRIFT: """\
You are a senior reviewer of software translations. Each item has a source text, its \
translation into the target locale, and a back-translation of that translation into the \
source locale made without seeing the source. Grade how far the meaning of the \
back-translation drifts from the source:
- none: the same meaning (wording may differ).
- minor: a nuance, tone or emphasis differs; the meaning holds.
- major: information is added, dropped or changed.
- critical: the meaning is wrong, reversed or lost, or tokens like ⟦0⟧ (placeholders, \
markup, names) are missing or altered.
Give the main reason in one short line. Answer every item, with the same id, exactly once, \
with the JSON schema given; nothing else.""",
}


def _guidance(parts: list[str], request: BatchRequest | ReviewRequest) -> str:
    """``parts`` followed by the brand voice and the instructions for the target."""
    if request.brand_voice:
        parts.append(f"Brand voice for {request.target_locale}:\n{request.brand_voice}")
    if request.instructions:
        parts.append(f"Instructions for {request.target_locale}:\n{request.instructions}")
    return "\n\n".join(parts)


def system_prompt(request: BatchRequest) -> str:
    return _guidance([SYSTEM_PROMPT], request)


def review_prompt(request: ReviewRequest) -> str:
    return _guidance([REVIEW_PROMPTS[request.mode]], request)


def _heading(request: BatchRequest | ReviewRequest) -> dict[str, Any]:
    body: dict[str, Any] = {
        "sourceLocale": request.source_locale,
        "targetLocale": request.target_locale,
    }
    if request.context:
        body["context"] = request.context
    if request.glossary:
        body["glossary"] = [{"term": t, "translation": tr} for t, tr in request.glossary]
    return body


def user_message(request: BatchRequest) -> str:
    body = _heading(request)
    body["items"] = [
        {"id": item.id, "text": item.text, **({"hints": list(item.hints)} if item.hints else {})}
        for item in request.items
    ]
    return json.dumps(body, ensure_ascii=False)


def review_message(request: ReviewRequest) -> str:
    """The review batch: ``task`` (the mode), the locales, context, glossary and items of
    ``source``, ``translation`` (and ``backTranslation``) texts."""
    body = {"task": request.mode, **_heading(request)}
    items = []
    for item in request.items:
        entry: dict[str, Any] = {"id": item.id, "source": item.source}
        entry["translation"] = item.translation
        if item.back_translation is not None:
            entry["backTranslation"] = item.back_translation
        if item.hints:
            entry["hints"] = list(item.hints)
        items.append(entry)
    body["items"] = items
    return json.dumps(body, ensure_ascii=False)


def parse_answer(raw: Any) -> dict[str, Any]:
    """``{"items": [{"id", "text"}]}`` (a JSON string or an already decoded object) as
    id -> text. Raises a retryable ProviderError when it is not that shape at all."""
    return {ident: item.get("text") for ident, item in _answer_items(raw).items()}


def parse_review(raw: Any) -> dict[str, Any]:
    """A review or drift answer as id -> the item without its id (the pipeline checks the
    verdict's fields). Raises a retryable ProviderError when it is not a list of items."""
    return {
        ident: {k: v for k, v in item.items() if k != "id"}
        for ident, item in _answer_items(raw).items()
    }


def _answer_items(raw: Any) -> dict[str, dict[str, Any]]:
    """``{"items": [{"id", ...}]}`` as id -> item, the first of each id."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            raise AnswerError("the answer was not valid JSON") from None
    items = raw.get("items") if isinstance(raw, dict) else None
    if not isinstance(items, list):
        raise AnswerError("the answer had no items list")
    found: dict[str, dict[str, Any]] = {}
    for item in items:
        if isinstance(item, dict) and isinstance(item.get("id"), str):
            found.setdefault(item["id"], item)
    return found
