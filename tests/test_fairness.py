"""Fairness between organizations: every group runs under its organization's fairness key,
which its jobs and their activities inherit, so Temporal dispatches the tasks of
organizations in turn (measured by ``bench/fairness.py``)."""

from __future__ import annotations

import asyncio
import json

import httpx
from temporalio.client import Client

from stack import Stack
from tests.conftest import wait_for_group
from tests.test_control import temporal_cli


async def _priorities(stack: Stack, workflow_ids: list[str]) -> list[tuple[int, str]]:
    client = await Client.connect(
        stack.settings.temporal_target, namespace=stack.settings.temporal_namespace
    )
    found = []
    for workflow_id in workflow_ids:
        described = await client.get_workflow_handle(workflow_id).describe()
        priority = described.raw_description.workflow_execution_info.priority
        found.append((priority.priority_key, priority.fairness_key))
    return found


def test_a_groups_workflows_run_under_its_organizations_fairness_key(
    client: httpx.Client, stack: Stack, org_key: tuple[str, str], other_key: str
) -> None:
    org_id = org_key[0]
    body = {"sourceLocale": "en", "targetLocales": ["de", "fr"], "data": {"t": "Hello"}}
    created = client.post("/jobs/localization", json=body).json()
    wait_for_group(client, created["groupId"])
    ids = [created["groupId"], *(job["id"] for job in created["jobs"])]
    group, *jobs = asyncio.run(_priorities(stack, ids))
    assert group == (2, org_id)  # groups' tasks go first; the key is the organization's
    assert jobs == [(3, org_id)] * 2  # the jobs inherit the key with their own priority
    # What the runbook tells an operator to look at.
    described = temporal_cli(
        stack, "workflow", "describe", "--workflow-id", created["groupId"], "-o", "json"
    )
    assert json.loads(described)["workflowExecutionInfo"]["priority"]["fairnessKey"] == org_id
    other = httpx.post(
        f"{stack.api_url}/jobs/localization", json=body, headers={"X-API-Key": other_key}
    ).json()
    (theirs,) = asyncio.run(_priorities(stack, [other["groupId"]]))
    assert theirs[1] != org_id and theirs[1].startswith("org_")
