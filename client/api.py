"""The client's view of Tolk's HTTP API (API.md): a few calls, retried while the server is
away, and the server's refusals as ``ApiError`` with its ``_tag`` and message."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import websockets
from httpx_sse import aconnect_sse

# Waits between attempts while the server cannot be reached, is busy or limits the rate.
RETRY_WAITS = (0.5, 1, 2, 4, 8, 15, 30)
RETRIED = frozenset({429, 502, 503, 504})
TIMEOUT = httpx.Timeout(30.0, connect=10.0)


class ApiError(Exception):
    """The server refused: its status, ``_tag`` and message."""

    def __init__(self, status: int, tag: str, message: str) -> None:
        super().__init__(f"{status} {tag}: {message}")
        self.status, self.tag, self.message = status, tag, message


class Unreachable(Exception):
    """The server could not be reached after every retry."""


class Api:
    def __init__(self, base_url: str, key: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.key = key
        self._http = httpx.AsyncClient(
            base_url=self.base_url, headers={"X-API-Key": key}, timeout=TIMEOUT
        )

    async def __aenter__(self) -> Api:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._http.aclose()

    async def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """One API call, retried on connection errors, 429 and 502/503/504, waiting at least
        what ``Retry-After`` says (every call the client makes is safe to repeat: creations
        carry an idempotency key)."""
        last: Exception | None = None
        for wait in (*RETRY_WAITS, None):
            try:
                response = await self._http.request(method, path, **kwargs)
            except httpx.TransportError as err:
                last = err
            else:
                if response.status_code not in RETRIED:
                    return _answer(response)
                last = _error(response)
                retry_after = response.headers.get("Retry-After", "")
                if wait is not None and retry_after.isdigit():
                    wait = max(wait, min(float(retry_after), 60.0))
            if wait is None:
                break
            await asyncio.sleep(wait)
        if isinstance(last, ApiError):
            raise last
        raise Unreachable(f"cannot reach {self.base_url}: {type(last).__name__}")

    async def create_group(self, body: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = await self.call("POST", "/jobs/localization", json=body)
        return result

    async def group(self, group_id: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.call("GET", f"/jobs/localization/groups/{group_id}")
        return result

    async def job(self, job_id: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.call("GET", f"/jobs/localization/{job_id}")
        return result

    async def events(self, group_id: str, transport: str) -> AsyncIterator[dict[str, Any]]:
        """The group's progress messages (API.md "Live progress"), from ``snapshot`` to
        ``group.completed``, over the WebSocket or Server-Sent Events. A dropped connection
        ends the iteration early; callers connect again (a new ``snapshot`` tells where
        things stand)."""
        path = f"/jobs/localization/groups/{group_id}"
        if transport == "ws":
            url = self.base_url.replace("http", "ws", 1) + path + "/ws"
            async with websockets.connect(
                url, additional_headers={"X-API-Key": self.key}, open_timeout=10
            ) as ws:
                async for frame in ws:
                    yield json.loads(frame)
            return
        async with aconnect_sse(self._http, "GET", path + "/events", timeout=None) as source:
            if source.response.status_code != 200:
                await source.response.aread()
                raise _error(source.response)
            async for event in source.aiter_sse():
                if event.data:
                    yield json.loads(event.data)


def _error(response: httpx.Response) -> ApiError:
    try:
        body = response.json()
        return ApiError(response.status_code, body.get("_tag", "Error"), body.get("message", ""))
    except ValueError:
        return ApiError(response.status_code, "Error", response.reason_phrase)


def _answer(response: httpx.Response) -> Any:
    if response.status_code >= 400:
        raise _error(response)
    return response.json()
