"""GET /metrics: Prometheus text format. The progress hub's counters and gauges, and:

- ``tolk_accept_latency_seconds{outcome}``: ``POST /jobs/localization`` from the request's
  arrival to its answer, auth and rate limits included, by outcome: ``accepted`` (a new
  group), ``replayed`` (an idempotent replay), ``4xx`` or ``5xx`` (refused; the class of
  the status). ``tolk_groups_accepted_total`` counts the new groups.
- ``tolk_jobs_in_state{status}``: the jobs now queued, processing or awaiting review, in
  the whole database. Counted at scrape time from the job table's ``(organization_id,
  status)`` index (``ix_job_org_status``), at most once per ``JOBS_IN_STATE_TTL_SECONDS``
  per API process. That reads the whole index, not the table (SQLite: a covering-index
  scan; PostgreSQL: an index-only scan, 35 ms for 300,000 jobs); a partial index of the
  unfinished jobs would make it as cheap as their number. The database is the honest
  source: it is where a job's status is recorded, and Temporal's visibility knows a
  workflow's state, not its job's. Every API process reports the same figures: query
  them with ``max``. Terminal states are not gauged (they only grow): the workers count
  jobs as they end (``tolk_jobs_ended_total``, ``activities/metrics.py``). While the
  database does not answer, the gauge is absent rather than stale.
"""

from __future__ import annotations

import asyncio
import logging
import time

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest
from sqlalchemy import func
from sqlmodel import col, select
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.requests import app_state
from store.db import Database
from store.jobs import UNFINISHED
from store.tables import Job

log = logging.getLogger("tolk.api")

ACCEPT_ROUTE = ("post", "/jobs/localization")
JOBS_IN_STATE_TTL_SECONDS = 10.0
JOBS_IN_STATE_TIMEOUT_SECONDS = 2.0

ACCEPT_LATENCY = Histogram(
    "tolk_accept_latency_seconds",
    "POST /jobs/localization: arrival to answer, by outcome",
    ["outcome"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 0.75, 1, 2.5, 5, 10),
)
GROUPS_ACCEPTED = Counter("tolk_groups_accepted", "Job groups accepted (not replays)")
JOBS_IN_STATE = Gauge("tolk_jobs_in_state", "Jobs not yet ended, by status", ["status"])


def accept_outcome(status: int, replayed: bool) -> str:
    if status == 202:
        return "replayed" if replayed else "accepted"
    return f"{status // 100}xx"


class _AcceptTimer:
    """Times the route it wraps, outermost, so refusals by auth and rate limits count."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        status, replayed = 500, False

        async def sending(message: Message) -> None:
            nonlocal status, replayed
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = message.get("headers") or []
                replayed = any(name.lower() == b"idempotent-replayed" for name, _ in headers)
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception as err:  # answered by the app's error handlers, outside this route
            status = getattr(err, "status_code", 500)
            raise
        finally:
            outcome = accept_outcome(status, replayed)
            ACCEPT_LATENCY.labels(outcome).observe(time.perf_counter() - started)
            if outcome == "accepted":
                GROUPS_ACCEPTED.inc()


def timers(method: str, path: str) -> list[Middleware]:
    """The metrics middleware of one route (``api/routes.py``): none for most."""
    return [Middleware(_AcceptTimer)] if (method, path) == ACCEPT_ROUTE else []


class _JobsInState:
    """The gauge's figures, read from the database at most once per TTL."""

    def __init__(self) -> None:
        self.read_at = float("-inf")
        self.lock = asyncio.Lock()

    async def refresh(self, db: Database) -> None:
        async with self.lock:
            if time.monotonic() - self.read_at < JOBS_IN_STATE_TTL_SECONDS:
                return
            self.read_at = time.monotonic()
            try:
                async with asyncio.timeout(JOBS_IN_STATE_TIMEOUT_SECONDS):
                    counts = await _count_unfinished(db)
            except Exception as err:
                log.warning("jobs per state not counted: %s", str(err).splitlines()[0][:200])
                JOBS_IN_STATE.clear()
                self.read_at = float("-inf")  # try again at the next scrape
                return
            for status in UNFINISHED:
                JOBS_IN_STATE.labels(status).set(counts.get(status, 0))


async def _count_unfinished(db: Database) -> dict[str, int]:
    query = (
        select(col(Job.status), func.count())
        .where(col(Job.status).in_(UNFINISHED))
        .group_by(col(Job.status))
    )
    async with db.session() as session:
        rows = (await session.exec(query)).all()
    return {str(status): int(count) for status, count in rows}


_jobs_in_state = _JobsInState()


async def metrics(request: Request) -> Response:
    # /metrics is public and needs no database: an app whose lifespan has not set up its
    # state (or a database that does not answer, see _JobsInState) still answers.
    if getattr(request.app.state, "tolk", None) is not None:
        await _jobs_in_state.refresh(app_state(request).db)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
