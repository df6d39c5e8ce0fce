"""How a chaos run writes its evidence: values shortened and numbers formatted the same way
in every finding, the figures and the report, and the components' own log lines quoted.
Shared by the faults (an unexpected exit is recorded with its log's tail), the checks and
the diagnosis."""

from __future__ import annotations

import json
from typing import Any

from bench.chaos_config import COMPONENTS
from stack import Stack


def short(value: Any, limit: int = 300) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, str) else value
    return text if len(text) <= limit else text[:limit] + "..."


def fmt(value: Any) -> str:
    if isinstance(value, float):
        return "n/a" if value != value else f"{value:.1f}"
    if isinstance(value, tuple):
        return " / ".join(fmt(x) for x in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}: {n}" for k, n in value.items())
    return "n/a" if value is None else str(value)


def stream_summary(events: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, Any]]:
    """A group's SSE replay as (event, its job id or error) pairs."""
    return [(kind, data.get("jobId") or data.get("error")) for kind, data in events]


def log_tail(stack: Stack, name: str, lines: int = 15) -> str:
    if stack.log_dir is None:
        return ""
    path = stack.log_dir / f"{name}.log"
    if not path.exists():
        return f"    ({path.name}: no log)"
    tail = path.read_text(errors="replace").splitlines()[-lines:]
    return "\n".join(_quoted(name, line) for line in tail)


def log_mentions(stack: Stack, needles: set[str], limit: int = 12) -> list[str]:
    """The first ``limit`` lines of the components' logs that name any of ``needles``."""
    found: list[str] = []
    if stack.log_dir is None or not needles:
        return found
    for name in COMPONENTS:
        path = stack.log_dir / f"{name}.log"
        if not path.exists():
            continue
        for line in path.read_text(errors="replace").splitlines():
            if any(needle in line for needle in needles):
                found.append(_quoted(name, line))
                if len(found) >= limit:
                    return found
    return found


def _quoted(name: str, line: str) -> str:
    return f"    {name}.log: {line[:400]}"
