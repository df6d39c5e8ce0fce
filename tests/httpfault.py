r"""An HTTP proxy on loopback that answers some requests itself, like a flaky load balancer:
``rule(r"GET /jobs/localization/ljb_\w+", 500, each=True)`` answers the first request for
each job with a 500 and closes the connection (``times`` such answers per distinct match with
``each``, in all without); everything else passes through to the API untouched, WebSocket
upgrades included.

Only our own tests use it, with our own client: requests are small and arrive whole, so each
read from the client that starts a request is matched against the rules.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
from dataclasses import dataclass, field


@dataclass
class Rule:
    pattern: re.Pattern[bytes]
    status: int
    times: int
    each: bool  # count per distinct matched text (per job id), not in all
    headers: dict[str, str]
    seen: dict[bytes, int] = field(default_factory=dict)
    hits: int = 0

    def take(self, head: bytes) -> bool:
        match = self.pattern.search(head)
        if match is None:
            return False
        slot = match.group(0) if self.each else b""
        if self.seen.get(slot, 0) >= self.times:
            return False
        self.seen[slot] = self.seen.get(slot, 0) + 1
        self.hits += 1
        return True


REASONS = {403: "Forbidden", 429: "Too Many Requests", 500: "Internal Server Error"}


class HttpFaultProxy:
    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self.rules: list[Rule] = []
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="http-fault")

    def rule(
        self,
        pattern: str,
        status: int,
        *,
        times: int = 1,
        each: bool = False,
        headers: dict[str, str] | None = None,
    ) -> Rule:
        made = Rule(re.compile(pattern.encode()), status, times, each, headers or {})
        self.rules.append(made)
        return made

    def __enter__(self) -> HttpFaultProxy:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._client, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()
        server.close()

    def _answer(self, rule: Rule) -> bytes:
        body = json.dumps({"_tag": "InjectedFault", "message": "injected by the test"}).encode()
        head = [f"HTTP/1.1 {rule.status} {REASONS.get(rule.status, 'Error')}"]
        head += [f"{name}: {value}" for name, value in rule.headers.items()]
        head += [
            "Content-Type: application/json",
            f"Content-Length: {len(body)}",
            "Connection: close",
        ]
        return ("\r\n".join(head) + "\r\n\r\n").encode() + body

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream: asyncio.StreamWriter | None = None
        pipe: asyncio.Task[None] | None = None
        try:
            while chunk := await reader.read(65536):
                rule = next((r for r in self.rules if r.take(chunk[:8192])), None)
                if rule is not None:
                    writer.write(self._answer(rule))
                    await writer.drain()
                    return
                if upstream is None:
                    up_reader, upstream = await asyncio.open_connection(
                        "127.0.0.1", self.target_port
                    )
                    pipe = asyncio.ensure_future(self._pipe(up_reader, writer))
                upstream.write(chunk)
                await upstream.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            if upstream is not None:
                upstream.close()
            if pipe is not None:
                pipe.cancel()
            writer.close()

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()
