"""Per HTTP request: the ids it is about on its log lines (and a DEBUG line of its own),
and a server span.

Installed only when tracing is on or log lines are JSON (``api/app.py``). The span is named
after the route's template (``POST /jobs/localization``), continues a caller's
``traceparent``, and is current while the handler runs, so the Temporal client's
``StartWorkflow`` span of the group it creates is its child."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import telemetry

# Progress streams are left alone: the pollers and the change detector they start live
# on after them, for every subscriber, and would inherit the stream's span and ids.
STREAMS = frozenset(
    {"/jobs/localization/groups/{groupId}/events", "/jobs/localization/groups/{groupId}/ws"}
)
# Probes and scrapes would be a trace each.
UNTRACED = frozenset({"/healthz", "/readyz", "/metrics"})
log = logging.getLogger("tolk.api.requests")

# Path parameters that name what a request is about, by their log field.
ID_PARAMS = {"groupId": "group_id", "jobId": "job_id"}


class RequestTelemetry:
    def __init__(self, app: ASGIApp, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self.routes = routes

    def _route(self, scope: Scope) -> tuple[str | None, dict[str, Any]]:
        """The matching route's path template and path parameters (Starlette routes
        again afterwards; a few regex matches per request)."""
        for route in self.routes:
            match, child = route.matches(scope)
            if match == Match.FULL:
                return getattr(route, "path", None), child.get("path_params", {})
        return None, {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        template, params = self._route(scope) if scope["type"] == "http" else (None, {})
        if scope["type"] != "http" or template in STREAMS:
            await self.app(scope, receive, send)
            return
        ids = {field: str(params[name]) for name, field in ID_PARAMS.items() if name in params}
        method, started = scope["method"], time.monotonic()
        status: list[int] = []

        async def send_status(message: Message) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
            await send(message)

        with telemetry.request_ids(ids):
            try:
                spans = telemetry.tracer()
                if spans is None or template in UNTRACED:
                    await self.app(scope, receive, send_status)
                else:
                    await self._traced(spans, scope, receive, send_status, template, ids)
            finally:
                # The request's line: by route template (a path may carry a read token),
                # with the ids the request named or turned out to be about.
                log.debug(
                    "%s %s: %s in %.1f ms",
                    method,
                    template or "(no route)",
                    status[0] if status else "no response",
                    (time.monotonic() - started) * 1000,
                )

    async def _traced(
        self,
        spans: Tracer,
        scope: Scope,
        receive: Receive,
        send: Send,
        template: str | None,
        ids: dict[str, str],
    ) -> None:
        carrier = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        method = scope["method"]
        attributes: dict[str, Any] = {"http.request.method": method}
        if template is not None:
            attributes["http.route"] = template
        attributes |= {f"tolk.{field}": value for field, value in ids.items()}
        with spans.start_as_current_span(
            f"{method} {template}" if template else method,
            context=telemetry.W3C.extract(carrier),
            kind=SpanKind.SERVER,
            attributes=attributes,
        ) as span:

            async def send_status(message: Message) -> None:
                if message["type"] == "http.response.start":
                    span.set_attribute("http.response.status_code", message["status"])
                    if message["status"] >= 500:
                        span.set_status(Status(StatusCode.ERROR))
                await send(message)

            await self.app(scope, receive, send_status)
