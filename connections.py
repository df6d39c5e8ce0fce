"""Connections and waits that every Tolk process shares: the Temporal client built from
the settings, and ``keep_trying``, which waits out a dependency that does not answer yet
(the database, Temporal) without giving up. Apart from ``settings.py`` so that the one
place for defaults holds only settings and the options built from them."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from settings import Settings

T = TypeVar("T")


async def connect_temporal(
    settings: Settings,
    *,
    lazy: bool = False,
    runtime: Any = None,
    interceptors: Sequence[Any] = (),
) -> Any:
    """A Temporal client for the configured cluster (dev server, self-hosted or Cloud).

    ``lazy``: connect on the first call instead of now (a worker needs a connected one).
    ``runtime``: the SDK runtime to use (the worker's, with its metrics endpoint).
    ``interceptors``: client interceptors (tracing: ``telemetry.temporal_interceptors``);
    those that are worker interceptors too apply to the workers built on this client."""
    from temporalio.client import Client

    tls = tls_config(settings)
    extra: dict[str, Any] = {} if tls is None else {"tls": tls}
    if runtime is not None:
        extra["runtime"] = runtime
    return await Client.connect(
        settings.temporal_target,
        namespace=settings.temporal_namespace,
        api_key=settings.temporal_api_key,
        lazy=lazy,
        interceptors=list(interceptors),
        **extra,
    )


def tls_config(settings: Settings) -> Any:
    """What ``Client.connect`` takes as ``tls``: None (the SDK decides: TLS with an API
    key), ``temporal_tls`` as set, or a ``TLSConfig`` once any ``temporal_tls_*`` file or
    name is set (mTLS needs the certificate and its key together). Files are read now, so
    a missing one stops the process at start with its name."""
    from temporalio.service import TLSConfig

    cert, key = settings.temporal_tls_cert_file, settings.temporal_tls_key_file
    ca, name = settings.temporal_tls_ca_file, settings.temporal_tls_server_name
    if not (cert or key or ca or name):
        return settings.temporal_tls
    if settings.temporal_tls is False:
        raise ValueError("TOLK_TEMPORAL_TLS is false, but TOLK_TEMPORAL_TLS_* settings are set")
    if bool(cert) != bool(key):
        raise ValueError("TOLK_TEMPORAL_TLS_CERT_FILE and TOLK_TEMPORAL_TLS_KEY_FILE go together")

    def read(path: str | None) -> bytes | None:
        return Path(path).read_bytes() if path else None

    return TLSConfig(
        server_root_ca_cert=read(ca),
        domain=name or None,
        client_cert=read(cert),
        client_private_key=read(key),
    )


class Stopped(Exception):
    """Raised by ``keep_trying`` when the process was asked to stop while it waited."""


async def keep_trying(
    what: str,
    attempt: Callable[[], Awaitable[T]],
    *,
    max_delay: float,
    log: logging.Logger,
    stop: asyncio.Event | None = None,
) -> T:
    """``await attempt()`` until it succeeds, however long that takes: after a failure wait
    0.5 s, doubling up to ``max_delay``. Logs the first failure, then every fifth (or once
    a minute), naming ``what`` it waits for, and the success after a wait. Raises
    ``Stopped`` as soon as ``stop`` is set."""
    delay, failures, started, logged_at = 0.5, 0, time.monotonic(), 0.0
    while True:
        if stop is not None and stop.is_set():
            raise Stopped(what)
        try:
            result = await attempt()
        except Exception as err:
            failures += 1
            now = time.monotonic()
            if failures == 1 or failures % 5 == 0 or now - logged_at >= 60:
                logged_at = now
                reason = (str(err) or type(err).__name__).splitlines()[0][:200]
                log.warning(
                    "waiting for %s (%d attempts, %.0f s so far; next in %.1f s): %s",
                    what,
                    failures,
                    now - started,
                    delay,
                    reason,
                )
            if stop is None:
                await asyncio.sleep(delay)
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
            delay = min(delay * 2, max_delay)
            continue
        if failures:
            log.info(
                "%s answered after %.0f s (%d failed attempts)",
                what,
                time.monotonic() - started,
                failures,
            )
        return result
