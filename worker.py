"""The Temporal worker: every workflow and activity of Tolk on one task queue. Nothing else.

Run several of these processes to scale; they share the task queue.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from datetime import timedelta

from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.jobs import JobActivities
from activities.webhooks import WebhookActivities
from providers import build_providers, close_providers, pipeline_limits
from settings import Settings, connect_temporal, get_settings
from store.db import Database
from workflows.group import GroupWorkflow
from workflows.locale_job import LocaleJobWorkflow
from workflows.webhooks import WebhookRedeliveryWorkflow

log = logging.getLogger("tolk.worker")

# The sandbox re-imports a workflow's modules for every run. The modules of workflows/ hold
# no state (classes, dataclasses, constants, functions; keep it so) and are shared instead:
# re-creating their dataclasses took more than half of the worker's CPU under load, and
# re-running group.py, locale_job.py and webhooks.py for each of a group's job workflows
# was a fifth of it while a burst of groups started. The price: the sandbox's runtime
# checks (no clock, no I/O) do not see into passed-through code, so its determinism rests
# on review and on the replay of recorded histories in tests/test_replay.py.
PASSED_THROUGH = ("workflows",)  # the package and every module in it


def workflow_runner() -> SandboxedWorkflowRunner:
    restrictions = SandboxRestrictions.default.with_passthrough_modules(*PASSED_THROUGH)
    return SandboxedWorkflowRunner(restrictions=restrictions)


async def run_worker(settings: Settings) -> None:
    db = Database(settings.database_url)
    await db.create_schema()
    client = await connect_temporal(settings)
    providers = build_providers(settings)
    jobs = JobActivities(db, providers, pipeline_limits(settings))
    webhooks = WebhookActivities(db, settings)
    worker = Worker(
        client,
        task_queue=settings.worker_task_queue,
        workflows=[GroupWorkflow, LocaleJobWorkflow, WebhookRedeliveryWorkflow],
        workflow_runner=workflow_runner(),
        max_concurrent_activities=settings.worker_max_concurrent_activities,
        max_concurrent_workflow_tasks=settings.worker_max_concurrent_workflow_tasks,
        # Heartbeats carry cancellations to a running translation: send them often enough
        # that a cancel lands within about a second, not at 80% of the heartbeat timeout.
        max_heartbeat_throttle_interval=timedelta(seconds=1),
        default_heartbeat_throttle_interval=timedelta(seconds=1),
        # On SIGTERM let running translations finish (they are retried elsewhere if not).
        graceful_shutdown_timeout=timedelta(seconds=settings.worker_graceful_shutdown_seconds),
        activities=[
            jobs.translate_job,
            jobs.record_job_result,
            jobs.reset_jobs,
            jobs.record_group_result,
            webhooks.deliver_webhook,
        ],
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    log.info(
        "worker polling task queue %r on %s", settings.worker_task_queue, settings.temporal_target
    )
    async with worker:
        await stop.wait()
    await webhooks.close()
    await close_providers(providers)
    await db.close()


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    asyncio.run(run_worker(get_settings()))


if __name__ == "__main__":
    main()
