"""Anthropic's Messages API: the answer comes as the input of a forced tool call, whose
``input_schema`` is the answer schema."""

from __future__ import annotations

from typing import Any

from localization.batch import (
    AnswerError,
    BatchAnswer,
    BatchRequest,
    ProviderError,
    estimate_tokens,
)
from providers.http import HttpProvider
from providers.prompt import ANSWER_SCHEMA, parse_answer, system_prompt, user_message

TOOL = "submit_translations"
API_VERSION = "2023-06-01"
MAX_OUTPUT_TOKENS = 8_192


class AnthropicProvider(HttpProvider):
    def __init__(self, name: str, config: dict[str, Any]):
        headers = {"x-api-key": str(config.get("api_key") or ""), "anthropic-version": API_VERSION}
        super().__init__(name, config, headers)
        # The model's output limit (older models allow 4,096 or 8,192 tokens).
        self.max_output_tokens = int(config.get("max_output_tokens") or MAX_OUTPUT_TOKENS)

    async def translate(self, model: str | None, request: BatchRequest) -> BatchAnswer:
        if not model:
            raise ProviderError("no model named for this provider", retryable=False)
        message = user_message(request)
        payload = await self.post(
            "/v1/messages",
            {
                "model": model,
                # Room for the translations, which run longer than the source in most
                # languages, plus the JSON around them.
                "max_tokens": min(self.max_output_tokens, 3 * estimate_tokens(message) + 256),
                "system": system_prompt(request),
                "messages": [{"role": "user", "content": message}],
                "tools": [
                    {
                        "name": TOOL,
                        "description": "Submit the translation of every item.",
                        "input_schema": ANSWER_SCHEMA,
                    }
                ],
                "tool_choice": {"type": "tool", "name": TOOL},
            },
            model,
        )
        if payload.get("stop_reason") == "max_tokens":
            raise AnswerError("the answer was cut off (stop_reason max_tokens)")
        blocks = payload.get("content")
        tool_input = next(
            (
                block.get("input")
                for block in blocks or []
                if isinstance(block, dict) and block.get("type") == "tool_use"
            ),
            None,
        )
        if tool_input is None:
            reason = payload.get("stop_reason")
            raise AnswerError(f"the answer had no {TOOL} call (stop_reason {reason})")
        usage = payload.get("usage") or {}
        return BatchAnswer(
            texts=parse_answer(tool_input),
            input_tokens=int(usage.get("input_tokens") or 0),
            output_tokens=int(usage.get("output_tokens") or 0),
        )
