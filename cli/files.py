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
from client.config import CONFIG_FILE, LOCK_FILE, Config, ConfigError, load_config
from client.follow import Lander, pull, watch
from client.init import detect, render_config
from client.lock import Lock, LockError
from client.progress import Display, make_display
from client.push import push, status
from client.runs import Run, RunError, latest_run, load_run
from client.sync import FileProblem

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
    waiting = sum(len(g.jobs) for g in lander.run.groups) - len(lander.outcomes)
    document = {
        "run": lander.run.id,
        "done": lander.run.done,
        "jobs": [o.to_json() for o in outcomes],
        "stillRunning": waiting,
    }
    lines = [f"{o.locale}: {o.status}: {o.error}" for o in failed[:5]]
    if len(failed) > 5:
        lines.append(f"... and {len(failed) - 5} more failed jobs")
    written = sum(o.written for o in outcomes)
    lines.append(f"run {lander.run.id}: {_count(written, 'target file')} written")
    if waiting:
        lines.append(
            f"{_count(waiting, 'job')} still running: `tolk watch {lander.run.id}` follows them"
        )
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
    target.write_text(text, encoding="utf-8")
    with _errors():
        load_config(root)  # what was written must load
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
    chosen = tuple(t.strip() for t in targets.split(",")) if targets else None
    if chosen and not set(chosen) <= set(config.targets):
        output.fail(f"--targets: not targets of {CONFIG_FILE}: {', '.join(chosen)}", 2)

    async def go() -> tuple[dict[str, Any], list[str], int]:
        async with Api(config.api, key) as api:
            result = await push(config, lock, api, chosen)
            document: dict[str, Any] = {
                "run": result.run.id if result.run else None,
                "sentStrings": result.sent,
                "groups": [
                    {
                        "groupId": g["groupId"],
                        "targetLocales": [j["targetLocale"] for j in g["jobs"]],
                    }
                    for g in result.groups
                ],
            }
            if result.run is None:
                return document, ["nothing to send: every target is up to date"], 0
            lines = [
                f"sent {_count(result.sent, 'string')} in {_count(len(result.groups), 'group')}"
                f" (run {result.run.id})"
            ]
            if not watch_:
                lines.append(f"`tolk watch {result.run.id}` follows it, `tolk pull` lands it")
                return document, lines, 0
            if not as_json:
                output.console().print(lines[0], highlight=False)
            display = make_display(as_json, output.is_plain(), output.console())
            lander = await watch(config, lock, api, result.run, display, transport)
            landed, report, code = _landing_report(lander)
            return {**document, **landed}, report, code

    document, lines, code = _run(go)
    _emit(as_json, document, lines)
    raise typer.Exit(code)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'s' * (n != 1)}"


def _locales_of(group: dict[str, Any]) -> list[str]:
    return [job["targetLocale"] for job in group["jobs"]]


def _open_project(project: Path) -> tuple[Config, Lock]:
    with _errors():
        config = load_config(project.resolve())
        return config, Lock.load(config.root / LOCK_FILE)
    raise AssertionError("unreachable")  # _errors exits on every failure


Follow = Callable[[Config, Lock, Api, Run, Display], Coroutine[Any, Any, Lander]]


def _land_run(project: Path, run_id: str | None, as_json: bool, follow: Follow) -> None:
    """Open the project and a run (the latest unfinished by default), land its jobs with
    ``follow``, report, and exit with the landing's code."""
    key = _key()
    config, lock = _open_project(project)
    with _errors():
        run = load_run(config.root, run_id) if run_id else latest_run(config.root)

    async def go() -> tuple[dict[str, Any], list[str], int]:
        async with Api(config.api, key) as api:
            display = make_display(as_json, output.is_plain(), output.console())
            return _landing_report(await follow(config, lock, api, run, display))

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
    """What is stale (keys per file and locale) and which runs are in flight; exit 1 if any."""
    config, lock = _open_project(project)
    with _errors():
        report = status(config, lock)
    lines = []
    for file, per in report["stale"].items():
        for locale, keys in per.items():
            shown = ", ".join(keys[:5]) + (f" and {len(keys) - 5} more" if len(keys) > 5 else "")
            lines.append(f"{file} {locale}: {len(keys)} stale: {shown}")
    for run_id in report["runs"]:
        lines.append(f"run {run_id} is still in flight (`tolk watch {run_id}`)")
    if not lines:
        lines.append("up to date")
    _emit(as_json, {"stale": report["stale"], "runs": report["runs"]}, lines)
    raise typer.Exit(1 if report["stale"] or report["runs"] else 0)


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
