"""Nothing accepted is lost: SIGKILL the worker mid-group, start a new one, every job ends."""

from __future__ import annotations

import signal

import httpx

from stack import Stack
from tests.conftest import wait_for_group

LOCALES = ["de", "fr", "es", "it", "nl", "sv", "da", "fi", "pl", "cs", "hu", "ro"]


def test_worker_killed_mid_group_then_restarted_completes_every_job(
    stack: Stack, client: httpx.Client
) -> None:
    # Big enough that translation is still running when the worker dies.
    document = {
        f"section{i}": {f"line{j}": f"Line {j} of section {i}, {{user}}!" for j in range(200)}
        for i in range(20)
    }
    resp = client.post(
        "/jobs/localization",
        json={"sourceLocale": "en", "targetLocales": LOCALES, "data": document},
    )
    assert resp.status_code == 202, resp.text
    group_id = resp.json()["groupId"]

    stack.kill("worker", signal.SIGKILL)
    at_kill = client.get(f"/jobs/localization/groups/{group_id}").json()
    assert at_kill["status"] in {"pending", "processing"}, "the group must be in flight"
    unfinished = [job for job in at_kill["jobs"] if job["status"] in {"queued", "processing"}]
    assert unfinished, "some jobs must still be unfinished when the worker dies"

    stack.start_worker()
    group = wait_for_group(client, group_id, timeout=120)
    assert group["status"] == "completed", group
    assert group["completedJobs"] == len(LOCALES)
    for job in group["jobs"]:
        detail = client.get(f"/jobs/localization/{job['id']}").json()
        assert detail["status"] == "completed"
        assert list(detail["outputData"]) == list(document)
        assert detail["outputData"]["section3"]["line7"].count("{user}") == 1
