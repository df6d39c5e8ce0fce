"""The Temporal worker: every workflow and activity of Tolk on one task queue. Nothing else.

Run several of these processes to scale; they share the task queue.

The process outlives outages: at start it waits for the database and for Temporal for as
long as it takes; while running, the SDK keeps polling through an outage, and a worker that
stops with an error is built again. On SIGTERM or SIGINT it takes no more work, lets
running activities finish for ``worker_graceful_shutdown_seconds``, and exits for sure a
few seconds later even if an activity ignores its cancellation (``exit_for_sure_after``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

import telemetry
from activities.failures import SafeFailures
from activities.jobs import JobActivities
from activities.reconcile import ReconcileActivities
from activities.review import ReviewActivities
from activities.stages import StageActivities
from activities.webhooks import WebhookActivities
from connections import Stopped, connect_temporal, keep_trying
from providers import build_providers, close_providers
from settings import Settings, batch_limits, get_settings, quota_defaults
from starter import poke_reconciler
from store.db import Database
from workflows.group import GroupWorkflow
from workflows.locale_job import LocaleJobWorkflow
from workflows.reconciler import ReconcilerWorkflow
from workflows.webhooks import WebhookRedeliveryWorkflow

log = logging.getLogger("tolk.worker")

# The sandbox re-imports a workflow's modules for every run. The modules of workflows/ hold
# no state (classes, dataclasses, constants, functions; keep it so) and are shared instead:
# re-creating them for every run is most of a worker's CPU under load (BENCHMARKS.md,
# "Reading these figures"). The price: the sandbox's runtime checks (no clock, no I/O) do
# not see into passed-through code, so its determinism rests on review and on the replay of
# recorded histories in tests/test_replay.py.
PASSED_THROUGH = ("workflows", "contract")  # the packages and every module in them

# After the graceful shutdown window, this long for the SDK to cancel what still runs and
# for the process to close its connections, before it exits regardless.
HARD_EXIT_MARGIN_SECONDS = 3.0
# The exit status when the deadline had to end the process.
EXIT_FORCED = 70


def workflow_runner() -> SandboxedWorkflowRunner:
    restrictions = SandboxRestrictions.default.with_passthrough_modules(*PASSED_THROUGH)
    return SandboxedWorkflowRunner(restrictions=restrictions)


def exit_for_sure_after(seconds: float, what: str) -> None:
    """End the process in ``seconds`` unless it has ended by then.

    A graceful stop can wait forever: the SDK's shutdown waits for every activity, and an
    activity that ignores cancellation (CPU-bound work in a thread cannot be interrupted)
    never ends; even after it, ``asyncio.run`` and the interpreter wait for that thread.
    A daemon timer thread calls ``os._exit``, which waits for nothing. Should Python itself
    be stuck (C code holding the interpreter lock), SIGALRM in its default disposition
    ends the process from the kernel two seconds later. Call from the main thread."""

    def force() -> None:
        log.error("%s did not finish within %.1f s; exiting now", what, seconds)
        for handler in logging.getLogger().handlers:
            handler.flush()
        sys.stderr.flush()
        os._exit(EXIT_FORCED)

    timer = threading.Timer(seconds, force)
    timer.daemon = True
    timer.start()
    signal.signal(signal.SIGALRM, signal.SIG_DFL)
    signal.setitimer(signal.ITIMER_REAL, seconds + 2.0)


def stop_on_signals(grace_seconds: float) -> asyncio.Event:
    """An event set by the first SIGINT or SIGTERM, which also arms the hard deadline."""
    stop = asyncio.Event()

    def on_signal(signum: int) -> None:
        if stop.is_set():
            return
        log.info(
            "%s: taking no more work; running activities get %.0f s",
            signal.Signals(signum).name,
            grace_seconds,
        )
        stop.set()
        exit_for_sure_after(grace_seconds + HARD_EXIT_MARGIN_SECONDS, "graceful shutdown")

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal, sig)
    return stop


def sdk_runtime(settings: Settings) -> Runtime | None:
    """The SDK runtime with a Prometheus endpoint when ``worker.metrics_address`` is set
    (the SDK's worker metrics, and the activities' own: activities/failures.py)."""
    if not settings.worker_metrics_address:
        return None
    metrics = PrometheusConfig(
        bind_address=settings.worker_metrics_address, counters_total_suffix=True
    )
    return Runtime(telemetry=TelemetryConfig(metrics=metrics))


async def connect_and_check(settings: Settings, runtime: Runtime | None = None) -> Any:
    """A connected client, once Temporal answers for our namespace (a dev server that has
    just started may not have created it yet). With tracing on, it carries the SDK's
    tracing interceptor, which the worker built on it takes over for workflows and
    activities (their spans continue the trace of the request that started the group)."""
    client = await connect_temporal(
        settings, runtime=runtime, interceptors=telemetry.temporal_interceptors()
    )
    await client.workflow_service.describe_namespace(
        DescribeNamespaceRequest(namespace=settings.temporal_namespace),
        timeout=timedelta(seconds=5),
    )
    return client


async def run_until_stopped(worker: Worker, stop: asyncio.Event) -> None:
    """Run ``worker`` until ``stop`` is set (then shut it down gracefully); raises the
    worker's error if it stops by itself (the SDK gave up, e.g. its namespace is gone)."""
    run = asyncio.create_task(worker.run())
    stopping = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({run, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if not run.done():
            await worker.shutdown()
        await run
    finally:
        stopping.cancel()


async def run_worker(
    settings: Settings,
    *,
    extra_workflows: Sequence[type] = (),
    extra_activities: Sequence[Callable[..., Any]] = (),
    stop: asyncio.Event | None = None,
) -> None:
    """The worker process. ``extra_*`` register more (tests/stuck_worker.py uses them).
    ``stop``: ends it instead of SIGINT/SIGTERM (a worker inside a test process)."""
    if stop is None:
        stop = stop_on_signals(settings.worker_graceful_shutdown_seconds)
    telemetry.setup_tracing(settings, telemetry.WORKER_SERVICE)
    runtime = sdk_runtime(settings)  # one per process: it binds the metrics endpoint
    db = Database(settings.database_url)
    providers = build_providers(settings, db)
    quotas = quota_defaults(settings)
    webhooks = WebhookActivities(db, settings)
    engines = (db, providers, batch_limits(settings), settings.llm_prices, quotas, webhooks)
    jobs = JobActivities(*engines)
    stages = StageActivities(*engines)
    reviews = ReviewActivities(db)
    reconciler = ReconcileActivities(db, settings)

    def build(client: Any) -> Worker:
        return Worker(
            client,
            task_queue=settings.worker_task_queue,
            workflows=[
                GroupWorkflow,
                LocaleJobWorkflow,
                WebhookRedeliveryWorkflow,
                ReconcilerWorkflow,
                *extra_workflows,
            ],
            workflow_runner=workflow_runner(),
            max_concurrent_activities=settings.worker_max_concurrent_activities,
            max_concurrent_workflow_tasks=settings.worker_max_concurrent_workflow_tasks,
            # Heartbeats carry cancellations to a running translation: send them often
            # enough that a cancel lands within about a second, not at 80% of the timeout.
            max_heartbeat_throttle_interval=timedelta(seconds=1),
            default_heartbeat_throttle_interval=timedelta(seconds=1),
            # On SIGTERM let running translations finish (they are retried elsewhere if not).
            graceful_shutdown_timeout=timedelta(seconds=settings.worker_graceful_shutdown_seconds),
            activities=[
                jobs.translate_job,
                jobs.record_job_result,
                jobs.reset_jobs,
                jobs.record_group_result,
                stages.review_job,
                stages.back_translate_job,
                stages.finish_job,
                reviews.await_review_job,
                reviews.store_review,
                webhooks.deliver_webhook,
                reconciler.reconcile_groups,
                *extra_activities,
            ],
            interceptors=[SafeFailures()],
        )

    temporal = f"Temporal at {settings.temporal_target} (namespace {settings.temporal_namespace})"
    try:
        await keep_trying(
            f"the database ({db.engine.url.render_as_string(hide_password=True)})",
            db.create_schema,
            max_delay=settings.database_connect_retry_max_seconds,
            log=log,
            stop=stop,
        )
        restart_delay = 0.5
        while not stop.is_set():
            client = await keep_trying(
                temporal,
                lambda: connect_and_check(settings, runtime),
                max_delay=settings.temporal_connect_retry_max_seconds,
                log=log,
                stop=stop,
            )
            worker = build(client)
            try:  # groups accepted while no worker ran are started now
                await poke_reconciler(client, settings)
            except Exception as err:
                log.warning("could not poke the reconciler: %s", err)
            log.info(
                "worker polling task queue %r on %s",
                settings.worker_task_queue,
                settings.temporal_target,
            )
            started = time.monotonic()
            try:
                await run_until_stopped(worker, stop)
            except Exception as err:  # the SDK gave up polling: build the worker again
                if time.monotonic() - started > 60:
                    restart_delay = 0.5
                log.warning("worker stopped: %s; starting it again in %.1f s", err, restart_delay)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), restart_delay)
                restart_delay = min(restart_delay * 2, settings.temporal_connect_retry_max_seconds)
    except Stopped:
        pass
    finally:
        await webhooks.close()
        await close_providers(providers)
        await db.close()
        telemetry.flush_tracing()
    log.info("worker stopped")


def main(
    extra_workflows: Sequence[type] = (), extra_activities: Sequence[Callable[..., Any]] = ()
) -> None:
    settings = get_settings()
    telemetry.configure_logging(settings.log_format, logging.INFO)
    asyncio.run(
        run_worker(settings, extra_workflows=extra_workflows, extra_activities=extra_activities)
    )


if __name__ == "__main__":
    main()
