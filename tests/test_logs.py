"""JSON log lines from the real processes: a stack of its own started with
``TOLK_LOG_FORMAT=json`` runs one group, and its worker's and API's logs are JSON objects,
one a line, naming the group and the jobs they are about."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme

from stack import Stack
from tests.conftest import RECEIVER_HOST, new_org_key, stack_settings, wait_for_group
from tests.receiver import Receiver, Reply

pytestmark = pytest.mark.stack


@pytest.fixture(scope="module")
def json_stack(tmp_path_factory: pytest.TempPathFactory, webhook_ca: trustme.CA) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("jsonlogs")
    ca_file = root / "webhook-ca.pem"
    webhook_ca.cert_pem.write_to_path(str(ca_file))
    own = Stack(
        stack_settings(
            root,
            TOLK_LOG_FORMAT="json",
            TOLK_LOG_LEVEL="debug",  # the API's level (the worker logs from INFO)
            TOLK_WEBHOOKS_CA_FILE=str(ca_file),
            TOLK_WEBHOOKS_ALLOWED_HOSTS=json.dumps([RECEIVER_HOST]),
            TOLK_WEBHOOKS_RETRY_DELAYS_SECONDS=json.dumps([0.3, 0.3]),
        ),
        log_dir=root / "logs",
        headless=True,
    )
    try:
        own.start()
        yield own
    finally:
        own.stop()


def lines(stack: Stack, name: str) -> list[dict[str, Any]]:
    """Every line of a component's log, each of which must be one JSON object."""
    assert stack.log_dir is not None
    text = Path(stack.log_dir / f"{name}.log").read_text()
    parsed = [json.loads(line) for line in text.splitlines() if line.strip()]
    assert parsed and all(isinstance(entry, dict) for entry in parsed)
    for entry in parsed:
        assert {"time", "level", "logger", "message"} <= set(entry), entry
    return parsed


def test_worker_and_api_write_json_lines_with_the_group_and_job_ids(
    json_stack: Stack, receiver: Callable[..., Receiver]
) -> None:
    hook = receiver(Reply(500))  # the first attempt fails: the worker logs it
    _, key = new_org_key(json_stack, "Logged")
    with httpx.Client(
        base_url=json_stack.api_url, headers={"X-API-Key": key}, timeout=30
    ) as client:
        resp = client.post(
            "/jobs/localization",
            json={
                "sourceLocale": "en",
                "targetLocales": ["de", "fr"],
                "data": {"greeting": "Hello"},
                "callbackUrl": hook.url,
            },
        )
        assert resp.status_code == 202, resp.text
        group_id = resp.json()["groupId"]
        job_ids = {job["id"] for job in resp.json()["jobs"]}
        wait_for_group(client, group_id)
        hook.wait_for(3)
    json_stack.stop()  # flushes and closes the logs

    # The API: each request's line names the group it created or asked about.
    api = [entry for entry in lines(json_stack, "api") if entry["logger"] == "tolk.api.requests"]
    created = [entry for entry in api if entry["message"].startswith("POST /jobs/localization:")]
    assert [entry.get("group_id") for entry in created] == [group_id], created
    assert created[0]["message"].startswith("POST /jobs/localization: 202 in ")
    polled = [entry for entry in api if "/groups/{groupId}" in entry["message"]]
    assert polled and all(entry.get("group_id") == group_id for entry in polled)

    # The worker: the failed webhook attempt is logged with its job's id, and the SDK's
    # details are fields, not repeated in the message.
    worker = lines(json_stack, "worker")
    failed = [
        entry
        for entry in worker
        if entry["logger"] == "temporalio.activity" and entry["level"] == "WARNING"
    ]
    assert failed, worker[-5:]
    assert {entry.get("job_id") for entry in failed} <= job_ids
    assert any(entry.get("job_id") in job_ids for entry in failed)
    assert all("workflow_id" not in entry["message"] for entry in failed)
