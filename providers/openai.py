"""Any OpenAI-compatible chat-completions server (OpenAI, Azure, OpenRouter, vLLM, Ollama,
llama.cpp): the answer is constrained by a strict JSON schema (``response_format``)."""

from __future__ import annotations

from typing import Any

from localization.batch import (
    AnswerError,
    BatchAnswer,
    BatchRequest,
    ProviderError,
    ReviewRequest,
)
from providers.http import HttpProvider
from providers.prompt import (
    ANSWER_SCHEMA,
    REVIEW_NAMES,
    REVIEW_SCHEMAS,
    parse_answer,
    parse_review,
    review_message,
    review_prompt,
    system_prompt,
    user_message,
)


class OpenAIProvider(HttpProvider):
    def __init__(self, name: str, config: dict[str, Any]):
        api_key = str(config.get("api_key") or "")
        super().__init__(name, config, {"Authorization": f"Bearer {api_key}"})

    async def translate(self, model: str | None, request: BatchRequest) -> BatchAnswer:
        content, usage = await self._complete(
            model, system_prompt(request), user_message(request), "translations", ANSWER_SCHEMA
        )
        return _answer(parse_answer(content), usage)

    async def review(self, model: str | None, request: ReviewRequest) -> BatchAnswer:
        content, usage = await self._complete(
            model,
            review_prompt(request),
            review_message(request),
            REVIEW_NAMES[request.mode],
            REVIEW_SCHEMAS[request.mode],
        )
        return _answer(parse_review(content), usage)

    async def _complete(
        self, model: str | None, system: str, user: str, name: str, schema: dict[str, Any]
    ) -> tuple[Any, dict[str, Any]]:
        """One chat completion constrained to ``schema``: its content and usage."""
        if not model:
            raise ProviderError("no model named for this provider", retryable=False)
        payload = await self.post(
            "/chat/completions",
            {
                "model": model,
                "messages": [
                    {"role": "system", "content": system},
                    {"role": "user", "content": user},
                ],
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": name, "strict": True, "schema": schema},
                },
            },
            model,
        )
        try:
            choice = payload["choices"][0]
            content = choice["message"]["content"]
        except (KeyError, IndexError, TypeError):
            raise AnswerError("the answer had no message content") from None
        if choice.get("finish_reason") == "length":
            raise AnswerError("the answer was cut off (finish_reason length)")
        return content, payload.get("usage") or {}


def _answer(texts: dict[str, Any], usage: dict[str, Any]) -> BatchAnswer:
    return BatchAnswer(
        texts=texts,
        input_tokens=int(usage.get("prompt_tokens") or 0),
        output_tokens=int(usage.get("completion_tokens") or 0),
    )
