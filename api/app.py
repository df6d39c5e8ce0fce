"""The Starlette application: the routes of ``api/routes.py`` and the document made from
them, JSON errors, a lifespan that opens the database and the Temporal client.

The API starts and serves whether or not Temporal and the database answer: ``/healthz``
says the process is up, ``/readyz`` names what is missing, and a route that needs what is
missing answers 503 with ``Retry-After``. Nothing needs a restart once they are back."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from temporalio.service import RPCError, RPCStatusCode

import telemetry
from api.console.routes import console_routes
from api.errors import (
    ApiError,
    api_error_handler,
    dependency_error_handler,
    http_exception_handler,
    unhandled_error_handler,
)
from api.openapi import openapi_document
from api.progress.hub import ProgressHub
from api.request_telemetry import RequestTelemetry
from api.routes import starlette_routes
from api.state import AppState
from connections import connect_temporal, keep_trying
from providers import build_providers, close_providers
from settings import Settings, get_settings, hub_options
from starter import poke_reconciler
from store.db import Database

log = logging.getLogger("tolk.api")


async def lazy_temporal(settings: Settings) -> Any:
    """A Temporal client that connects on its first call, and again on the next call after
    a connect failed, so the API needs no Temporal to start and no restart once it is back.

    The SDK raises a plain RuntimeError when a lazy client cannot connect; as an RPCError
    UNAVAILABLE it is what any call to an unreachable server raises, which routes and
    ``api.errors`` answer with 503 (a RuntimeError would be a 500). The SDK (1.35,
    temporalio/service.py) connects in ``_connected_client`` and nowhere else."""
    client = await connect_temporal(
        settings, lazy=True, interceptors=telemetry.temporal_interceptors()
    )
    service = client.service_client
    connect = service._connected_client

    async def connect_or_unavailable() -> Any:
        try:
            return await connect()
        except RuntimeError as err:
            message = str(err).splitlines()[0][:300]
            raise RPCError(
                f"Temporal unreachable: {message}", RPCStatusCode.UNAVAILABLE, b""
            ) from None

    service._connected_client = connect_or_unavailable
    return client


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or get_settings()
    tracing = telemetry.setup_tracing(settings, telemetry.API_SERVICE)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        db = Database(settings.database_url)
        # In the background: the API serves (503 where the database is needed) until the
        # database answers; /readyz reports the database missing until then.
        app.state.database_schema = asyncio.create_task(
            keep_trying(
                "the database",
                db.create_schema,
                max_delay=settings.database_connect_retry_max_seconds,
                log=log,
            )
        )
        temporal = await lazy_temporal(settings)
        hub = ProgressHub(db, temporal, hub_options(settings))
        app.state.tolk = AppState(
            settings=settings,
            db=db,
            temporal=temporal,
            secret_key=settings.resolved_secret_key(),
            hub=hub,
            providers=build_providers(settings, db),
        )
        # The reconciler makes a pass now: groups this process accepted before it died
        # without starting their workflow are started (activities/reconcile.py).
        app.state.reconciler_poke = asyncio.create_task(
            keep_trying(
                "Temporal (to poke the reconciler)",
                lambda: poke_reconciler(temporal, settings),
                max_delay=settings.temporal_connect_retry_max_seconds,
                log=log,
            )
        )
        log.info("API serving; Temporal at %s (connects on first use)", settings.temporal_target)
        yield
        app.state.reconciler_poke.cancel()
        app.state.database_schema.cancel()
        await hub.close()
        await close_providers(app.state.tolk.providers)
        await db.close()

    # The API's table, then the console's pages (not API operations: not in the document).
    routes = [*starlette_routes(), *console_routes()]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        # A span per request, and the ids it is about on its log lines: only when used.
        middleware=[Middleware(RequestTelemetry, routes=routes)]
        if tracing or settings.log_format == "json"
        else [],
        exception_handlers={
            ApiError: api_error_handler,
            HTTPException: http_exception_handler,
            # What an outage of the database or Temporal raises: 503 (or 500 if not one).
            OSError: dependency_error_handler,
            SQLAlchemyError: dependency_error_handler,
            RPCError: dependency_error_handler,
            Exception: unhandled_error_handler,
        },
    )
    app.state.openapi = openapi_document()  # served by /openapi.json and /docs
    return app


def app() -> Starlette:
    """Factory for ``uvicorn --factory api.app:app``."""
    return create_app()
