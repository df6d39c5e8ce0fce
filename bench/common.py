"""What the benchmark scripts share: their own stack on free ports, percentiles, and the
BENCHMARKS.md section each script owns."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from stack import Stack, free_port

HEADER = "# Benchmarks\n\nFigures measured by `make bench` (each section names its command).\n"


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


def machine() -> str:
    temporal = subprocess.run(
        [str(Path(sys.executable).parent / "temporal"), "--version"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    return f"{os.cpu_count()} cores, Python {platform.python_version()}, {temporal}"


def own_stack(root: Path, **overrides: str) -> tuple[Stack, str]:
    """A fresh stack in ``root`` on free ports, and an API key for a new organization."""
    stack = Stack(
        {
            "TOLK_TEMPORAL_PORT": str(free_port()),
            "TOLK_API_PORT": str(free_port()),
            "TOLK_TEMPORAL_DB_FILE": str(root / "temporal.db"),
            "TOLK_DATABASE_URL": f"sqlite+aiosqlite:///{root / 'tolk.db'}",
            "TOLK_VAR_DIR": str(root / "var"),
            "TOLK_LOG_LEVEL": "warning",
            # A benchmark is one organization's load: the default quotas would cut it short.
            "TOLK_QUOTAS_REQUESTS_PER_MINUTE": "1000000",
            "TOLK_QUOTAS_ACTIVE_GROUPS": "1000000",
            **overrides,
        },
        log_dir=root / "logs",
        headless=True,
    )
    stack.start()
    run = [sys.executable, "-m", "cli.main"]
    org = json.loads(
        subprocess.check_output([*run, "orgs", "create", "bench", "--json"], env=stack.env)
    )["id"]
    created = subprocess.check_output(
        [*run, "keys", "create", "--org", org, "--json"], env=stack.env
    )
    return stack, json.loads(created)["key"]


def write_section(path: Path, name: str, section: str) -> None:
    """Replace (or append) the section between ``<!-- bench:NAME -->`` markers."""
    start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    text = path.read_text() if path.exists() else HEADER
    block = f"{start}\n{section.strip()}\n{end}"
    if start in text and end in text:
        head, rest = text.split(start, 1)
        text = head + block + rest.split(end, 1)[1]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text)


@contextlib.contextmanager
def temporary_stack() -> Iterator[tuple[Stack, str, Path]]:
    """``own_stack`` in a temp dir of its own: the stack, its API key and the dir; the
    stack is stopped and the dir removed however the benchmark ends."""
    with tempfile.TemporaryDirectory(prefix="tolk-bench-") as tmp:
        root = Path(tmp)
        stack, key = own_stack(root)
        try:
            yield stack, key, root
        finally:
            stack.stop()
