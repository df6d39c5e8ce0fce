"""The raw fan-out shape, the baseline of ``bench/fanout.py``: a parent workflow that starts
one child per locale, each child running one no-op activity. It is the least Temporal can do
for a group: what Tolk's group and job workflows cost is measured against it.

    python -m bench.raw_fanout      # a worker for it, on the stack's Temporal (TOLK_* settings)
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.worker import Worker

RAW_TASK_QUEUE = "bench-raw-fanout"


@activity.defn(name="raw_noop")
async def raw_noop(locale: str) -> str:
    return locale


@workflow.defn(name="RawJobWorkflow")
class RawJobWorkflow:
    @workflow.run
    async def run(self, locale: str) -> str:
        return await workflow.execute_activity(
            "raw_noop", locale, result_type=str, start_to_close_timeout=timedelta(seconds=60)
        )


@workflow.defn(name="RawGroupWorkflow")
class RawGroupWorkflow:
    @workflow.run
    async def run(self, locales: list[str]) -> list[str]:
        parent = workflow.info().workflow_id
        # All children at once, in one workflow task: the leanest fan-out there is.
        return list(
            await asyncio.gather(
                *(
                    workflow.execute_child_workflow(
                        RawJobWorkflow.run,
                        locale,
                        id=f"{parent}-{locale}",
                        task_queue=RAW_TASK_QUEUE,
                    )
                    for locale in locales
                )
            )
        )


async def run_worker() -> None:
    from connections import connect_temporal
    from settings import get_settings
    from worker import workflow_runner

    settings = get_settings()
    client = await connect_temporal(settings)
    worker = Worker(  # the same concurrency as Tolk's worker (worker.py)
        client,
        task_queue=RAW_TASK_QUEUE,
        max_concurrent_activities=settings.worker_max_concurrent_activities,
        max_concurrent_workflow_tasks=settings.worker_max_concurrent_workflow_tasks,
        workflows=[RawGroupWorkflow, RawJobWorkflow],
        activities=[raw_noop],
        workflow_runner=workflow_runner(),
    )
    await worker.run()


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(run_worker())
