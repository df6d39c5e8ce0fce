"""``tolk db upgrade``, ``tolk db current``: the database's schema revision
(``store/schema.py``). A deployment runs ``tolk db upgrade`` before it rolls out new API
and worker processes; each of them upgrades as it starts too, so a forgotten step costs
only the wait."""

from __future__ import annotations

import asyncio
import json

import typer

from cli import output

app = typer.Typer(help="the database's schema", no_args_is_help=True)


def _url() -> str:
    from settings import get_settings

    return get_settings().database_url


def _name(revision: str | None, head: str | None) -> str:
    if revision is None:
        return "none"
    return f"{revision} (head)" if revision == head else revision


@app.command("upgrade", help="upgrade the schema to the newest revision")
def upgrade(as_json: output.json_mode = False) -> None:
    from store import schema

    done = asyncio.run(schema.upgrade(_url()))
    head = schema.head()
    if as_json:
        print(json.dumps({**vars(done), "head": head, "changed": done.changed}))
        return
    before = _name(done.before, head)
    if done.stamped is not None:
        before = f"none (tables of {done.stamped}, not yet versioned)"
    print(f"revision before: {before}")
    print(f"revision after:  {_name(done.after, head)}")
    if not done.changed:
        print("up to date: nothing changed")


@app.command("current", help="print the schema's revision")
def current(as_json: output.json_mode = False) -> None:
    from store import schema

    revision = asyncio.run(schema.current(_url()))
    head = schema.head()
    if as_json:
        print(json.dumps({"revision": revision, "head": head}))
        return
    print(_name(revision, head) if revision == head else f"{_name(revision, head)} (head: {head})")
