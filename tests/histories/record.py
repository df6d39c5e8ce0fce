"""Record the workflow histories that tests/test_replay.py replays.

    python -m tests.histories.record

Runs a stack, drives a few groups through the paths that matter (completed, cancelled and
retried, failed with its webhook pending then retried, redelivered, with pipeline stages,
with a human review rejected then approved, lean jobs),
and writes each workflow's history as JSON next to this file. Files recorded by earlier
versions of the workflows stay as they are: they prove that groups started then still
replay. Re-record only on purpose: a replay failure after a workflow change means running
groups would break.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import trustme
from temporalio.client import Client, WorkflowExecutionStatus

from bench.common import own_stack
from stack import Stack
from tests.receiver import Receiver, Reply

HERE = Path(__file__).resolve().parent
IDENTITY = re.compile(r'"identity": "[^"]*"')
STACK_TRACE = re.compile(r'"stackTrace": "(?:[^"\\]|\\.)*"')


def wait_terminal(http: httpx.Client, group_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        body: dict[str, Any] = http.get(f"/jobs/localization/groups/{group_id}").json()
        if body["status"] in {"completed", "partial", "failed", "cancelled"}:
            return body
        time.sleep(0.2)
    raise TimeoutError(group_id)


def drive_webhooks(
    stack: Stack, key: str, hook: Receiver, org: str
) -> dict[str, str | tuple[str, int]]:
    """Groups whose jobs deliver webhooks (recorded since webhook delivery exists)."""
    http = httpx.Client(base_url=stack.api_url, headers={"X-API-Key": key}, timeout=60)
    doc = {"title": "Hello {name}"}
    done = http.post(
        "/jobs/localization",
        json={"sourceLocale": "en", "targetLocales": ["de"], "data": doc, "callbackUrl": hook.url},
    ).json()
    wait_terminal(http, done["groupId"])
    job_id = done["jobs"][0]["id"]
    hook.wait_for(1)
    http.post(f"/jobs/localization/{job_id}/redeliver")
    hook.wait_for(2)

    engine = json.loads(
        subprocess.check_output(
            [sys.executable, "-m", "cli.main", "engines", "create", "--org", org, "--json",
             "--name", "broken", "--models", '[{"targetLocale": "ja", "provider": "none"}]'],
            env=stack.env,
        )
    )["id"]  # fmt: skip
    hook.default = Reply(503, {"Retry-After": "30"})  # the failure event waits to be retried
    failed = http.post(
        "/jobs/localization",
        json={"sourceLocale": "en", "targetLocales": ["ja"], "data": doc,
              "callbackUrl": hook.url, "engineId": engine},
    ).json()  # fmt: skip
    wait_terminal(http, failed["groupId"])
    hook.wait_for(3)
    http.post(f"/jobs/localization/groups/{failed['groupId']}/retry")
    hook.wait_for(4)
    wait_terminal(http, failed["groupId"])
    hook.default = Reply(200)
    return {
        "webhooks_group_completed": done["groupId"],
        "webhooks_job_completed": job_id,
        "webhooks_redelivery": f"{job_id}-redeliver",
        "webhooks_group_failed_then_retried": failed["groupId"],
        # The failed job's first run: its failure told to the group by the record activity
        # (recorded since that is so), its pending failure event superseded by the retry.
        "webhooks_job_failed_then_superseded": (failed["jobs"][0]["id"], 1),
    }


def drive_lean(stack: Stack, key: str, hook: Receiver) -> dict[str, str | tuple[str, int]]:
    """Lean groups (workflows/group.py LEAN_JOBS): a job whose translate activity made the
    webhook's first attempt and was done, and one whose first attempt failed, so its
    workflow waited and delivered attempt 2 (recorded since jobs are lean)."""
    http = httpx.Client(base_url=stack.api_url, headers={"X-API-Key": key}, timeout=60)
    doc = {"title": "Hello {name}"}
    done = http.post(
        "/jobs/localization",
        json={"sourceLocale": "en", "targetLocales": ["de", "fr", "ja"], "data": doc,
              "callbackUrl": hook.url},
    ).json()  # fmt: skip
    wait_terminal(http, done["groupId"])
    before = len(hook.received)
    hook.wait_for(before)
    hook.script = [Reply(503)]
    retried = http.post(
        "/jobs/localization",
        json={"sourceLocale": "en", "targetLocales": ["de"], "data": doc, "callbackUrl": hook.url},
    ).json()
    wait_terminal(http, retried["groupId"])
    hook.wait_for(before + 2)
    return {
        "lean_group_completed": done["groupId"],
        "lean_job_completed": done["jobs"][0]["id"],
        "lean_group_webhook_retried": retried["groupId"],
        "lean_job_webhook_retried": retried["jobs"][0]["id"],
    }


def drive_stages(stack: Stack, key: str) -> dict[str, str | tuple[str, int]]:
    """A group whose pipeline runs aiReview and backTranslation: its job translates into a
    draft, runs both stages and finishes (recorded since the pipeline's stages exist)."""
    http = httpx.Client(base_url=stack.api_url, headers={"X-API-Key": key}, timeout=60)
    created = http.post(
        "/jobs/localization",
        json={"sourceLocale": "en", "targetLocales": ["de"], "data": {"title": "Hello {name}"},
              "pipelineConfig": {"aiReview": {"enabled": True, "threshold": 90},
                                 "backTranslation": {"enabled": True}}},
    ).json()  # fmt: skip
    wait_terminal(http, created["groupId"])
    return {
        "stages_group_completed": created["groupId"],
        "stages_job_completed": created["jobs"][0]["id"],
    }


def drive_review(stack: Stack, key: str, hook: Receiver) -> dict[str, str | tuple[str, int]]:
    """A group whose job waits for human review after aiReview: rejected once (translated
    again, aiReview run again), then approved with an edit that backTranslation checks;
    its review requests go out by webhook (recorded since humanReview exists)."""
    http = httpx.Client(base_url=stack.api_url, headers={"X-API-Key": key}, timeout=90)
    created = http.post(
        "/jobs/localization",
        json={"sourceLocale": "en", "targetLocales": ["de"], "data": {"title": "Hello {name}"},
              "callbackUrl": hook.url,
              "pipelineConfig": {"aiReview": {"enabled": True},
                                 "humanReview": {"enabled": True, "timeoutSeconds": 3600},
                                 "backTranslation": {"enabled": True}}},
    ).json()  # fmt: skip
    job_id = created["jobs"][0]["id"]
    reject = {"action": "reject", "comment": "Be formal"}
    approve = {"action": "approve", "data": {"title": "Guten Tag, {name}"}}
    for round_, action in ((1, reject), (2, approve)):
        for _ in range(600):  # awaiting review in this round (the row, not a stale list)
            job = http.get(f"/jobs/localization/{job_id}").json()
            waiting = [s for s in job["steps"] if s.get("status") == "waiting"]
            if job["status"] == "awaiting_review" and waiting and waiting[0]["rounds"] == round_:
                break
            time.sleep(0.2)
        http.post(f"/jobs/localization/{job_id}/review", json=action).raise_for_status()
    wait_terminal(http, created["groupId"])
    return {"review_group_completed": created["groupId"], "review_job_completed": job_id}


def drive_outbox(stack: Stack, key: str, org: str) -> dict[str, str | tuple[str, int]]:
    """A group whose workflow closes once its jobs have, then is retried: the retry starts
    a later run (update-with-start) that knows the finished job. And the reconciler's own
    history. (Recorded since the outbox and retry at any age exist.)"""
    http = httpx.Client(base_url=stack.api_url, headers={"X-API-Key": key}, timeout=60)
    engine = json.loads(
        subprocess.check_output(
            [sys.executable, "-m", "cli.main", "engines", "create", "--org", org, "--json",
             "--name", "broken-later", "--models",
             '[{"targetLocale": "ja", "provider": "none"}, {"provider": "pseudo"}]'],
            env=stack.env,
        )
    )["id"]  # fmt: skip
    created = http.post(
        "/jobs/localization",
        json={"sourceLocale": "en", "targetLocales": ["de", "ja"],
              "data": {"title": "Hello {name}"}, "engineId": engine},
    ).json()  # fmt: skip
    group_id = created["groupId"]
    wait_terminal(http, group_id)
    asyncio.run(wait_closed(stack, group_id))
    http.patch(f"/engines/{engine}", json={"models": [{"provider": "pseudo"}]})
    http.post(f"/jobs/localization/groups/{group_id}/retry").raise_for_status()
    wait_terminal(http, group_id)
    return {
        "outbox_group_closed_after_jobs": (group_id, 1),  # (workflow id, run: 1 = first)
        "outbox_group_later_run_retried": (group_id, 2),
        "outbox_reconciler": "tolk-reconciler",
    }


async def wait_closed(stack: Stack, workflow_id: str) -> None:
    client = await Client.connect(
        stack.settings.temporal_target, namespace=stack.settings.temporal_namespace
    )
    handle = client.get_workflow_handle(workflow_id)
    for _ in range(300):
        if (await handle.describe()).status != WorkflowExecutionStatus.RUNNING:
            return
        await asyncio.sleep(0.2)
    raise TimeoutError(workflow_id)


async def dump(stack: Stack, ids: dict[str, str | tuple[str, int]]) -> list[str]:
    """Write each history not recorded yet; a file that exists stays as it is (it proves
    that executions started by the code of its time still replay). ``(id, n)``: the n-th
    run of that workflow id. A workflow that runs on (the reconciler) is recorded so far."""
    client = await Client.connect(
        stack.settings.temporal_target, namespace=stack.settings.temporal_namespace
    )
    written = []
    for name, target in ids.items():
        path = HERE / f"{name}.json"
        if path.exists():
            continue
        workflow_id, nth = target if isinstance(target, tuple) else (target, 0)
        run_id = None
        if nth:
            runs = [w.run_id async for w in client.list_workflows(f"WorkflowId = '{workflow_id}'")]
            run_id = list(reversed(runs))[nth - 1]  # listed newest first
        handle = client.get_workflow_handle(workflow_id, run_id=run_id)
        for _ in range(100):  # let groups close, so whole runs are recorded
            if workflow_id == "tolk-reconciler":
                break
            if (await handle.describe()).status != WorkflowExecutionStatus.RUNNING:
                break
            await asyncio.sleep(0.2)
        history = await handle.fetch_history()
        text = json.dumps(history.to_json_dict(), indent=1) + "\n"
        path.write_text(scrub(text))
        written.append(name)
    return written


def scrub(text: str) -> str:
    """Worker identities name a process and host, and a failure's stack trace the paths of
    the machine that recorded it; replay needs neither."""
    text = IDENTITY.sub('"identity": "tolk-worker"', text)
    return STACK_TRACE.sub('"stackTrace": ""', text)


def main() -> None:
    ca = trustme.CA()
    with tempfile.TemporaryDirectory(prefix="tolk-histories-") as tmp:
        ca_file = Path(tmp) / "ca.pem"
        ca.cert_pem.write_to_path(str(ca_file))
        stack, _ = own_stack(
            Path(tmp),
            TOLK_GROUPS_LINGER_SECONDS="2",
            TOLK_RECONCILE_INTERVAL_SECONDS="1",
            TOLK_WEBHOOKS_CA_FILE=str(ca_file),
            TOLK_WEBHOOKS_ALLOWED_HOSTS='["127.0.0.2"]',
            TOLK_WEBHOOKS_RETRY_DELAYS_SECONDS="[0.2, 0.2]",
        )
        try:
            with Receiver(ca) as hook:
                org_id = json.loads(
                    subprocess.check_output(
                        [sys.executable, "-m", "cli.main", "orgs", "create", "hooks", "--json"],
                        env=stack.env,
                    )
                )["id"]
                hooks_key = json.loads(
                    subprocess.check_output(
                        [sys.executable, "-m", "cli.main", "keys", "create", "--org", org_id,
                         "--json"],
                        env=stack.env,
                    )
                )["key"]  # fmt: skip
                ids: dict[str, str | tuple[str, int]] = {}
                ids.update(drive_webhooks(stack, hooks_key, hook, org_id))
                ids.update(drive_outbox(stack, hooks_key, org_id))
                ids.update(drive_stages(stack, hooks_key))
                ids.update(drive_review(stack, hooks_key, hook))
                ids.update(drive_lean(stack, hooks_key, hook))
                written = asyncio.run(dump(stack, ids))
        finally:
            stack.stop()
    print("recorded:", ", ".join(sorted(written)) or "nothing new")


if __name__ == "__main__":
    main()
