"""The file client's commands: init, push, watch, pull, status, jobs (CLIENT.md)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the file client's commands to the ``tolk`` application."""
