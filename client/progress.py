"""Live progress at the terminal: one bar per locale (per file x locale when a run has several
files) with counts, warnings and an ETA on a TTY; one plain line per finished job in CI
(``CI=true``) or without a TTY; nothing until the end with ``--json``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

TERMINAL = ("completed", "completed_with_warnings", "failed", "cancelled")
SUCCEEDED = ("completed", "completed_with_warnings")


@dataclass
class Row:
    label: str
    jobs: set[str] = field(default_factory=set)
    done: set[str] = field(default_factory=set)
    failed: set[str] = field(default_factory=set)
    warnings: int = 0


class Display(Protocol):
    def begin(self, rows: dict[str, Row], job_rows: dict[str, str]) -> None: ...
    def job_ended(self, job_id: str, status: str, warnings: int, detail: str) -> None: ...
    def note(self, message: str) -> None: ...
    def end(self) -> None: ...


class _Counts:
    rows: dict[str, Row]
    job_rows: dict[str, str]

    def _record(self, job_id: str, status: str, warnings: int) -> Row | None:
        row = self.rows.get(self.job_rows.get(job_id, ""))
        if row is None or job_id in row.done:
            return None
        row.done.add(job_id)
        if status not in SUCCEEDED:
            row.failed.add(job_id)
        row.warnings += warnings
        return row

    def totals(self) -> tuple[int, int]:
        return (
            sum(len(r.done) for r in self.rows.values()),
            sum(len(r.jobs) for r in self.rows.values()),
        )


class PlainDisplay(_Counts):
    """One line per finished job: ``[3/14] de  locales/en.json  completed (2 warnings)``."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def begin(self, rows: dict[str, Row], job_rows: dict[str, str]) -> None:
        self.rows, self.job_rows = rows, job_rows
        done, total = self.totals()
        self.console.print(f"{total} jobs, {done} finished", highlight=False)

    def job_ended(self, job_id: str, status: str, warnings: int, detail: str) -> None:
        row = self._record(job_id, status, warnings)
        if row is None:
            return
        done, total = self.totals()
        extra = f" ({warnings} warning{'s' * (warnings != 1)})" if warnings else ""
        extra += f": {detail}" if detail else ""
        self.console.print(f"[{done}/{total}] {row.label}  {status}{extra}", highlight=False)

    def note(self, message: str) -> None:
        self.console.print(message, highlight=False)

    def end(self) -> None:
        pass


class BarDisplay(_Counts):
    """Bars on a terminal: one per row and one for the whole run, with its ETA."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[state]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
        )
        self.tasks: dict[str, TaskID] = {}

    def begin(self, rows: dict[str, Row], job_rows: dict[str, str]) -> None:
        self.rows, self.job_rows = rows, job_rows
        done, total = self.totals()
        self.overall = self.progress.add_task("all", total=total, completed=done, state="")
        for key, row in rows.items():
            self.tasks[key] = self.progress.add_task(
                row.label, total=len(row.jobs), completed=len(row.done), state=""
            )
        self.progress.start()

    def job_ended(self, job_id: str, status: str, warnings: int, detail: str) -> None:
        row = self._record(job_id, status, warnings)
        if row is None:
            return
        state = []
        if row.warnings:
            state.append(f"[yellow]{row.warnings} warning{'s' * (row.warnings != 1)}[/]")
        if row.failed:
            state.append(f"[red]{len(row.failed)} failed[/]")
        task = self.tasks[self.job_rows[job_id]]
        self.progress.update(task, completed=len(row.done), state=" ".join(state))
        done, _ = self.totals()
        self.progress.update(self.overall, completed=done)
        if detail:
            self.progress.console.print(f"{row.label}: {detail}", highlight=False)

    def note(self, message: str) -> None:
        self.progress.console.print(message, highlight=False)

    def end(self) -> None:
        self.progress.stop()


class QuietDisplay(_Counts):
    """``--json``: the command prints one document at the end, nothing before."""

    def begin(self, rows: dict[str, Row], job_rows: dict[str, str]) -> None:
        self.rows, self.job_rows = rows, job_rows

    def job_ended(self, job_id: str, status: str, warnings: int, detail: str) -> None:
        self._record(job_id, status, warnings)

    def note(self, message: str) -> None:
        pass

    def end(self) -> None:
        pass


def make_display(json_mode: bool, plain: bool, console: Console) -> Display:
    """The display for the terminal at hand: ``plain`` in CI or without a TTY."""
    if json_mode:
        return QuietDisplay()
    if plain:
        return PlainDisplay(console)
    return BarDisplay(console)
