"""What the LLM providers share: a translation or a review asked as one question (the
prompts and answer schemas of ``prompt.py``) and its answer read, over one pooled HTTP
client, status codes turned into retryable or final ProviderErrors, ``Retry-After`` read in
both of its forms. Each provider asks a question in its own wire format (``ask``)."""

from __future__ import annotations

import asyncio
import email.utils
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from activities import metrics
from localization.batch import (
    AnswerError,
    BatchAnswer,
    BatchRequest,
    ProviderError,
    ReviewRequest,
    estimate_tokens,
)
from providers.limits import Limiter
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

# A verdict is an id, a number or grade and one line, whatever the length of the texts.
REVIEW_OUTPUT_TOKENS_PER_ITEM = 64


@dataclass(frozen=True)
class Question:
    """One call: the system prompt and the user message, the answer's ``name`` (OpenAI's
    schema name, Anthropic's tool ``submit_<name>``), its ``schema`` and ``description``,
    and the ``room`` (output tokens) the answer needs."""

    system: str
    message: str
    name: str
    schema: dict[str, Any]
    description: str
    room: int


def retry_after(response: httpx.Response) -> float | None:
    """Seconds to wait, from ``retry-after-ms``, ``Retry-After: <seconds>`` or an HTTP date."""
    millis = response.headers.get("retry-after-ms")
    if millis:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - time.time())


def _message(response: httpx.Response) -> str:
    """The provider's own error message when it sent one (both APIs use error.message)."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and error.get("message"):
        return str(error["message"])[:300]
    return json.dumps(body)[:200]


class HttpProvider:
    """Base of the providers that call an HTTP API with JSON."""

    name = "http"
    remembers = True
    batching = True
    # The answer's usage fields: input tokens, output tokens.
    usage_fields = ("input_tokens", "output_tokens")

    def __init__(self, name: str, config: dict[str, Any], headers: dict[str, str]):
        self.name = name
        self.timeout = float(config["timeout_seconds"])
        # Sent as the request's temperature unless null (some reasoning models accept only
        # their default and refuse the parameter).
        self.temperature: float | None = config.get("temperature", 0)
        # Set by build_providers for a provider with requests_per_minute/tokens_per_minute.
        self.limiter: Limiter | None = None
        self._client = httpx.AsyncClient(
            base_url=str(config["base_url"]).rstrip("/"),
            headers=headers,
            timeout=httpx.Timeout(self.timeout),
            follow_redirects=False,
        )

    async def translate(self, model: str | None, request: BatchRequest) -> BatchAnswer:
        message = user_message(request)
        question = Question(
            system_prompt(request),
            message,
            "translations",
            ANSWER_SCHEMA,
            "Submit the translation of every item.",
            # The translations run longer than the source in most languages, plus the JSON
            # around them.
            room=3 * estimate_tokens(message) + 256,
        )
        return await self._answered(parse_answer, model, question)

    async def review(self, model: str | None, request: ReviewRequest) -> BatchAnswer:
        question = Question(
            review_prompt(request),
            review_message(request),
            REVIEW_NAMES[request.mode],
            REVIEW_SCHEMAS[request.mode],
            "Submit the verdict on every item.",
            room=REVIEW_OUTPUT_TOKENS_PER_ITEM * len(request.items) + 256,
        )
        return await self._answered(parse_review, model, question)

    async def _answered(
        self, parse: Callable[[Any], dict[str, Any]], model: str | None, question: Question
    ) -> BatchAnswer:
        try:
            return self._answer(parse, *await self._ask(model, question))
        except AnswerError:  # answered, but unusable: counted apart from the call itself
            metrics.provider_error(self.name, "malformed")
            raise

    async def _ask(self, model: str | None, question: Question) -> tuple[Any, dict[str, Any]]:
        if not model:
            raise ProviderError("no model named for this provider", retryable=False)
        if self.limiter is None:
            return await self.ask(model, question)
        # The reservation's estimate: the prompt, and all the room the answer may take.
        estimate = estimate_tokens(question.system + question.message) + question.room
        call_id = await self.limiter.acquire(estimate)
        try:
            raw, usage = await self.ask(model, question)
        except Exception:
            await self.limiter.answered(call_id, None)
            raise
        input_field, output_field = self.usage_fields
        used = int(usage.get(input_field) or 0) + int(usage.get(output_field) or 0)
        await self.limiter.answered(call_id, used or None)
        return raw, usage

    async def ask(self, model: str, question: Question) -> tuple[Any, dict[str, Any]]:
        """The answer to ``question`` (a JSON string or a decoded object) and the usage."""
        raise NotImplementedError

    def _answer(
        self, parse: Callable[[Any], dict[str, Any]], raw: Any, usage: dict[str, Any]
    ) -> BatchAnswer:
        input_field, output_field = self.usage_fields
        return BatchAnswer(
            texts=parse(raw),
            input_tokens=int(usage.get(input_field) or 0),
            output_tokens=int(usage.get(output_field) or 0),
        )

    async def post(self, path: str, body: dict[str, Any], model: str | None) -> dict[str, Any]:
        if self.temperature is not None:
            body = {**body, "temperature": self.temperature}
        started = time.monotonic()
        try:
            # httpx times each phase (connect, every read); this bounds the call as a whole.
            async with asyncio.timeout(self.timeout):
                response = await self._client.post(path, json=body)
        except (TimeoutError, httpx.TimeoutException):
            metrics.provider_call(self.name, time.monotonic() - started, "timeout")
            raise ProviderError(f"no answer within {self.timeout:g} s", retryable=True) from None
        except httpx.HTTPError as err:
            metrics.provider_call(self.name, time.monotonic() - started, "unreachable")
            raise ProviderError(
                f"could not reach the provider: {err}",
                retryable=True,
                summary=f"could not reach the provider ({type(err).__name__})",
            ) from None
        status = response.status_code
        error = None if status == 200 else f"http_{status}"
        metrics.provider_call(self.name, time.monotonic() - started, error)
        if status == 200:
            try:
                payload = response.json()
            except ValueError:
                raise AnswerError("the answer was not valid JSON") from None
            if not isinstance(payload, dict):
                raise AnswerError("the answer was not a JSON object")
            return payload
        detail = f"HTTP {status}: {_message(response)}"
        if status in (401, 403):
            kind = "credentials refused"
        elif status == 404:
            kind = f"unknown model {model!r}"
        elif status in (408, 409, 429) or status >= 500:
            raise ProviderError(
                detail,
                retryable=True,
                retry_after=retry_after(response),
                summary=f"HTTP {status}",
            )
        else:
            kind = "request refused"
        raise ProviderError(
            f"{kind} ({detail})", retryable=False, summary=f"{kind} (HTTP {status})"
        )

    async def close(self) -> None:
        await self._client.aclose()
