"""The file client's commands (CLIENT.md): ``tolk init``, ``push [--watch]``, ``watch``,
``pull``, ``status`` and ``jobs list|get|cancel|retry``.

They talk only to the HTTP API (``TOLK_API_URL`` or ``api:`` in ``tolk.yaml``, the key from
``TOLK_API_KEY``). Exit codes: 0 done, 1 some jobs failed, are still running or the server
refused, 2 a usage or configuration error (one line, never a traceback).
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.table import Table

from cli import output
from client.api import Api, ApiError, Unreachable
from client.config import (
    CONFIG_FILE,
    LOCK_FILE,
    Config,
    ConfigError,
    check_config,
    load_config,
)
from client.follow import Lander, pull, watch
from client.init import detect, ignore_run_files, render_config
from client.lock import Lock, LockError
from client.progress import Display, make_display
from client.push import push, status
from client.runs import Run, RunError, RunGroup, all_runs, latest_run, load_run
from client.sync import FileProblem
from localization.language import normalize_locale

T = TypeVar("T")

ProjectOption = Annotated[
    Path, typer.Option("--project", "-C", help="the project folder (holding tolk.yaml)")
]
TransportOption = Annotated[
    str, typer.Option("--transport", help="auto (WebSocket, then SSE), ws or sse")
]
RunArgument = Annotated[str | None, typer.Argument(help="a run id (default: the latest)")]


@contextmanager
def _errors() -> Iterator[None]:
    """The client's failures as one line and their exit code."""
    try:
        yield
    except (ConfigError, LockError, RunError, FileProblem) as err:
        output.fail(str(err), 2)
    except ApiError as err:
        output.fail(f"the server refused: {err}", 1)
    except Unreachable as err:
        output.fail(str(err), 1)


def _key() -> str:
    key = os.environ.get("TOLK_API_KEY", "").strip()
    if not key:
        output.fail("TOLK_API_KEY is not set (an API key of your organization)", 2)
    return key


def _run(work: Callable[[], Coroutine[Any, Any, T]]) -> T:
    with _errors():
        return asyncio.run(work())
    raise AssertionError("unreachable")  # _errors exits on every failure


def _emit(as_json: bool, document: dict[str, Any], lines: list[str]) -> None:
    if as_json:
        print(json.dumps(document, ensure_ascii=False, indent=2))
        return
    con = output.console()
    for line in lines:
        con.print(line, highlight=False)


def _landing_report(lander: Lander) -> tuple[dict[str, Any], list[str], int]:
    outcomes = sorted(lander.outcomes.values(), key=lambda o: (o.path, o.locale))
    failed = lander.failed()
    waiting = lander.waiting()
    ids = [run.id for run in lander.runs]
    document = {
        "run": ids[0] if len(ids) == 1 else None,
        "runs": ids,
        "done": lander.all_landed(),
        "jobs": [o.to_json() for o in outcomes],
        "stillRunning": waiting,
    }
    lines = []
    for o in failed[:5]:
        reason = o.error or f"unusable answers for {', '.join(o.problems[:3])}"
        lines.append(f"{o.path} {o.locale}: {o.status}: {reason}")
    if len(failed) > 5:
        lines.append(f"... and {len(failed) - 5} more")
    if failed:
        lines.append("their keys stay stale: `tolk push` asks again")
    written = sum(o.written for o in outcomes)
    lines.append(f"{_count(written, 'target file')} written ({', '.join(ids) or 'no run'})")
    if waiting:
        lines.append(f"{_count(waiting, 'job')} still running: `tolk watch` follows them")
    code = 1 if failed or waiting else 0
    return document, lines, code


def init(
    project: ProjectOption = Path("."),
    source: Annotated[str | None, typer.Option(help="the source locale, e.g. en")] = None,
    targets: Annotated[str | None, typer.Option(help="target locales, e.g. de,fr,ja")] = None,
    format: Annotated[str | None, typer.Option("--format", help="a bucket's format")] = None,
    path: Annotated[str | None, typer.Option(help="its path, with [locale]")] = None,
    api: Annotated[str | None, typer.Option(help="the Tolk API URL")] = None,
    force: Annotated[bool, typer.Option(help="replace an existing tolk.yaml")] = False,
) -> None:
    """Write tolk.yaml, detecting the project's locale files (asks what flags do not say)."""
    root = project.resolve()
    target = root / CONFIG_FILE
    if target.exists() and not force:
        output.fail(f"{CONFIG_FILE} exists already (--force replaces it)", 2)
    interactive = not output.is_plain()
    src = source or (typer.prompt("Source locale", default="en") if interactive else "en")
    found = detect(root, src)
    if format and path:
        buckets = [{"format": format, "path": path}]
    elif format or path:
        output.fail("--format and --path go together", 2)
    elif found:
        buckets = found
    else:
        output.fail("no locale files found: give --format and --path", 2)
    tgt = targets or (typer.prompt("Target locales (comma-separated)") if interactive else "")
    if not tgt.strip():
        output.fail("no target locales: give --targets de,fr", 2)
    text = render_config(api, src, [t.strip() for t in tgt.split(",") if t.strip()], buckets)
    with _errors():
        check_config(root, text)  # what is written must load
    target.write_text(text, encoding="utf-8")
    ignore_run_files(root)
    output.console().print(f"wrote {CONFIG_FILE} with {len(buckets)} bucket(s)", highlight=False)


def push_command(
    project: ProjectOption = Path("."),
    watch_: Annotated[
        bool, typer.Option("--watch", help="show progress and write targets as they land")
    ] = False,
    targets: Annotated[str | None, typer.Option(help="only these targets, e.g. de,fr")] = None,
    transport: TransportOption = "auto",
    as_json: output.json_mode = False,
) -> None:
    """Send new or changed strings; one group per bucket file; record the run."""
    key = _key()
    config, lock = _open_project(project)
    chosen = _targets_option(config, targets)

    async def go() -> tuple[dict[str, Any], list[str], int]:
        async with Api(config.api, key) as api:
            result = await push(config, lock, api, chosen)
            document: dict[str, Any] = {
                "run": result.new_run.id if result.new_run else None,
                "runs": [run.id for run in result.runs],
                "sentStrings": result.sent,
                "groups": [
                    {"groupId": g.group_id, "source": g.source, "targetLocales": _locales(g)}
                    for run in result.runs
                    for g in run.groups
                ],
            }
            if not result.runs:
                return document, ["nothing to send: every target is up to date"], 0
            lines = []
            if result.new_run:
                groups = len(result.new_run.groups)
                lines.append(
                    f"sent {_count(result.sent, 'string')} in {_count(groups, 'group')}"
                    f" (run {result.new_run.id})"
                )
            for run in result.runs:
                if run is not result.new_run:
                    lines.append(f"run {run.id} is still in flight: attached to it")
            if not watch_:
                lines.append("`tolk watch` follows, `tolk pull` lands what is done")
                return document, lines, 0
            if not as_json:
                for line in lines:
                    output.console().print(line, highlight=False)
            display = make_display(as_json, output.is_plain(), output.console())
            lander = await watch(config, api, result.runs, display, transport)
            landed, report, code = _landing_report(lander)
            return {**document, **landed, "run": document["run"]}, report, code

    document, lines, code = _run(go)
    _emit(as_json, document, lines)
    raise typer.Exit(code)


def _targets_option(config: Config, targets: str | None) -> tuple[str, ...] | None:
    """``--targets de,fr``: locales of tolk.yaml, in any case."""
    if not targets:
        return None
    try:
        chosen = tuple(normalize_locale(t.strip()) for t in targets.split(",") if t.strip())
    except ValueError as err:
        output.fail(f"--targets: {err}", 2)
    unknown = [t for t in chosen if t not in config.targets]
    if unknown:
        output.fail(f"--targets: not targets of {CONFIG_FILE}: {', '.join(unknown)}", 2)
    return chosen


def _locales(group: RunGroup) -> list[str]:
    return [job.locale for job in group.jobs]


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'s' * (n != 1)}"


def _open_project(project: Path) -> tuple[Config, Lock]:
    with _errors():
        config = load_config(project.resolve())
        return config, Lock.load(config.root / LOCK_FILE)
    raise AssertionError("unreachable")  # _errors exits on every failure


Follow = Callable[[Config, Api, list[Run], Display], Coroutine[Any, Any, Lander]]


def _land_run(project: Path, run_id: str | None, as_json: bool, follow: Follow) -> None:
    """Open the project and a run (by default every unfinished run, else the latest), land
    its jobs with ``follow``, report, and exit with the landing's code."""
    key = _key()
    config, _ = _open_project(project)
    with _errors():
        if run_id:
            runs = [load_run(config.root, run_id)]
        else:
            runs = [r for r in all_runs(config.root) if not r.done] or [latest_run(config.root)]

    async def go() -> tuple[dict[str, Any], list[str], int]:
        async with Api(config.api, key) as api:
            display = make_display(as_json, output.is_plain(), output.console())
            return _landing_report(await follow(config, api, runs, display))

    document, lines, code = _run(go)
    _emit(as_json, document, lines)
    raise typer.Exit(code)


def watch_command(
    run: RunArgument = None,
    project: ProjectOption = Path("."),
    transport: TransportOption = "auto",
    as_json: output.json_mode = False,
) -> None:
    """Follow a run live and write each locale as it lands (resumes after Ctrl-C or a crash)."""
    _land_run(project, run, as_json, functools.partial(watch, transport=transport))


def pull_command(
    run: RunArgument = None,
    project: ProjectOption = Path("."),
    as_json: output.json_mode = False,
) -> None:
    """Write the target files of every finished job of a run and update the lock."""
    _land_run(project, run, as_json, pull)


def status_command(project: ProjectOption = Path("."), as_json: output.json_mode = False) -> None:
    """What is stale (keys per file and locale), what needs tidying and which runs are in
    flight; exit 1 if anything is."""
    config, lock = _open_project(project)
    with _errors():
        report = status(config, lock)
    lines = []
    for file, per in report["stale"].items():
        for locale, keys in per.items():
            shown = ", ".join(keys[:5]) + (f" and {len(keys) - 5} more" if len(keys) > 5 else "")
            lines.append(f"{file} {locale}: {len(keys)} stale: {shown}")
    for file, locales in report["tidy"].items():
        lines.append(f"{file}: {', '.join(locales)} to tidy (no translation needed: `tolk push`)")
    for run_id in report["runs"]:
        lines.append(f"run {run_id} is still in flight (`tolk watch {run_id}`)")
    if not lines:
        lines.append("up to date")
    _emit(as_json, report, lines)
    raise typer.Exit(1 if report["stale"] or report["tidy"] or report["runs"] else 0)


jobs_app = typer.Typer(help="Jobs and groups on the server, for people at a terminal.")


def _api_call(method: str, path: str, **kwargs: Any) -> Any:
    key = _key()
    base = os.environ.get("TOLK_API_URL")
    if not base:
        with _errors():
            base = load_config(Path(".").resolve()).api

    async def go() -> Any:
        async with Api(base, key) as api:
            return await api.call(method, path, **kwargs)

    return _run(go)


@jobs_app.command("list")
def jobs_list(
    status_: Annotated[str | None, typer.Option("--status")] = None,
    group: Annotated[str | None, typer.Option("--group")] = None,
    locale: Annotated[str | None, typer.Option("--locale")] = None,
    limit: Annotated[int, typer.Option(min=1, max=100)] = 20,
    as_json: output.json_mode = False,
) -> None:
    """The newest jobs, filtered."""
    params = {"status": status_, "groupId": group, "targetLocale": locale, "limit": limit}
    answer = _api_call("GET", "/jobs/localization", params={k: v for k, v in params.items() if v})
    if as_json:
        print(json.dumps(answer, ensure_ascii=False, indent=2))
        return
    con = output.console()
    if output.is_plain():
        for job in answer["items"]:
            con.print(
                f"{job['id']}  {job['groupId']}  {job['targetLocale']}  {job['status']}",
                highlight=False,
            )
        return
    table = Table("job", "group", "locale", "status", "created")
    for job in answer["items"]:
        table.add_row(
            job["id"], job["groupId"], job["targetLocale"], job["status"], job["createdAt"]
        )
    con.print(table)


@jobs_app.command("get")
def jobs_get(job_id: str, as_json: output.json_mode = False) -> None:
    """One job, with its output, warnings and steps."""
    answer = _api_call("GET", f"/jobs/localization/{job_id}")
    if as_json:
        print(json.dumps(answer, ensure_ascii=False, indent=2))
        return
    con = output.console()
    con.print(f"{answer['id']}  {answer['targetLocale']}  {answer['status']}", highlight=False)
    if answer.get("error"):
        con.print(f"error: {answer['error']}", highlight=False)
    for warning in answer.get("warnings") or []:
        con.print(f"warning {warning['code']} at {warning.get('key')}", highlight=False)


def _control(action: str, group_id: str, as_json: bool) -> None:
    answer = _api_call("POST", f"/jobs/localization/groups/{group_id}/{action}")
    if as_json:
        print(json.dumps(answer, ensure_ascii=False, indent=2))
        return
    output.console().print(f"{answer['groupId']}: {answer['status']}", highlight=False)


@jobs_app.command("cancel")
def jobs_cancel(group_id: str, as_json: output.json_mode = False) -> None:
    """Cancel a group's unfinished jobs."""
    _control("cancel", group_id, as_json)


@jobs_app.command("retry")
def jobs_retry(group_id: str, as_json: output.json_mode = False) -> None:
    """Run a group's failed or cancelled jobs again."""
    _control("retry", group_id, as_json)


def register(app: typer.Typer) -> None:
    """Add the file client's commands to the ``tolk`` application."""
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per request
    app.command("init")(init)
    app.command("push")(push_command)
    app.command("watch")(watch_command)
    app.command("pull")(pull_command)
    app.command("status")(status_command)
    app.add_typer(jobs_app, name="jobs")
