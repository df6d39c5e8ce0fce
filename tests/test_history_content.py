"""No user content in workflow history, on any path: groups, jobs, webhook deliveries and
redeliveries; jobs that succeed, fail for good on a provider's refusal that quotes the
request, fail after retries of an outage that does, or fail on broken placeholders. Every
payload, failure message and stack trace of every history is decoded and searched for the
document's text."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
from temporalio.client import Client

from stack import Stack
from tests.conftest import wait_for_group
from tests.receiver import Receiver
from tests.test_llm import model, new_engine


def _texts(node: Any) -> Iterator[str]:
    """Every string in a history's JSON, payload data decoded."""
    if isinstance(node, dict):
        if "data" in node and "metadata" in node and isinstance(node["data"], str):
            try:
                yield base64.b64decode(node["data"]).decode("utf-8", "replace")
            except ValueError:
                yield node["data"]
        for value in node.values():
            yield from _texts(value)
    elif isinstance(node, list):
        for value in node:
            yield from _texts(value)
    elif isinstance(node, str):
        yield node


def histories(stack: Stack, workflow_ids: list[str]) -> dict[str, str]:
    """Every run's history of each workflow id, as searchable text."""

    async def fetch() -> dict[str, str]:
        client = await Client.connect(
            stack.settings.temporal_target, namespace=stack.settings.temporal_namespace
        )
        out: dict[str, str] = {}
        for workflow_id in workflow_ids:
            async for run in client.list_workflows(f"WorkflowId = '{workflow_id}'"):
                handle = client.get_workflow_handle(workflow_id, run_id=run.run_id)
                history = await handle.fetch_history()
                out[f"{workflow_id}/{run.run_id}"] = "\n".join(_texts(history.to_json_dict()))
        return out

    return asyncio.run(fetch())


def test_no_failure_path_writes_user_content_into_history(
    stack: Stack, client: httpx.Client, receiver: Callable[..., Receiver]
) -> None:
    marker = f"Zq{uuid.uuid4().hex[:10]}"
    data = {
        "title": f"Welcome {marker} to the course",
        "body": f"Hello {{{marker}_name}}, see <b>{marker}</b>",
        "list": [f"{marker} one", {"deep": f"{marker} two"}],
    }
    hook = receiver()
    engines = {
        "pseudo": None,  # the default engine
        "refusal": new_engine(client, ("openai", model("echo-refusal"))),
        "outage": new_engine(client, ("anthropic", model("echo-outage"))),
        "placeholders": new_engine(client, ("openai", model("break-placeholder"))),
    }
    groups: dict[str, dict[str, Any]] = {}
    for name, engine_id in engines.items():
        body: dict[str, Any] = {
            "sourceLocale": "en",
            "targetLocales": ["de"],
            "data": data if name != "placeholders" else {"only": data["body"]},
            "callbackUrl": hook.url,
        }
        if engine_id:
            body["engineId"] = engine_id
        created = client.post("/jobs/localization", json=body)
        assert created.status_code == 202, created.text
        groups[name] = wait_for_group(client, created.json()["groupId"], timeout=120)

    jobs = {
        name: client.get(f"/jobs/localization/{g['jobs'][0]['id']}").json()
        for name, g in groups.items()
    }
    assert jobs["pseudo"]["status"] == "completed"
    assert marker in json.dumps(jobs["pseudo"]["outputData"])
    for name in ("refusal", "outage", "placeholders"):
        assert jobs[name]["status"] == "failed", jobs[name]
    # The provider's own words, quoting the document, are kept where they belong: the
    # job's step record in the database (and so in the API), not its error.
    refusal_step = jobs["refusal"]["steps"][0]
    assert refusal_step["status"] == "failed"
    assert marker in refusal_step["fallbacks"][0]["error"]
    for job in jobs.values():
        assert marker not in (job["error"] or "")
    assert jobs["placeholders"]["error"].endswith("(placeholder_mismatch)")

    # Every terminal event was delivered (the failures too), and one is sent again.
    hook.wait_for(len(jobs))
    redelivered = client.post(f"/jobs/localization/{jobs['pseudo']['id']}/redeliver")
    assert redelivered.status_code == 202, redelivered.text
    hook.wait_for(len(jobs) + 1)
    assert any(marker in got.body.decode() for got in hook.received)  # the receiver gets it

    ids = [g["groupId"] for g in groups.values()] + [j["id"] for j in jobs.values()]
    ids.append(f"{jobs['pseudo']['id']}-redeliver")
    found = histories(stack, ids)
    assert len(found) >= len(ids)
    leaks = {
        run: text[max(0, text.find(marker) - 80) :][:200]
        for run, text in found.items()
        if marker in text
    }
    assert not leaks, leaks
