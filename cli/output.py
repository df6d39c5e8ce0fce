"""How every ``tolk`` command writes: the conventions the operator and file commands share.

- ``--json`` (``json_mode``): one JSON document on stdout and nothing else there, stable for
  scripts.
- Plain mode (``is_plain()``: stdout is no terminal, or ``CI=true``): plain lines, no colour,
  no tables or progress bars, the same from one run to the next. Rich output only at a
  terminal (``console()``).
- Errors: ``fail()`` writes one line to stderr and exits: 2 for usage and configuration
  errors (the default), 1 when the command could not do its work.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated, NoReturn, TextIO

import typer
from rich.console import Console

json_mode = Annotated[bool, typer.Option("--json", help="print one JSON document")]
"""The ``--json`` flag of a command: ``as_json: output.json_mode = False``."""


def is_plain(stream: TextIO | None = None) -> bool:
    """No terminal behind ``stream`` (stdout by default), or ``CI=true``: write plain lines."""
    stream = sys.stdout if stream is None else stream
    if os.environ.get("CI", "").strip().lower() in {"true", "1"}:
        return True
    try:
        return not stream.isatty()
    except (AttributeError, ValueError):  # replaced or closed stream
        return True


def console(*, stderr: bool = False) -> Console:
    """A rich console on stdout (or stderr) that writes plain text in plain mode."""
    if is_plain(sys.stderr if stderr else sys.stdout):
        return Console(
            stderr=stderr,
            force_terminal=False,
            color_system=None,
            highlight=False,
            emoji=False,
            soft_wrap=True,
        )
    return Console(stderr=stderr)


def one_line(message: str) -> str:
    """``message`` on one line: its lines joined with "; "."""
    return "; ".join(line.strip() for line in str(message).splitlines() if line.strip())


def fail(message: str, code: int = 2) -> NoReturn:
    """Write ``message`` as one line to stderr and exit with ``code``."""
    print(one_line(message), file=sys.stderr, flush=True)
    raise SystemExit(code)
