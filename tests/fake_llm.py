"""A local HTTP server that stands in for paid LLM providers in tests.

It speaks the OpenAI chat-completions wire format (``POST /v1/chat/completions``) and the
Anthropic Messages wire format (``POST /v1/messages``), both in ``tests/fake_llm_wire.py``,
answers Tolk's translation requests deterministically and misbehaves like real providers
when asked to through the request's ``model`` name: the part before the first ``:`` is the
mode (``drop-keys:t1``), the whole name keys the per-model state, so tests namespace their
state by suffix. The modes, and what counts as "first", are in ``tests/fake_llm_modes.py``.

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
import json
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.fake_llm_modes import Modes
from tests.fake_llm_wire import API_OF_PATH, Reply, parse, refusal, unknown_url


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
        self.modes = Modes()
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
        self.modes.reset()

    # -- serving ---------------------------------------------------------------------------

    def _handle(self, handler: _Handler) -> None:
        arrived = time.monotonic()
        path = handler.path.split("?", 1)[0]
        api = API_OF_PATH.get(path)
        raw = _read_body(handler)
        if api is None:
            _send(handler, unknown_url(path))
            return
        headers = {name.lower(): value for name, value in handler.headers.items()}
        parsed = parse(api, raw)
        reply = refusal(api, headers, parsed, self.api_key)
        if reply is None:
            reply = self.modes.reply(
                api,
                parsed,
                len(raw),
                slow_seconds=self.slow_seconds,
                slow_spread=self.slow_spread,
                lag_seconds=self.lag_seconds,
            )
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


# -- HTTP ------------------------------------------------------------------------------------


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


def _send(handler: BaseHTTPRequestHandler, reply: Reply) -> None:
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
    parser = argparse.ArgumentParser(
        description="Serve the LLM stand-in until stdin closes; then print, as one JSON line,"
        " the arrival times (monotonic seconds) of the requests it received."
    )
    parser.add_argument("--slow-seconds", type=float, default=FakeLLM.slow_seconds)
    parser.add_argument("--slow-spread", type=float, default=0.0)
    args = parser.parse_args()
    with FakeLLM(slow_seconds=args.slow_seconds) as fake:
        fake.slow_spread = args.slow_spread
        print(fake.openai_base, flush=True)
        sys.stdin.read()  # the parent closes our stdin (or exits) to stop us
        print(json.dumps([call.at for call in fake.calls()]), flush=True)


if __name__ == "__main__":
    main()
