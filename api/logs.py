"""Logging for the API process: keep read tokens out of logs, and drop one false alarm."""

from __future__ import annotations

import logging
import re

import telemetry

TOKEN = re.compile(r"(token=)[^&\s\"']+")


class ApiLogFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        # uvicorn's websockets-sansio protocol logs this after a *successful* denial
        # response (our 401/404 on a refused upgrade): the client got its answer.
        if message == "ASGI callable returned without completing handshake.":
            return False
        if "token=" in message:  # WebSocket/SSE URLs carry group read tokens
            record.msg, record.args = TOKEN.sub(r"\1[redacted]", message), None
        return True


def configure(level: str, log_format: str | None = None) -> None:
    """Logging for the API and uvicorn (text, or JSON lines with the request's ids: the
    ``log.format`` setting), every record through the filter."""
    if log_format is None:
        from settings import get_settings

        log_format = get_settings().log_format
    telemetry.configure_logging(log_format, level, [ApiLogFilter()])
