"""The Starlette application: one explicit routing table, JSON errors, a lifespan that
opens the database and the Temporal client."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.routing import Route, WebSocketRoute

from api import control, engines, jobs, metrics, process, service, streams, webhooks
from api.errors import ApiError, api_error_handler, http_exception_handler, unhandled_error_handler
from api.progress import ProgressHub
from api.state import AppState
from providers import build_providers, close_providers
from settings import Settings, connect_temporal, get_settings
from store.db import Database

log = logging.getLogger("tolk.api")

ROUTES = [
    Route("/jobs/localization", jobs.create_group, methods=["POST"]),
    Route("/jobs/localization", jobs.list_jobs, methods=["GET"]),
    Route("/jobs/localization/groups/{group_id}", jobs.get_group, methods=["GET"]),
    Route("/jobs/localization/groups/{group_id}/cancel", control.cancel_group, methods=["POST"]),
    Route("/jobs/localization/groups/{group_id}/retry", control.retry_group, methods=["POST"]),
    Route("/jobs/localization/groups/{group_id}/tokens", streams.create_token, methods=["POST"]),
    Route("/jobs/localization/groups/{group_id}/events", streams.group_events, methods=["GET"]),
    WebSocketRoute("/jobs/localization/groups/{group_id}/ws", streams.group_ws),
    Route("/jobs/localization/{job_id}", jobs.get_job, methods=["GET"]),
    Route("/jobs/localization/{job_id}/deliveries", webhooks.list_deliveries, methods=["GET"]),
    Route("/jobs/localization/{job_id}/redeliver", webhooks.redeliver, methods=["POST"]),
    Route("/jobs/localization/{job_id}/output", webhooks.job_output, methods=["GET"]),
    Route("/engines", engines.list_engines, methods=["GET"]),
    Route("/engines", engines.create_engine, methods=["POST"]),
    Route("/engines/{engine_id}", engines.get_engine, methods=["GET"]),
    Route("/engines/{engine_id}", engines.update_engine, methods=["PATCH"]),
    Route("/engines/{engine_id}", engines.delete_engine, methods=["DELETE"]),
    Route("/users/me", engines.users_me, methods=["GET"]),
    Route("/process/localize", process.localize, methods=["POST"]),
    Route("/process/recognize", process.recognize, methods=["POST"]),
    Route("/process/estimate", process.estimate, methods=["POST"]),
    Route("/webhooks/settings", webhooks.get_settings, methods=["GET"]),
    Route("/webhooks/settings", webhooks.put_settings, methods=["PUT"]),
    Route("/webhooks/secret/rotate", webhooks.rotate_secret, methods=["POST"]),
    Route("/healthz", service.healthz, methods=["GET"]),
    Route("/readyz", service.readyz, methods=["GET"]),
    Route("/openapi.json", service.openapi, methods=["GET"]),
    Route("/docs", service.docs, methods=["GET"]),
    Route("/metrics", metrics.metrics, methods=["GET"]),
]


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or get_settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        db = Database(settings.database_url)
        await db.create_schema()
        temporal = await connect_temporal(settings)
        hub = ProgressHub(
            db,
            temporal,
            min_interval=settings.progress_poll_min_seconds,
            max_interval=settings.progress_poll_max_seconds,
            query_timeout=settings.progress_query_timeout_seconds,
            query_budget=settings.progress_query_budget_per_second,
        )
        app.state.tolk = AppState(
            settings=settings,
            db=db,
            temporal=temporal,
            secret_key=settings.resolved_secret_key(),
            hub=hub,
            providers=build_providers(settings),
        )
        log.info("API ready; Temporal at %s", settings.temporal_target)
        yield
        await hub.close()
        await close_providers(app.state.tolk.providers)
        await db.close()

    return Starlette(
        routes=ROUTES,
        lifespan=lifespan,
        exception_handlers={
            ApiError: api_error_handler,
            HTTPException: http_exception_handler,
            Exception: unhandled_error_handler,
        },
    )


def app() -> Starlette:
    """Factory for ``uvicorn --factory api.app:app``."""
    return create_app()
