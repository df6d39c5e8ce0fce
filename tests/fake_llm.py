"""A local HTTP server that stands in for paid LLM providers in tests.

It speaks the OpenAI chat-completions wire format (``POST /v1/chat/completions``) and the
Anthropic Messages wire format (``POST /v1/messages``), answers Tolk's translation requests
deterministically (see :func:`fake_translation`) and misbehaves like real providers when
asked to through the request's ``model`` name: the part before the first ``:`` is the mode
(``drop-keys:t1``), the whole name keys the per-model state, so tests namespace their state
by suffix. Unknown modes behave as ``good``.

Modes: ``good``, ``drop-keys``, ``rename-keys``, ``malformed``, ``malformed-once``,
``break-placeholder``, ``break-placeholder-once``, ``ignore-glossary``, ``ratelimit-once``,
``slow``, ``slow-once``, ``lagging`` (good, after ``lag_seconds``), ``unauthorized``,
``unknown-model``, ``server-error``,
``echo-refusal`` (400) and ``echo-outage`` (503), whose error messages quote the request.

"First time an item text is seen" counts per full model name over the requests that got a
translation answer; "first request" counts per full model name over the requests that got
past the key, header and body checks.

Usage::

    with FakeLLM() as fake:
        client_base = fake.openai_base  # or fake.anthropic_base
        ...
        assert fake.calls(model="good:t1")[0].status == 200

Standalone (the benchmarks use it as a provider with a real provider's latency)::

    python -m tests.fake_llm --slow-seconds 2 --slow-spread 1   # prints the base URL
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import re
import sys
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

OPENAI_PATH = "/v1/chat/completions"
ANTHROPIC_PATH = "/v1/messages"
ANTHROPIC_TOOL = "submit_translations"
# What the ``malformed`` modes answer instead of the ANSWER JSON: cut off mid-object.
MALFORMED = '{"items": [{"id": "0", "te'
# Opaque placeholder tokens: U+27E6, digits, U+27E7.
TOKEN = re.compile("\u27e6\\d+\u27e7")

MODES = frozenset(
    {
        "good",
        "drop-keys",
        "rename-keys",
        "malformed",
        "malformed-once",
        "break-placeholder",
        "break-placeholder-once",
        "ignore-glossary",
        "ratelimit-once",
        "slow",
        "slow-once",
        "lagging",
        "unauthorized",
        "unknown-model",
        "server-error",
        "echo-refusal",
        "echo-outage",
    }
)

# (OpenAI error type, OpenAI error code, Anthropic error type) per status.
_ERROR_KINDS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "invalid_request_error"),
    401: ("invalid_request_error", "invalid_api_key", "authentication_error"),
    404: ("invalid_request_error", "model_not_found", "not_found_error"),
    429: ("requests", "rate_limit_exceeded", "rate_limit_error"),
    500: ("server_error", None, "api_error"),
    503: ("server_error", None, "overloaded_error"),
}


def mode_of(model: str) -> str:
    """The behaviour a model name selects: the part before the first ``:``."""
    mode = model.split(":", 1)[0]
    return mode if mode in MODES else "good"


def fake_translation(
    text: str, target_locale: str, glossary: Iterable[Mapping[str, Any]] | None = None
) -> str:
    """The deterministic "translation": every glossary term (case-insensitive, whole word)
    replaced by its translation outside the ``⟦n⟧`` tokens, then ``"<target>: "`` prefixed.

    >>> fake_translation("Open the course ⟦0⟧", "de", [{"term": "course", "translation": "Kurs"}])
    'de: Open the Kurs ⟦0⟧'
    """
    pairs = [
        (str(entry["term"]), str(entry["translation"]))
        for entry in glossary or ()
        if entry.get("term")
    ]
    if pairs:
        pairs.sort(key=lambda pair: len(pair[0]), reverse=True)  # longest term wins
        alternatives = "|".join(re.escape(term) for term, _ in pairs)
        pattern = re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)

        def replace(match: re.Match[str]) -> str:
            for term, translation in pairs:
                if re.fullmatch(re.escape(term), match.group(0), re.IGNORECASE):
                    return translation
            return match.group(0)

        # Split on the tokens (kept, at odd indices) so they are never touched.
        parts = re.split(f"({TOKEN.pattern})", text)
        text = "".join(
            part if index % 2 else pattern.sub(replace, part) for index, part in enumerate(parts)
        )
    return f"{target_locale}: {text}"


@dataclass
class Call:
    """One request the fake received (on a known path)."""

    at: float  # time.monotonic() on arrival
    api: str  # "openai" | "anthropic"
    model: str  # "" when the body had none
    status: int  # the status code answered
    items: list[dict[str, Any]]  # the USER JSON's items; empty if unparseable
    user: dict[str, Any] | None  # the parsed USER JSON
    system: str  # the instructions text
    headers: dict[str, str] = field(default_factory=dict)  # lower-cased names
    request: dict[str, Any] | None = None  # the whole parsed request body


@dataclass
class _ModelState:
    requests: int = 0
    seen: set[str] = field(default_factory=set)


@dataclass
class _Parsed:
    request: dict[str, Any] | None = None
    model: str = ""
    system: str = ""
    user: dict[str, Any] | None = None
    items: list[dict[str, Any]] = field(default_factory=list)
    problem: str | None = None  # why the body is refused with 400


@dataclass
class _Reply:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, fake: FakeLLM, host: str) -> None:
        self.fake = fake
        super().__init__((host, 0), _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "FakeLLM/1.0"

    def do_POST(self) -> None:
        self.server.fake._handle(self)

    def log_message(self, *args: object) -> None:
        pass


class FakeLLM:
    """OpenAI- and Anthropic-shaped LLM provider on ``127.0.0.1`` with a free port."""

    api_key: str = "test-key"
    slow_seconds: float = 5.0
    # ``slow`` answers after slow_seconds plus or minus up to this (uniform, seeded).
    slow_spread: float = 0.0
    # ``lagging`` answers like ``good`` after this long (under the stack's timeout).
    lag_seconds: float = 0.6

    def __init__(
        self,
        host: str = "127.0.0.1",
        api_key: str | None = None,
        slow_seconds: float | None = None,
    ) -> None:
        self.host = host
        if api_key is not None:
            self.api_key = api_key
        if slow_seconds is not None:
            self.slow_seconds = slow_seconds
        self._lock = threading.Lock()
        self._calls: list[Call] = []
        self._state: dict[str, _ModelState] = {}
        self._ids = itertools.count(1)
        self._random = random.Random(0)
        self._closing = threading.Event()
        self._started = False
        self._closed = False
        self.server = _Server(self, host)
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def openai_base(self) -> str:
        """Base URL for an OpenAI client (it appends ``/chat/completions``)."""
        return f"{self.url}/v1"

    @property
    def anthropic_base(self) -> str:
        """Base URL for an Anthropic client (it appends ``/v1/messages``)."""
        return self.url

    def __enter__(self) -> FakeLLM:
        if not self._started:
            self._started = True
            self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop serving; slow requests still sleeping are dropped without an answer."""
        if self._closed:
            return
        self._closed = True
        self._closing.set()
        if self._started:
            self.server.shutdown()
        self.server.server_close()
        if self._started:
            self.thread.join(timeout=5)

    # -- records ---------------------------------------------------------------------------

    def calls(self, model: str | None = None, api: str | None = None) -> list[Call]:
        """The requests received so far, oldest first, only those of ``model``/``api``."""
        with self._lock:
            return [
                call
                for call in self._calls
                if (model is None or call.model == model) and (api is None or call.api == api)
            ]

    def reset(self) -> None:
        """Forget the calls and every model's state (first requests, texts seen)."""
        with self._lock:
            self._calls.clear()
            self._state.clear()

    # -- serving ---------------------------------------------------------------------------

    def _handle(self, handler: _Handler) -> None:
        arrived = time.monotonic()
        path = handler.path.split("?", 1)[0]
        api = {OPENAI_PATH: "openai", ANTHROPIC_PATH: "anthropic"}.get(path)
        raw = _read_body(handler)
        if api is None:
            message = f"Unknown request URL: POST {path}"
            error = {"message": message, "type": "invalid_request_error", "code": "unknown_url"}
            _send(handler, _Reply(404, {"error": error}))
            return
        headers = {name.lower(): value for name, value in handler.headers.items()}
        parsed = _parse_openai(raw) if api == "openai" else _parse_anthropic(raw)
        reply = self._decide(api, headers, parsed, raw)
        with self._lock:
            self._calls.append(
                Call(
                    at=arrived,
                    api=api,
                    model=parsed.model,
                    status=reply.status,
                    items=parsed.items,
                    user=parsed.user,
                    system=parsed.system,
                    headers=headers,
                    request=parsed.request,
                )
            )
        if reply.delay > 0 and self._closing.wait(reply.delay):
            return  # shutting down: drop the connection unanswered
        _send(handler, reply)

    def _decide(self, api: str, headers: dict[str, str], parsed: _Parsed, raw: bytes) -> _Reply:
        if _api_key(api, headers) != self.api_key:
            return _error(api, 401, _unauthorized_message(api))
        if api == "anthropic" and "anthropic-version" not in headers:
            return _error(api, 400, "anthropic-version: header is required")
        if parsed.problem is not None:
            return _error(api, 400, parsed.problem)
        model = parsed.model
        mode = mode_of(model)
        if mode == "unauthorized":
            return _error(api, 401, _unauthorized_message(api))
        if mode == "unknown-model":
            if api == "openai":
                return _error(api, 404, f"The model `{model}` does not exist")
            return _error(api, 404, f"model: {model}")
        if mode == "server-error":
            if api == "openai":
                message = "The server had an error while processing your request. Sorry about that!"
                return _error(api, 500, message)
            return _error(api, 500, "Internal server error")

        texts = [item["text"] for item in parsed.items]
        if mode in ("echo-refusal", "echo-outage"):
            # Providers quote the request in their errors ("Invalid 'messages[1].content':
            # ..."): a refusal (400) or an outage (503) that does.
            quoted = f"could not process the input: {texts[0] if texts else ''!r}"
            return _error(api, 400 if mode == "echo-refusal" else 503, quoted)
        with self._lock:
            state = self._state.setdefault(model, _ModelState())
            first_request = state.requests == 0
            state.requests += 1
            if mode == "ratelimit-once" and first_request:
                message = (
                    "Rate limit reached for requests"
                    if api == "openai"
                    else "This request would exceed the rate limit for your organization"
                )
                return _error(api, 429, message, {"Retry-After": "1"})
            malformed = mode == "malformed" or (mode == "malformed-once" and first_request)
            fresh: set[str] = set()
            if not malformed:
                fresh = {text for text in texts if text not in state.seen}
                state.seen.update(texts)
            ident = next(self._ids)

        delay = 0.0
        if mode == "slow" or (mode == "slow-once" and first_request):
            with self._lock:
                spread = self._random.uniform(-self.slow_spread, self.slow_spread)
            delay = max(0.0, self.slow_seconds + spread)
        elif mode == "lagging":
            delay = self.lag_seconds
        input_tokens = len(raw) // 4
        answer: dict[str, Any] | None = None
        answer_text = MALFORMED
        if not malformed:
            answer = {"items": _answer_items(mode, parsed.user or {}, fresh)}
            answer_text = json.dumps(answer, ensure_ascii=False)
        output_tokens = max(1, len(answer_text) // 4)
        if api == "openai":
            body = _openai_completion(ident, model, answer_text, input_tokens, output_tokens)
        else:
            body = _anthropic_message(ident, model, answer, input_tokens, output_tokens)
        return _Reply(200, body, delay=delay)


# -- answers ---------------------------------------------------------------------------------


def _answer_items(mode: str, user: dict[str, Any], fresh: set[str]) -> list[dict[str, str]]:
    target = user["targetLocale"]
    glossary = None if mode == "ignore-glossary" else user.get("glossary")
    out: list[dict[str, str]] = []
    for position, item in enumerate(user["items"]):
        first_seen = item["text"] in fresh
        odd = position % 2 == 1
        if mode == "drop-keys" and odd and first_seen:
            continue
        ident = item["id"] + "x" if mode == "rename-keys" and odd and first_seen else item["id"]
        text = fake_translation(item["text"], target, glossary)
        if mode == "break-placeholder" or (mode == "break-placeholder-once" and first_seen):
            text = TOKEN.sub("", text, count=1)
        out.append({"id": ident, "text": text})
    return out


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
                "name": ANTHROPIC_TOOL,
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


# -- errors ----------------------------------------------------------------------------------


def _error(api: str, status: int, message: str, headers: dict[str, str] | None = None) -> _Reply:
    if api == "openai":
        kind, code, _ = _ERROR_KINDS[status]
        body: dict[str, Any] = {"error": {"message": message, "type": kind, "code": code}}
    else:
        body = {"type": "error", "error": {"type": _ERROR_KINDS[status][2], "message": message}}
    return _Reply(status, body, dict(headers or {}))


def _unauthorized_message(api: str) -> str:
    return "Incorrect API key provided." if api == "openai" else "invalid x-api-key"


def _api_key(api: str, headers: dict[str, str]) -> str | None:
    if api == "anthropic":
        return headers.get("x-api-key")
    scheme, _, token = headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


# -- requests --------------------------------------------------------------------------------


def _read_body(handler: BaseHTTPRequestHandler) -> bytes:
    """The request body (Content-Length or chunked); empty when unreadable."""
    try:
        if "chunked" in handler.headers.get("transfer-encoding", "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(handler.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while handler.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(handler.rfile.read(size))
                handler.rfile.readline()
        length = int(handler.headers.get("content-length") or 0)
        return handler.rfile.read(length) if length > 0 else b""
    except (ValueError, OSError):
        return b""


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


def _parse_body(raw: bytes, parsed: _Parsed) -> tuple[dict[str, Any], list[Any]] | None:
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


def _parse_user(messages: list[Any], parsed: _Parsed) -> None:
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


def _parse_openai(raw: bytes) -> _Parsed:
    parsed = _Parsed()
    found = _parse_body(raw, parsed)
    if found is None:
        return parsed
    _, messages = found
    parts = [
        _text(m.get("content")) or "" for m in messages if m.get("role") in ("system", "developer")
    ]
    parsed.system = "\n".join(parts)
    _parse_user(messages, parsed)
    return parsed


def _parse_anthropic(raw: bytes) -> _Parsed:
    parsed = _Parsed()
    found = _parse_body(raw, parsed)
    if found is None:
        return parsed
    body, messages = found
    system = body.get("system")
    parsed.system = _text(system) or ""
    if system is not None and _text(system) is None:
        parsed.problem = parsed.problem or "system: must be a string or a list of text blocks."
    max_tokens = body.get("max_tokens")
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        parsed.problem = parsed.problem or "max_tokens: Field required (a positive integer)."
    _parse_user(messages, parsed)
    return parsed


def _send(handler: BaseHTTPRequestHandler, reply: _Reply) -> None:
    data = json.dumps(reply.body, ensure_ascii=False).encode("utf-8")
    try:
        handler.send_response(reply.status)
        handler.send_header("Content-Type", "application/json")
        for name, value in reply.headers.items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)
    except OSError:
        pass  # the client gave up (e.g. its timeout ran out during a slow answer)


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve the LLM stand-in until stdin closes.")
    parser.add_argument("--slow-seconds", type=float, default=FakeLLM.slow_seconds)
    parser.add_argument("--slow-spread", type=float, default=0.0)
    args = parser.parse_args()
    with FakeLLM(slow_seconds=args.slow_seconds) as fake:
        fake.slow_spread = args.slow_spread
        print(fake.openai_base, flush=True)
        sys.stdin.read()  # the parent closes our stdin (or exits) to stop us


if __name__ == "__main__":
    main()
