"""``tolk``: run the stack or its parts, and administer organizations and keys.

tolk dev                         Temporal dev server + UI, worker and API (make run)
tolk worker                      the Temporal worker
tolk api                         the HTTP API under uvicorn
tolk orgs create NAME [--json]   prints the new organization id
tolk keys create --org ORG_ID [--email EMAIL] [--json]   prints the new API key
tolk keys list [--org ORG_ID] [--json]   lists keys: id, organization, email, dates
tolk keys revoke KEY_ID [--json]  revokes a key (its id, tolk_xxxxxxxx, or the whole key)
tolk groups retry|cancel GROUP_ID [--json]   retry or cancel a group, at any age
tolk groups reconcile [--json]   one reconciler pass now
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from types import FrameType
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from settings import Settings, get_settings, keep_trying
from store import queries
from store.db import Database
from store.models import ApiKey

DEFAULT_EMAIL = "admin@localhost"


@contextlib.asynccontextmanager
async def admin_session(settings: Settings) -> AsyncIterator[AsyncSession]:
    """A session on the stack's database for one admin command (schema created first, the
    database closed after)."""
    db = Database(settings.database_url)
    await db.create_schema()
    try:
        async with db.session() as session:
            yield session
    finally:
        await db.close()


async def _create_org(settings: Settings, name: str) -> str:
    async with admin_session(settings) as session:
        return (await queries.create_organization(session, name)).id


async def _create_key(settings: Settings, org_id: str, email: str) -> str:
    async with admin_session(settings) as session:
        return await queries.create_api_key(session, org_id, email)


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
    async with admin_session(settings) as session:
        row = await queries.revoke_api_key(session, key_or_id)
    return _key_json(row) if row is not None else None


async def _list_keys(settings: Settings, org_id: str | None) -> list[dict[str, str | None]]:
    async with admin_session(settings) as session:
        return [_key_json(row) for row in await queries.list_api_keys(session, org_id)]


async def _dev_key(settings: Settings) -> str:
    """The development API key: reused from var/ while it still works, else a new one."""
    path = Path(settings.var_dir) / "dev-api-key"
    async with admin_session(settings) as session:
        if path.exists():
            key = path.read_text().strip()
            if await queries.authenticate(session, key) is not None:
                return key
        org = await queries.create_organization(session, "Development")
        key = await queries.create_api_key(session, org.id, "dev@localhost")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(key + "\n")
    path.chmod(0o600)
    return key


DEV_ALLOWED_CALLBACK_HOSTS = ["localhost", "127.0.0.0/8", "::1"]


def cmd_dev(_args: argparse.Namespace) -> int:
    """Start the stack, then keep it running: a child that exits is restarted (see
    ``Stack.supervise``) until SIGINT/SIGTERM, which stops API, workers, then Temporal.
    Children die with this process even when it is SIGKILLed (``cli/stack.py``)."""
    from cli.stack import Stack

    settings = get_settings()
    Path(settings.var_dir).mkdir(parents=True, exist_ok=True)
    stack: Stack | None = None
    stopping = False

    def stop(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        if not stopping:
            stopping = True
            print(f"\n{signal.Signals(signum).name}: stopping the stack...", flush=True)
            raise KeyboardInterrupt

    def say(message: str) -> None:
        print(f"tolk dev: {message}", file=sys.stderr, flush=True)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        key = asyncio.run(
            keep_trying(
                "the database",
                lambda: _dev_key(settings),
                max_delay=settings.database_connect_retry_max_seconds,
                log=logging.getLogger("tolk.dev"),
            )
        )
        # Local development: webhook receivers on this machine are allowed (the SSRF rules
        # refuse loopback everywhere else). An explicit setting wins.
        overrides = {}
        if "TOLK_WEBHOOKS_ALLOWED_HOSTS" not in os.environ and not settings.webhooks_allowed_hosts:
            overrides["TOLK_WEBHOOKS_ALLOWED_HOSTS"] = json.dumps(DEV_ALLOWED_CALLBACK_HOSTS)
        stack = Stack(overrides)
        stack.start()
        print(
            "\nTolk is running.\n"
            f"  API          {stack.api_url}   (reference: {stack.api_url}/openapi.json)\n"
            f"  Temporal UI  {stack.ui_url}   (namespace {settings.temporal_namespace})\n"
            f"  API key      {key}\n\n"
            "Try:\n"
            f"  curl -s -X POST {stack.api_url}/jobs/localization -H 'X-API-Key: {key}' \\\n"
            "    -H 'Content-Type: application/json' \\\n"
            '    -d \'{"sourceLocale":"en","targetLocales":["de","fr"],'
            '"data":{"title":"Hello {name}"}}\'\n\n'
            "Ctrl-C stops everything.",
            flush=True,
        )
        stack.supervise(say)
        return 0
    except KeyboardInterrupt:
        return 0
    except RuntimeError as err:  # a child did not start (a port in use, a missing binary)
        say(f"{err}; stopping the stack")
        return 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if stack is not None:
            stack.stop()
        print("stopped.", flush=True)


def cmd_worker(_args: argparse.Namespace) -> int:
    import worker

    worker.main()
    return 0


def cmd_api(_args: argparse.Namespace) -> int:
    import uvicorn

    from api import logs
    from api.app import create_app

    settings = get_settings()
    level = os.environ.get("TOLK_LOG_LEVEL", "info").lower()
    logs.configure(level)
    uvicorn.run(
        create_app(settings),
        host=settings.api_host,
        port=settings.api_port,
        log_config=None,  # keep logs.configure's handlers (token redaction)
        log_level=level,
        access_log=False,
        ws_ping_interval=settings.progress_ping_seconds,
        ws_ping_timeout=settings.progress_ping_timeout_seconds,
        # Progress frames are small and sent to many sockets: per-message compression would
        # keep a zlib state per socket (hundreds of KB each) and compress every frame once
        # per subscriber. Clients send nothing but control frames, so a small limit is safe.
        ws_per_message_deflate=False,
        ws_max_size=64 * 1024,
        # Open WebSockets and SSE streams never end by themselves: a stopping API closes
        # them after this long instead of waiting for them forever.
        timeout_graceful_shutdown=settings.api_graceful_shutdown_seconds,
    )
    return 0


def cmd_orgs_create(args: argparse.Namespace) -> int:
    org_id = asyncio.run(_create_org(get_settings(), args.name))
    print(json.dumps({"id": org_id, "name": args.name}) if args.json else org_id)
    return 0


async def _create_engine(settings: Settings, args: argparse.Namespace, models: list[Any]) -> str:
    async with admin_session(settings) as session:
        engine = await queries.create_engine(
            session, args.org, args.name, models=models, is_default=args.default
        )
        return engine.id


def cmd_engines_create(args: argparse.Namespace) -> int:
    from pydantic import TypeAdapter, ValidationError

    from api.models import EngineModel

    try:  # the same rules as POST /engines
        entries = TypeAdapter(list[EngineModel]).validate_json(args.models)
    except ValidationError as err:
        print(f"--models: {err}", file=sys.stderr)
        return 2
    models = [m.model_dump(mode="json", by_alias=True) for m in entries]
    try:
        engine_id = asyncio.run(_create_engine(get_settings(), args, models))
    except LookupError:
        print(f"unknown organization {args.org}", file=sys.stderr)
        return 1
    print(json.dumps({"id": engine_id, "name": args.name}) if args.json else engine_id)
    return 0


def cmd_keys_create(args: argparse.Namespace) -> int:
    try:
        key = asyncio.run(_create_key(get_settings(), args.org, args.email))
    except LookupError:
        print(f"unknown organization {args.org}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({"key": key, "organizationId": args.org, "email": args.email}))
    else:
        print(key)
    return 0


def cmd_keys_list(args: argparse.Namespace) -> int:
    keys = asyncio.run(_list_keys(get_settings(), args.org))
    if args.json:
        print(json.dumps(keys))
        return 0
    for key in keys:
        state = f"revoked {key['revokedAt']}" if key["revokedAt"] else "live"
        print(f"{key['id']}  {key['organizationId']}  {key['email']}  {key['createdAt']}  {state}")
    return 0


def cmd_keys_revoke(args: argparse.Namespace) -> int:
    revoked = asyncio.run(_revoke_key(get_settings(), args.key))
    if revoked is None:
        print(f"unknown API key {args.key[:13]}", file=sys.stderr)
        return 1
    print(json.dumps(revoked) if args.json else f"revoked {revoked['id']}")
    return 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="tolk", description="Durable async localization.")
    sub = root.add_subparsers(dest="command", required=True)
    sub.add_parser("dev", help="run the whole local stack").set_defaults(fn=cmd_dev)
    sub.add_parser("worker", help="run a Temporal worker").set_defaults(fn=cmd_worker)
    sub.add_parser("api", help="run the HTTP API").set_defaults(fn=cmd_api)

    orgs = sub.add_parser("orgs", help="organizations").add_subparsers(dest="action", required=True)
    create_org = orgs.add_parser("create", help="create an organization, print its id")
    create_org.add_argument("name")
    create_org.add_argument("--json", action="store_true")
    create_org.set_defaults(fn=cmd_orgs_create)

    keys = sub.add_parser("keys", help="API keys").add_subparsers(dest="action", required=True)
    create_key = keys.add_parser("create", help="create an API key, print it (shown once)")
    create_key.add_argument("--org", required=True, help="organization id (org_...)")
    create_key.add_argument("--email", default=DEFAULT_EMAIL, help="contact address for the key")
    create_key.add_argument("--json", action="store_true")
    create_key.set_defaults(fn=cmd_keys_create)
    list_keys = keys.add_parser("list", help="list keys (ids and dates; keys are not stored)")
    list_keys.add_argument("--org", help="only this organization's keys (org_...)")
    list_keys.add_argument("--json", action="store_true")
    list_keys.set_defaults(fn=cmd_keys_list)
    revoke_key = keys.add_parser("revoke", help="revoke an API key: it opens nothing after")
    revoke_key.add_argument("key", help="the key's id (tolk_xxxxxxxx) or the whole key")
    revoke_key.add_argument("--json", action="store_true")
    revoke_key.set_defaults(fn=cmd_keys_revoke)
    engines = sub.add_parser("engines", help="localization engines").add_subparsers(
        dest="action", required=True
    )
    create_engine = engines.add_parser("create", help="create an engine, print its id")
    create_engine.add_argument("--org", required=True, help="organization id (org_...)")
    create_engine.add_argument("--name", required=True)
    create_engine.add_argument(
        "--models",
        default="[]",
        help='ranked JSON list, e.g. \'[{"sourceLocale":"*","targetLocale":"ja",'
        '"provider":"pseudo"}]\'',
    )
    create_engine.add_argument("--default", action="store_true", help="make it the default")
    create_engine.add_argument("--json", action="store_true")
    create_engine.set_defaults(fn=cmd_engines_create)

    groups = sub.add_parser("groups", help="job groups, at any age").add_subparsers(
        dest="action", required=True
    )
    for name, help_text in (
        ("retry", "run a group's failed and cancelled jobs again (also once it has closed)"),
        ("cancel", "cancel a group's unfinished jobs"),
    ):
        action = groups.add_parser(name, help=help_text)
        action.add_argument("group", help="group id (ljg_...)")
        action.add_argument("--json", action="store_true")
        action.set_defaults(fn=cmd_groups, action=name)
    reconcile = groups.add_parser(
        "reconcile", help="start accepted groups that have no workflow; close terminated ones"
    )
    reconcile.add_argument(
        "--max-age",
        type=float,
        metavar="SECONDS",
        help="also start accepted groups without a workflow up to this old "
        "(default: reconcile.max_age_seconds)",
    )
    reconcile.add_argument("--json", action="store_true")
    reconcile.set_defaults(fn=cmd_groups, action="reconcile", group=None)
    return root


def cmd_groups(args: argparse.Namespace) -> int:
    from cli import groups

    settings = get_settings()
    try:
        if args.action == "reconcile":
            result: Any = asyncio.run(groups.reconcile_now(settings, args.max_age))
            text = f"started {len(result['started'])}, closed {len(result['closed'])}"
        else:
            run = groups.retry_group if args.action == "retry" else groups.cancel_group
            jobs = asyncio.run(run(settings, args.group))
            result = {"groupId": args.group, "jobs": jobs}
            text = f"{args.action}: {len(jobs)} jobs of {args.group}"
    except groups.GroupCommandError as err:
        print(str(err), file=sys.stderr)
        return 1
    print(json.dumps(result) if args.json else text)
    return 0


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    args = parser().parse_args(argv)
    sys.exit(args.fn(args))


if __name__ == "__main__":
    main()
