"""Replay committed histories with today's workflow code: a change that would break groups
already running in production fails here (non-determinism), not in production."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from worker import workflow_runner
from workflows.group import GroupWorkflow
from workflows.locale_job import LocaleJobWorkflow
from workflows.reconciler import ReconcilerWorkflow
from workflows.webhooks import WebhookRedeliveryWorkflow

HISTORIES = {
    path.stem: json.loads(path.read_text())
    for path in sorted((Path(__file__).parent / "histories").glob("*.json"))
}


@pytest.mark.parametrize("name", list(HISTORIES))
async def test_history_replays_without_nondeterminism(name: str) -> None:
    history = WorkflowHistory.from_json(name, HISTORIES[name])
    replayer = Replayer(
        workflows=[GroupWorkflow, LocaleJobWorkflow, WebhookRedeliveryWorkflow, ReconcilerWorkflow],
        workflow_runner=workflow_runner(),
    )
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, result.replay_failure


def test_histories_are_committed() -> None:
    assert len(HISTORIES) >= 10
