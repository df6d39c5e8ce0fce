"""Logging for the API process: keep read tokens out of logs, and drop one false alarm."""

from __future__ import annotations

import logging
import re

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


def configure(level: str) -> None:
    """Plain logging for the API and uvicorn, every record through the filter."""
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s", force=True
    )
    for handler in logging.getLogger().handlers:
        handler.addFilter(ApiLogFilter())
