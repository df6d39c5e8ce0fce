"""``tolk orgs``, ``tolk keys``, ``tolk engines``: the administrator's commands on the stack's
database (organizations, API keys, engines). They need no Temporal.

The database layer is imported when a command runs: every ``tolk`` command (the file
client's too) imports this module to build its command line.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cli import output

if TYPE_CHECKING:
    from sqlmodel.ext.asyncio.session import AsyncSession

    from settings import Settings
    from store.tables import ApiKey

DEFAULT_EMAIL = "admin@localhost"

orgs = typer.Typer(help="organizations", no_args_is_help=True)
keys = typer.Typer(help="API keys", no_args_is_help=True)
engines = typer.Typer(help="localization engines", no_args_is_help=True)

OrgId = Annotated[str, typer.Option("--org", metavar="ORG_ID", help="organization id (org_...)")]


def _settings() -> Settings:
    from settings import get_settings

    return get_settings()


@contextlib.asynccontextmanager
async def admin_session(settings: Settings) -> AsyncIterator[AsyncSession]:
    """A session on the stack's database for one admin command (schema upgraded first,
    quietly: the command's stderr is for its errors; the database closed after)."""
    from store import schema
    from store.db import Database

    await schema.upgrade(settings.database_url)
    db = Database(settings.database_url)
    try:
        async with db.session() as session:
            yield session
    finally:
        await db.close()


async def _create_org(settings: Settings, name: str) -> str:
    from store import accounts

    async with admin_session(settings) as session:
        return (await accounts.create_organization(session, name)).id


async def _create_key(settings: Settings, org_id: str, email: str) -> str:
    from store import accounts

    async with admin_session(settings) as session:
        return await accounts.create_api_key(session, org_id, email)


def _key_json(row: ApiKey) -> dict[str, str | None]:
    """What the key commands print of a key: never its hash."""
    return {
        "id": row.id,
        "organizationId": row.organization_id,
        "email": row.email,
        "createdAt": row.created_at.isoformat(),
        "revokedAt": row.revoked_at.isoformat() if row.revoked_at else None,
    }


async def _revoke_key(settings: Settings, key_or_id: str) -> dict[str, str | None] | None:
    from store import accounts

    async with admin_session(settings) as session:
        row = await accounts.revoke_api_key(session, key_or_id)
    return _key_json(row) if row is not None else None


async def _list_keys(settings: Settings, org_id: str | None) -> list[dict[str, str | None]]:
    from store import accounts

    async with admin_session(settings) as session:
        return [_key_json(row) for row in await accounts.list_api_keys(session, org_id)]


async def _create_engine(
    settings: Settings, org_id: str, name: str, models: list[Any], is_default: bool
) -> str:
    import store.engines

    async with admin_session(settings) as session:
        engine = await store.engines.create_engine(
            session, org_id, name, models=models, is_default=is_default
        )
        return engine.id


@orgs.command("create", help="create an organization, print its id")
def create_org(
    name: Annotated[str, typer.Argument(metavar="NAME")], as_json: output.json_mode = False
) -> None:
    org_id = asyncio.run(_create_org(_settings(), name))
    print(json.dumps({"id": org_id, "name": name}) if as_json else org_id)


@keys.command("create", help="create an API key, print it (shown once)")
def create_key(
    org: OrgId,
    email: Annotated[
        str, typer.Option("--email", metavar="EMAIL", help="contact address for the key")
    ] = DEFAULT_EMAIL,
    as_json: output.json_mode = False,
) -> None:
    try:
        key = asyncio.run(_create_key(_settings(), org, email))
    except LookupError:
        output.fail(f"unknown organization {org}", 1)
    if as_json:
        print(json.dumps({"key": key, "organizationId": org, "email": email}))
    else:
        print(key)


@keys.command("list", help="list keys (ids and dates; keys are not stored)")
def list_keys(
    org: Annotated[
        str | None,
        typer.Option("--org", metavar="ORG_ID", help="only this organization's keys (org_...)"),
    ] = None,
    as_json: output.json_mode = False,
) -> None:
    found = asyncio.run(_list_keys(_settings(), org))
    if as_json:
        print(json.dumps(found))
        return
    if not output.is_plain():
        _key_table(found)
        return
    for key in found:
        state = f"revoked {key['revokedAt']}" if key["revokedAt"] else "live"
        print(f"{key['id']}  {key['organizationId']}  {key['email']}  {key['createdAt']}  {state}")


def _key_table(found: list[dict[str, str | None]]) -> None:
    """``keys list`` at a terminal: a table, ids in full, times to the minute (UTC)."""
    from datetime import datetime

    from rich.markup import escape
    from rich.table import Table

    def minute(iso: str | None) -> str:
        return datetime.fromisoformat(iso).strftime("%Y-%m-%d %H:%M") if iso else ""

    table = Table(box=None, header_style="bold", pad_edge=False)
    table.add_column("id", no_wrap=True, min_width=13)
    table.add_column("organization", no_wrap=True, min_width=20)
    table.add_column("email", overflow="fold")
    table.add_column("created (UTC)", no_wrap=True)
    table.add_column("revoked (UTC)", no_wrap=True)
    for key in found:
        revoked = key["revokedAt"]
        table.add_row(
            key["id"],
            key["organizationId"],
            escape(key["email"] or ""),
            minute(key["createdAt"]),
            f"[red]{minute(revoked)}[/]" if revoked else "[green]live[/]",
        )
    output.console().print(table)


@keys.command("revoke", help="revoke an API key: it opens nothing after")
def revoke_key(
    key: Annotated[
        str,
        typer.Argument(metavar="KEY_ID", help="the key's id (tolk_xxxxxxxx) or the whole key"),
    ],
    as_json: output.json_mode = False,
) -> None:
    revoked = asyncio.run(_revoke_key(_settings(), key))
    if revoked is None:
        output.fail(f"unknown API key {key[:13]}", 1)
    print(json.dumps(revoked) if as_json else f"revoked {revoked['id']}")


@engines.command("create", help="create an engine, print its id")
def create_engine(
    org: OrgId,
    name: Annotated[str, typer.Option("--name", metavar="NAME")],
    models: Annotated[
        str,
        typer.Option(
            "--models",
            metavar="JSON",
            help='ranked JSON list, e.g. \'[{"sourceLocale":"*","targetLocale":"ja",'
            '"provider":"pseudo"}]\'',
        ),
    ] = "[]",
    is_default: Annotated[bool, typer.Option("--default", help="make it the default")] = False,
    as_json: output.json_mode = False,
) -> None:
    from pydantic import TypeAdapter, ValidationError

    from api.engine_schemas import EngineModel

    try:  # the same rules as POST /engines
        entries = TypeAdapter(list[EngineModel]).validate_json(models)
    except ValidationError as err:
        problems = (
            f"{'.'.join(str(part) for part in e['loc']) or 'value'}: {e['msg']}"
            for e in err.errors()
        )
        output.fail(f"--models: {'; '.join(problems)}")
    dumped = [m.model_dump(mode="json", by_alias=True) for m in entries]
    try:
        engine_id = asyncio.run(_create_engine(_settings(), org, name, dumped, is_default))
    except LookupError:
        output.fail(f"unknown organization {org}", 1)
    print(json.dumps({"id": engine_id, "name": name}) if as_json else engine_id)
