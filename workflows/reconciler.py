"""ReconcilerWorkflow: the outbox's sweeper. One per namespace (id ``tolk-reconciler``).

A group is accepted once its rows are committed; the API then starts its workflow. When
that start fails ambiguously, or the API dies between the commit and the start, the group
would wait forever. Every ``interval_seconds`` (and at once when poked: the API and every
worker poke it when they start) one ``reconcile_groups`` activity starts the workflow of
every accepted group that has none, and closes groups whose workflow was terminated. It
continues as new after ``passes_per_run`` passes, so its history stays short.

``temporal workflow signal --workflow-id tolk-reconciler --name poke`` runs a pass now.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, TimeoutType
from temporalio.exceptions import TimeoutError as ActivityTimeoutError

from workflows.messages import RECONCILE_GROUPS, ReconcileInput, ReconcileResult

RECONCILER_ID = "tolk-reconciler"

PASS_TIMEOUT = timedelta(minutes=2)
# The pass heartbeats for every group it looks at: one on a worker that dies is given up
# after this long, not after PASS_TIMEOUT, and the next pass runs at once.
PASS_HEARTBEAT = timedelta(seconds=10)
# A pass that fails (database or Temporal away) is tried again at the next one: at once
# when its worker died (a heartbeat timeout), else after the usual interval.
PASS_RETRY = RetryPolicy(maximum_attempts=1)


@workflow.defn(name="ReconcilerWorkflow")
class ReconcilerWorkflow:
    @workflow.init
    def __init__(self, settings: ReconcileInput) -> None:
        self._settings = settings
        self._poked = False

    @workflow.run
    async def run(self, settings: ReconcileInput) -> None:
        for _ in range(settings.passes_per_run):
            self._poked = False
            try:
                result: ReconcileResult = await workflow.execute_activity(
                    RECONCILE_GROUPS,
                    self._settings,
                    result_type=ReconcileResult,
                    start_to_close_timeout=PASS_TIMEOUT,
                    heartbeat_timeout=PASS_HEARTBEAT,
                    retry_policy=PASS_RETRY,
                    summary="reconcile groups",
                )
                if result.started or result.closed:
                    workflow.logger.warning(
                        "reconciler started %s, closed %s", result.started, result.closed
                    )
            except ActivityError as err:
                workflow.logger.warning("reconcile pass failed: %s", err.cause)
                cause = err.cause
                if isinstance(cause, ActivityTimeoutError) and cause.type == TimeoutType.HEARTBEAT:
                    self._poked = True  # its worker died: the next pass now, elsewhere
            try:
                await workflow.wait_condition(
                    lambda: self._poked,
                    timeout=timedelta(seconds=self._settings.interval_seconds),
                    timeout_summary="next pass",
                )
            except TimeoutError:
                pass
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new(self._settings)

    @workflow.signal
    def poke(self, settings: ReconcileInput | None = None) -> None:
        """Run a pass now (sent by every API and worker process when it starts, with its
        settings: the latest process's interval and grace apply from then on)."""
        if settings is not None:
            self._settings = settings
        self._poked = True
