"""``tolk dev``, ``tolk worker``, ``tolk api``: run the stack or one of its processes."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from settings import Settings

DEV_ALLOWED_CALLBACK_HOSTS = ["localhost", "127.0.0.0/8", "::1"]


async def _dev_key(settings: Settings) -> str:
    """The development API key: reused from var/ while it still works, else a new one."""
    from cli.admin import admin_session
    from store import accounts

    path = Path(settings.var_dir) / "dev-api-key"
    async with admin_session(settings) as session:
        if path.exists():
            key = path.read_text().strip()
            if await accounts.authenticate(session, key) is not None:
                return key
        org = await accounts.create_organization(session, "Development")
        key = await accounts.create_api_key(session, org.id, "dev@localhost")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(key + "\n")
    path.chmod(0o600)
    return key


async def _upgraded_dev_key(settings: Settings, say: Callable[[str], None]) -> str:
    """The schema upgraded to the newest revision (before any process starts), then the
    development API key."""
    from store import schema

    done = await schema.upgrade(settings.database_url)
    if done.changed:
        say(str(done))
    return await _dev_key(settings)


def dev() -> None:
    """Start the stack, then keep it running: a child that exits is restarted (see
    ``Stack.supervise``) until SIGINT/SIGTERM, which stops API, workers, then Temporal.
    Children die with this process even when it is SIGKILLed (``stack.py``)."""
    from connections import keep_trying
    from settings import get_settings
    from stack import Stack

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
                lambda: _upgraded_dev_key(settings, say),
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
            f"  Console      {stack.api_url}/console   (sign in with the key below)\n"
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
    except KeyboardInterrupt:
        pass
    except RuntimeError as err:  # a child did not start (a port in use, a missing binary)
        say(f"{err}; stopping the stack")
        raise typer.Exit(1) from None
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if stack is not None:
            stack.stop()
        print("stopped.", flush=True)


def worker() -> None:
    """Run one Temporal worker until SIGINT/SIGTERM (``worker.py``)."""
    import worker

    worker.main()


def api() -> None:
    """Serve the HTTP API under uvicorn until SIGINT/SIGTERM."""
    import uvicorn

    from api import logs
    from api.app import create_app
    from settings import get_settings

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
