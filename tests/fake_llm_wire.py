"""The two wire formats the LLM stand-in speaks: OpenAI chat completions
(``POST /v1/chat/completions``) and Anthropic Messages (``POST /v1/messages``).

A request is read into one shape (:class:`Parsed`), and answers and errors are written the
way each provider writes them, in each provider's own words: the modes
(``tests/fake_llm_modes.py``) decide what happens without caring which API was called.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

OPENAI_PATH = "/v1/chat/completions"
ANTHROPIC_PATH = "/v1/messages"
API_OF_PATH = {OPENAI_PATH: "openai", ANTHROPIC_PATH: "anthropic"}
ANTHROPIC_TOOL = "submit_translations"
# What the ``malformed`` modes answer instead of the ANSWER JSON: cut off mid-object.
MALFORMED = '{"items": [{"id": "0", "te'

# (OpenAI error type, OpenAI error code, Anthropic error type) per status.
_ERROR_KINDS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "invalid_request_error"),
    401: ("invalid_request_error", "invalid_api_key", "authentication_error"),
    404: ("invalid_request_error", "model_not_found", "not_found_error"),
    429: ("requests", "rate_limit_exceeded", "rate_limit_error"),
    500: ("server_error", None, "api_error"),
    503: ("server_error", None, "overloaded_error"),
}

# (OpenAI, Anthropic) error messages where the two providers word them differently.
_WORDS: dict[str, tuple[str, str]] = {
    "unauthorized": ("Incorrect API key provided.", "invalid x-api-key"),
    "unknown-model": ("The model `{model}` does not exist", "model: {model}"),
    "server-error": (
        "The server had an error while processing your request. Sorry about that!",
        "Internal server error",
    ),
    "ratelimit": (
        "Rate limit reached for requests",
        "This request would exceed the rate limit for your organization",
    ),
}


@dataclass
class Parsed:
    """What every mode needs of a request, whichever API it came in."""

    request: dict[str, Any] | None = None
    model: str = ""
    system: str = ""
    user: dict[str, Any] | None = None
    items: list[dict[str, Any]] = field(default_factory=list)
    problem: str | None = None  # why the body is refused with 400


@dataclass
class Reply:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


# -- answers and errors ----------------------------------------------------------------------


def said(api: str, what: str, model: str = "") -> str:
    """The provider's own message for ``what`` (a key of ``_WORDS``)."""
    openai, anthropic = _WORDS[what]
    return (openai if api == "openai" else anthropic).format(model=model)


def error(api: str, status: int, message: str, headers: dict[str, str] | None = None) -> Reply:
    if api == "openai":
        kind, code, _ = _ERROR_KINDS[status]
        body: dict[str, Any] = {"error": {"message": message, "type": kind, "code": code}}
    else:
        body = {"type": "error", "error": {"type": _ERROR_KINDS[status][2], "message": message}}
    return Reply(status, body, dict(headers or {}))


def unknown_url(path: str) -> Reply:
    message = f"Unknown request URL: POST {path}"
    return Reply(
        404, {"error": {"message": message, "type": "invalid_request_error", "code": "unknown_url"}}
    )


def refusal(api: str, headers: dict[str, str], parsed: Parsed, api_key: str) -> Reply | None:
    """What a provider answers before it looks at the model, in this order: a wrong key
    (401), Anthropic without its version header (400), a body that is not a request (400).
    None when the request gets past all three."""
    if _api_key(api, headers) != api_key:
        return error(api, 401, said(api, "unauthorized"))
    if api == "anthropic" and "anthropic-version" not in headers:
        return error(api, 400, "anthropic-version: header is required")
    if parsed.problem is not None:
        return error(api, 400, parsed.problem)
    return None


def completion(
    api: str,
    ident: int,
    model: str,
    answer: dict[str, Any] | None,
    input_tokens: int,
    tool: str = ANTHROPIC_TOOL,
) -> dict[str, Any]:
    """The body of a 200 carrying ``answer`` (the ANSWER JSON), or, ``answer`` None, the
    malformed text; usage counts about four characters a token. ``tool``: the Anthropic
    tool the request forced."""
    text = MALFORMED if answer is None else json.dumps(answer, ensure_ascii=False)
    output_tokens = max(1, len(text) // 4)
    if api == "openai":
        return _openai_completion(ident, model, text, input_tokens, output_tokens)
    return _anthropic_message(ident, model, answer, input_tokens, output_tokens, tool)


def _openai_completion(
    ident: int, model: str, content: str, input_tokens: int, output_tokens: int
) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-fake{ident:08d}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": input_tokens,
            "completion_tokens": output_tokens,
            "total_tokens": input_tokens + output_tokens,
        },
    }


def _anthropic_message(
    ident: int,
    model: str,
    answer: dict[str, Any] | None,
    input_tokens: int,
    output_tokens: int,
    tool: str,
) -> dict[str, Any]:
    """A tool_use message carrying ``answer``, or (``answer`` None) the malformed text."""
    if answer is None:
        content: list[dict[str, Any]] = [{"type": "text", "text": MALFORMED}]
        stop_reason = "end_turn"
    else:
        content = [
            {
                "type": "tool_use",
                "id": f"toolu_fake{ident:08d}",
                "name": tool,
                "input": answer,
            }
        ]
        stop_reason = "tool_use"
    return {
        "id": f"msg_fake{ident:08d}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens},
    }


def _api_key(api: str, headers: dict[str, str]) -> str | None:
    if api == "anthropic":
        return headers.get("x-api-key")
    scheme, _, token = headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


# -- requests --------------------------------------------------------------------------------


def parse(api: str, raw: bytes) -> Parsed:
    """The request body as either API sends it; ``problem`` says why it is refused."""
    parsed = Parsed()
    found = _parse_body(raw, parsed)
    if found is None:
        return parsed
    body, messages = found
    if api == "openai":
        parts = [
            _text(m.get("content")) or ""
            for m in messages
            if m.get("role") in ("system", "developer")
        ]
        parsed.system = "\n".join(parts)
    else:
        system = body.get("system")
        parsed.system = _text(system) or ""
        if system is not None and _text(system) is None:
            parsed.problem = parsed.problem or "system: must be a string or a list of text blocks."
        max_tokens = body.get("max_tokens")
        if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
            parsed.problem = parsed.problem or "max_tokens: Field required (a positive integer)."
    _parse_user(messages, parsed)
    return parsed


def _text(content: object) -> str | None:
    """A message content as text: a string, or a list of ``{"type": "text"}`` blocks."""
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(
        isinstance(block, dict)
        and block.get("type") == "text"
        and isinstance(block.get("text"), str)
        for block in content
    ):
        return "".join(block["text"] for block in content)
    return None


def _parse_body(raw: bytes, parsed: Parsed) -> tuple[dict[str, Any], list[Any]] | None:
    """The body and its ``messages`` (after noting the model), or None with ``problem``
    set."""
    try:
        body = json.loads(raw)
    except ValueError:
        parsed.problem = "The request body is not valid JSON."
        return None
    if not isinstance(body, dict):
        parsed.problem = "The request body must be a JSON object."
        return None
    parsed.request = body
    model = body.get("model")
    if isinstance(model, str):
        parsed.model = model
    messages = body.get("messages")
    if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
        parsed.problem = "messages: Field required (a list of message objects)."
        return None
    if not parsed.model:
        parsed.problem = "model: Field required (a non-empty string)."
    return body, messages


def _parse_user(messages: list[Any], parsed: Parsed) -> None:
    """Fill ``user``/``items`` from the last user message; set ``problem`` when it is not
    Tolk's USER JSON."""
    users = [m for m in messages if m.get("role") == "user"]
    if not users:
        parsed.problem = parsed.problem or "messages: a user message is required."
        return
    text = _text(users[-1].get("content"))
    if text is None:
        parsed.problem = parsed.problem or "messages: the user message content must be text."
        return
    try:
        user = json.loads(text)
    except ValueError:
        parsed.problem = parsed.problem or "The user message is not JSON."
        return
    if not isinstance(user, dict):
        parsed.problem = parsed.problem or "The user message must be a JSON object."
        return
    parsed.user = user
    items = user.get("items")
    if isinstance(items, list) and all(isinstance(item, dict) for item in items):
        parsed.items = items
    problem = _user_problem(user)
    if problem:
        parsed.problem = parsed.problem or problem


def _user_problem(user: dict[str, Any]) -> str | None:
    for name in ("sourceLocale", "targetLocale"):
        if not isinstance(user.get(name), str) or not user[name]:
            return f"user JSON: {name} must be a non-empty string."
    if user.get("context") is not None and not isinstance(user["context"], str):
        return "user JSON: context must be a string or null."
    glossary = user.get("glossary")
    if glossary is not None and not (
        isinstance(glossary, list)
        and all(
            isinstance(entry, dict)
            and isinstance(entry.get("term"), str)
            and isinstance(entry.get("translation"), str)
            for entry in glossary
        )
    ):
        return "user JSON: glossary must be a list of {term, translation} strings."
    items = user.get("items")
    if not isinstance(items, list):
        return "user JSON: items must be a list."
    if "task" in user:
        return _review_problem(user["task"], items)
    for item in items:
        if not (
            isinstance(item, dict)
            and isinstance(item.get("id"), str)
            and isinstance(item.get("text"), str)
        ):
            return "user JSON: every item needs a string id and text."
        hints = item.get("hints")
        if hints is not None and not (
            isinstance(hints, list) and all(isinstance(h, str) for h in hints)
        ):
            return "user JSON: hints must be a list of strings."
    return None


def _review_problem(task: object, items: list[Any]) -> str | None:
    """What is wrong with the items of a review request (``task`` ``score`` or ``drift``):
    each needs a string id, source and translation, and for ``drift`` a backTranslation."""
    if task not in ("score", "drift"):
        return "user JSON: task must be score or drift."
    needed = ("id", "source", "translation") + (("backTranslation",) if task == "drift" else ())
    for item in items:
        if not (isinstance(item, dict) and all(isinstance(item.get(k), str) for k in needed)):
            return f"user JSON: every {task} item needs string " + ", ".join(needed) + "."
    return None
