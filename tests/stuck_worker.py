"""The real worker (``worker.main``: same setup, same shutdown path) plus one workflow whose
activity ignores cancellation: CPU-bound work in a thread, as a stuck translation would be.
tests/test_processes.py SIGTERMs it and expects it gone after its grace period anyway.

    python -m tests.stuck_worker      (settings from TOLK_* like any worker)
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from pathlib import Path

from temporalio import activity, workflow

STUCK_WORKFLOW = "StuckWorkflow"


def _work_forever() -> None:
    while True:  # never looks at any cancellation
        time.sleep(0.05)


@activity.defn(name="ignore_cancellation")
async def ignore_cancellation(marker: str) -> None:
    """Writes ``marker`` once running, then waits for a thread that never ends, and goes on
    waiting when cancelled."""
    work = asyncio.ensure_future(asyncio.to_thread(_work_forever))
    await asyncio.to_thread(Path(marker).write_text, "running\n")
    while not work.done():
        try:
            await asyncio.shield(work)
        except asyncio.CancelledError:
            activity.logger.info("cancel ignored")


@workflow.defn(name=STUCK_WORKFLOW, sandboxed=False)
class StuckWorkflow:
    @workflow.run
    async def run(self, marker: str) -> None:
        await workflow.execute_activity(
            ignore_cancellation, marker, start_to_close_timeout=timedelta(hours=1)
        )


if __name__ == "__main__":
    import worker

    worker.main(extra_workflows=[StuckWorkflow], extra_activities=[ignore_cancellation])
