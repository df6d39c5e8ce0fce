"""Anthropic's Messages API: the answer comes as the input of a forced tool call, whose
``input_schema`` is the answer schema."""

from __future__ import annotations

from typing import Any

from localization.batch import (
    AnswerError,
    BatchAnswer,
    BatchRequest,
    ProviderError,
    ReviewRequest,
    estimate_tokens,
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

TOOL = "submit_translations"
API_VERSION = "2023-06-01"
MAX_OUTPUT_TOKENS = 8_192
# A verdict is an id, a number or grade and one line, whatever the length of the texts.
REVIEW_OUTPUT_TOKENS_PER_ITEM = 64


class AnthropicProvider(HttpProvider):
    def __init__(self, name: str, config: dict[str, Any]):
        headers = {"x-api-key": str(config.get("api_key") or ""), "anthropic-version": API_VERSION}
        super().__init__(name, config, headers)
        # The model's output limit (older models allow 4,096 or 8,192 tokens).
        self.max_output_tokens = int(config.get("max_output_tokens") or MAX_OUTPUT_TOKENS)

    async def translate(self, model: str | None, request: BatchRequest) -> BatchAnswer:
        message = user_message(request)
        # Room for the translations, which run longer than the source in most languages,
        # plus the JSON around them.
        room = 3 * estimate_tokens(message) + 256
        tool = (TOOL, "Submit the translation of every item.", ANSWER_SCHEMA)
        tool_input, usage = await self._call(model, system_prompt(request), message, room, tool)
        return _answer(parse_answer(tool_input), usage)

    async def review(self, model: str | None, request: ReviewRequest) -> BatchAnswer:
        room = REVIEW_OUTPUT_TOKENS_PER_ITEM * len(request.items) + 256
        name = f"submit_{REVIEW_NAMES[request.mode]}"
        tool = (name, "Submit the verdict on every item.", REVIEW_SCHEMAS[request.mode])
        message = review_message(request)
        tool_input, usage = await self._call(model, review_prompt(request), message, room, tool)
        return _answer(parse_review(tool_input), usage)

    async def _call(
        self,
        model: str | None,
        system: str,
        message: str,
        room: int,
        tool: tuple[str, str, dict[str, Any]],
    ) -> tuple[Any, dict[str, Any]]:
        """One message forced to call ``tool`` (name, description, schema): the tool's
        input and the usage."""
        if not model:
            raise ProviderError("no model named for this provider", retryable=False)
        name, description, schema = tool
        payload = await self.post(
            "/v1/messages",
            {
                "model": model,
                "max_tokens": min(self.max_output_tokens, room),
                "system": system,
                "messages": [{"role": "user", "content": message}],
                "tools": [{"name": name, "description": description, "input_schema": schema}],
                "tool_choice": {"type": "tool", "name": name},
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
            raise AnswerError(f"the answer had no {name} call (stop_reason {reason})")
        return tool_input, payload.get("usage") or {}


def _answer(texts: dict[str, Any], usage: dict[str, Any]) -> BatchAnswer:
    return BatchAnswer(
        texts=texts,
        input_tokens=int(usage.get("input_tokens") or 0),
        output_tokens=int(usage.get("output_tokens") or 0),
    )
