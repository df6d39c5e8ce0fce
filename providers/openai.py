"""Any OpenAI-compatible chat-completions server (OpenAI, Azure, OpenRouter, vLLM, Ollama,
llama.cpp): the answer is constrained by a strict JSON schema (``response_format``)."""

from __future__ import annotations

from typing import Any

from localization.batch import AnswerError, BatchAnswer, BatchRequest, ProviderError
from providers.http import HttpProvider
from providers.prompt import ANSWER_SCHEMA, parse_answer, system_prompt, user_message

SCHEMA_FORMAT = {"name": "translations", "strict": True, "schema": ANSWER_SCHEMA}


class OpenAIProvider(HttpProvider):
    def __init__(self, name: str, config: dict[str, Any]):
        api_key = str(config.get("api_key") or "")
        super().__init__(name, config, {"Authorization": f"Bearer {api_key}"})

    async def translate(self, model: str | None, request: BatchRequest) -> BatchAnswer:
        if not model:
            raise ProviderError("no model named for this provider", retryable=False)
        payload = await self.post(
            "/chat/completions",
            {
                "model": model,
                "messages": [
                    {"role": "system", "content": system_prompt(request)},
                    {"role": "user", "content": user_message(request)},
                ],
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {
                        "name": "translations",
                        "strict": True,
                        "schema": ANSWER_SCHEMA,
                    },
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
        usage = payload.get("usage") or {}
        return BatchAnswer(
            texts=parse_answer(content),
            input_tokens=int(usage.get("prompt_tokens") or 0),
            output_tokens=int(usage.get("completion_tokens") or 0),
        )
