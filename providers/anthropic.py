"""Anthropic's Messages API: the answer comes as the input of a forced tool call, whose
``input_schema`` is the answer schema."""

from __future__ import annotations

from typing import Any

from localization.batch import AnswerError
from providers.http import HttpProvider, Question

API_VERSION = "2023-06-01"
MAX_OUTPUT_TOKENS = 8_192


class AnthropicProvider(HttpProvider):
    def __init__(self, name: str, config: dict[str, Any]):
        headers = {"x-api-key": str(config.get("api_key") or ""), "anthropic-version": API_VERSION}
        super().__init__(name, config, headers)
        # The model's output limit (older models allow 4,096 or 8,192 tokens).
        self.max_output_tokens = int(config.get("max_output_tokens") or MAX_OUTPUT_TOKENS)

    async def ask(self, model: str, question: Question) -> tuple[Any, dict[str, Any]]:
        """One message forced to call the tool ``submit_<name>`` (the question's schema as
        its input schema): the tool's input and the usage."""
        tool = f"submit_{question.name}"
        payload = await self.post(
            "/v1/messages",
            {
                "model": model,
                "max_tokens": min(self.max_output_tokens, question.room),
                "system": question.system,
                "messages": [{"role": "user", "content": question.message}],
                "tools": [
                    {
                        "name": tool,
                        "description": question.description,
                        "input_schema": question.schema,
                    }
                ],
                "tool_choice": {"type": "tool", "name": tool},
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
            raise AnswerError(f"the answer had no {tool} call (stop_reason {reason})")
        return tool_input, payload.get("usage") or {}
