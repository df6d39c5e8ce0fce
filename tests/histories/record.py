"""Record the workflow histories that tests/test_replay.py replays.

    python -m tests.histories.record

Runs a stack, drives a few groups through the paths that matter (completed, cancelled and
retried), and writes each workflow's history as JSON next to this file. Re-record only on
purpose: a replay failure after a workflow change means running groups would break.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from temporalio.client import Client, WorkflowExecutionStatus

from bench.common import own_stack
from cli.stack import Stack

HERE = Path(__file__).resolve().parent
IDENTITY = re.compile(r'"identity": "[^"]*"')


def wait_terminal(http: httpx.Client, group_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        body: dict[str, Any] = http.get(f"/jobs/localization/groups/{group_id}").json()
        if body["status"] in {"completed", "partial", "failed", "cancelled"}:
            return body
        time.sleep(0.2)
    raise TimeoutError(group_id)


def drive(stack: Stack, key: str) -> dict[str, str]:
    """Return {name: workflow id} for the executions worth keeping."""
    http = httpx.Client(base_url=stack.api_url, headers={"X-API-Key": key}, timeout=60)
    doc = {"title": "Hello {name}", "steps": [{"id": "s1", "body": "<b>Go</b>"}]}
    done = http.post(
        "/jobs/localization",
        json={
            "sourceLocale": "en",
            "targetLocales": ["de", "fr"],
            "data": doc,
            "lockedKeys": ["id"],
        },
    ).json()
    group = wait_terminal(http, done["groupId"])

    stack.kill("worker", signal.SIGTERM)  # cancel lands before any job can run
    cancelled = http.post(
        "/jobs/localization", json={"sourceLocale": "en", "targetLocales": ["ja"], "data": doc}
    ).json()
    http.post(f"/jobs/localization/groups/{cancelled['groupId']}/cancel")
    stack.start_worker()
    wait_terminal(http, cancelled["groupId"])
    http.post(f"/jobs/localization/groups/{cancelled['groupId']}/retry")
    wait_terminal(http, cancelled["groupId"])
    return {
        "group_completed": done["groupId"],
        "job_completed": group["jobs"][0]["id"],
        "group_cancelled_then_retried": cancelled["groupId"],
    }


async def dump(stack: Stack, ids: dict[str, str]) -> None:
    client = await Client.connect(
        stack.settings.temporal_target, namespace=stack.settings.temporal_namespace
    )
    for name, workflow_id in ids.items():
        handle = client.get_workflow_handle(workflow_id)
        for _ in range(100):  # let lingering groups close, so whole runs are recorded
            if (await handle.describe()).status != WorkflowExecutionStatus.RUNNING:
                break
            await asyncio.sleep(0.2)
        history = await handle.fetch_history()
        text = json.dumps(history.to_json_dict(), indent=1) + "\n"
        (HERE / f"{name}.json").write_text(scrub(text))


def scrub(text: str) -> str:
    """Worker identities name a process and host; replay does not need them."""
    return IDENTITY.sub('"identity": "tolk-worker"', text)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="tolk-histories-") as tmp:
        stack, key = own_stack(Path(tmp), TOLK_GROUPS_LINGER_SECONDS="8")
        try:
            ids = drive(stack, key)
            asyncio.run(dump(stack, ids))
        finally:
            stack.stop()
    print("recorded:", ", ".join(sorted(ids)))


if __name__ == "__main__":
    main()
