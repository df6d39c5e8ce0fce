"""The prompt and answer schema every LLM provider uses: instructions in the system
message, the batch as one JSON object in the user message, the answer constrained to
``{"items": [{"id", "text"}]}``."""

from __future__ import annotations

import json
from typing import Any

from localization.batch import AnswerError, BatchRequest

ANSWER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "items": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"id": {"type": "string"}, "text": {"type": "string"}},
                "required": ["id", "text"],
                "additionalProperties": False,
            },
        }
    },
    "required": ["items"],
    "additionalProperties": False,
}

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


def system_prompt(request: BatchRequest) -> str:
    parts = [SYSTEM_PROMPT]
    if request.brand_voice:
        parts.append(f"Brand voice for {request.target_locale}:\n{request.brand_voice}")
    if request.instructions:
        parts.append(f"Instructions for {request.target_locale}:\n{request.instructions}")
    return "\n\n".join(parts)


def user_message(request: BatchRequest) -> str:
    body: dict[str, Any] = {
        "sourceLocale": request.source_locale,
        "targetLocale": request.target_locale,
    }
    if request.context:
        body["context"] = request.context
    if request.glossary:
        body["glossary"] = [{"term": t, "translation": tr} for t, tr in request.glossary]
    body["items"] = [
        {"id": item.id, "text": item.text, **({"hints": list(item.hints)} if item.hints else {})}
        for item in request.items
    ]
    return json.dumps(body, ensure_ascii=False)


def parse_answer(raw: Any) -> dict[str, Any]:
    """``{"items": [{"id", "text"}]}`` (a JSON string or an already decoded object) as
    id -> text. Raises a retryable ProviderError when it is not that shape at all."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            raise AnswerError("the answer was not valid JSON") from None
    items = raw.get("items") if isinstance(raw, dict) else None
    if not isinstance(items, list):
        raise AnswerError("the answer had no items list")
    texts: dict[str, Any] = {}
    for item in items:
        if isinstance(item, dict) and isinstance(item.get("id"), str):
            texts.setdefault(item["id"], item.get("text"))
    return texts
