"""Any OpenAI-compatible chat-completions server (OpenAI, Azure, OpenRouter, vLLM, Ollama,
llama.cpp): the answer is constrained by a strict JSON schema (``response_format``)."""

from __future__ import annotations

from typing import Any

from localization.batch import AnswerError
from providers.http import HttpProvider, Question


class OpenAIProvider(HttpProvider):
    usage_fields = ("prompt_tokens", "completion_tokens")

    def __init__(self, name: str, config: dict[str, Any]):
        api_key = str(config.get("api_key") or "")
        super().__init__(name, config, {"Authorization": f"Bearer {api_key}"})

    async def ask(self, model: str, question: Question) -> tuple[Any, dict[str, Any]]:
        """One chat completion constrained to the question's schema: its content and usage."""
        payload = await self.post(
            "/chat/completions",
            {
                "model": model,
                "messages": [
                    {"role": "system", "content": question.system},
                    {"role": "user", "content": question.message},
                ],
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {
                        "name": question.name,
                        "strict": True,
                        "schema": question.schema,
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
        return content, payload.get("usage") or {}
