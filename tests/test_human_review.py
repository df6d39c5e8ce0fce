"""The humanReview stage: its vocabulary in the contract (status, counts, stream and webhook
events), the event log and memo that carry each entry into awaiting_review, and (on the
real stack) jobs that wait for a person."""

from __future__ import annotations

import asyncio
import json
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
from sqlmodel import select
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

import contract
from api.progress.messages import build_message
from localization.review_edit import chip_segments, edit_problems
from stack import Stack
from store import reviews
from store.db import Database
from store.tables import Delivery, Job, Review
from tests.conftest import wait_for_group
from tests.receiver import Receiver, Reply
from tests.test_control import _list_ids, temporal_cli
from tests.test_progress import collect_ws, ws_url
from tests.test_stages import DOC, submit
from workflows.event_log import decode_memo, encode_memo, latest_statuses, snapshot
from workflows.messages import REVIEW_UPDATE, ReviewInput

REVIEWED = {"aiReview": {"enabled": True}, "humanReview": {"enabled": True}}

JOBS = ["ljb_a", "ljb_b"]


def test_a_job_awaiting_review_keeps_its_group_processing_and_is_counted() -> None:
    assert contract.AWAITING_REVIEW in contract.JOB_STATUSES
    assert contract.AWAITING_REVIEW not in contract.TERMINAL
    statuses = [contract.COMPLETED, contract.AWAITING_REVIEW]
    assert contract.group_status(statuses) == contract.GROUP_PROCESSING
    assert contract.group_status([contract.QUEUED, contract.AWAITING_REVIEW]) == (
        contract.GROUP_PROCESSING
    )
    assert contract.counts(statuses)["awaitingReviewJobs"] == 1
    assert contract.counts(statuses)["completedJobs"] == 1
    assert contract.stream_event(contract.AWAITING_REVIEW) == "job.review_requested"
    assert contract.webhook_event(contract.AWAITING_REVIEW) == "translation.review_requested"
    assert contract.webhook_event(contract.COMPLETED) == "translation.completed"


def test_each_entry_into_review_is_a_logged_event_and_old_memos_still_decode() -> None:
    log: list[list[Any]] = [
        ["ljb_a", contract.AWAITING_REVIEW],
        ["ljb_a", contract.AWAITING_REVIEW],  # a reject, then review again
        ["ljb_b", contract.FAILED],
        ["ljb_a", contract.COMPLETED],
        [None, contract.GROUP_PARTIAL],
    ]
    memo = encode_memo(JOBS, log)
    assert memo == {"l": [[0, "r"], [0, "r"], [1, "f"], [0, "c"], [-1, "P"]]}
    assert decode_memo(memo, JOBS) == log
    # A memo written before human review existed decodes as it always did.
    assert decode_memo({"l": [[1, "w"], [0, "x"], [-1, "P"]]}, JOBS) == [
        ["ljb_b", contract.COMPLETED_WITH_WARNINGS],
        ["ljb_a", contract.CANCELLED],
        [None, contract.GROUP_PARTIAL],
    ]
    assert latest_statuses(log[:2]) == {"ljb_a": contract.AWAITING_REVIEW}


def test_the_stream_message_of_an_entry_into_review() -> None:
    snap = snapshot(
        "ljg_x",
        [
            ("ljb_a", "de", contract.AWAITING_REVIEW, None),
            ("ljb_b", "fr", contract.PROCESSING, None),
        ],
    )
    assert snap["awaitingReviewJobs"] == 1 and snap["status"] == contract.GROUP_PROCESSING
    message = build_message(["ljb_a", contract.AWAITING_REVIEW], 1, snap)
    assert message.type == "job.review_requested"
    assert {k: message.body[k] for k in ("type", "jobId", "locale")} == {
        "type": "job.review_requested",
        "jobId": "ljb_a",
        "locale": "de",
    }
    assert "error" not in message.body


def test_an_edit_must_keep_the_structure_and_every_placeholder_and_tag() -> None:
    good = {"title": "Hallo {name}", "body": "Öffne den <b>Kurs</b> jetzt"}
    assert edit_problems(DOC, good) == {}
    problems = edit_problems(DOC, {"title": "Hallo", "body": "Öffne den Kurs</b>", "x": "y"})
    assert sorted(problems) == ["body", "title", "x"]
    assert "{name}" in problems["title"]
    assert edit_problems(DOC, {"title": "Hallo {name}"}) == {
        "body": "missing: the source has this key"
    }
    assert list(edit_problems(DOC, ["Hallo {name}"])) == [""]
    # A reviewer reads the placeholders and tags themselves, not the check's numbers.
    twice = edit_problems(DOC, {**good, "title": "Hallo {name} {name}"})
    assert twice == {"title": "{name} repeated"}
    assert edit_problems(DOC, {**good, "body": "Öffne den Kurs</b>"}) == {"body": "missing <b>"}


def test_the_chips_a_reviewer_sees_are_the_tokens_an_edit_must_keep() -> None:
    text = " Öffne <b>{count, plural, one {# Kurs} other {# Kurse}}</b> "
    pieces = chip_segments(text)
    assert "".join(piece for piece, _ in pieces) == text
    chips = [piece for piece, token in pieces if token]
    assert chips == ["<b>", "{count, plural, one {", "#", "} other {", "#", "}}", "</b>"]
    # Dropping any one chip is what the edit check refuses.
    source = {"body": text}
    for index, (_, token) in enumerate(pieces):
        kept = "".join(piece for i, (piece, _) in enumerate(pieces) if i != index)
        assert bool(edit_problems(source, {"body": kept})) == token, (index, kept)
    assert chip_segments("") == [] and chip_segments("plain") == [("plain", False)]


# --- on the real stack ---------------------------------------------------------------------


def job_of(client: httpx.Client, job_id: str) -> dict[str, Any]:
    resp = client.get(f"/jobs/localization/{job_id}")
    assert resp.status_code == 200, resp.text
    job: dict[str, Any] = resp.json()
    return job


def wait_for_status(
    client: httpx.Client, job_id: str, status: str, timeout: float = 120, rounds: int = 1
) -> dict[str, Any]:
    """The job once it has ``status`` (awaiting_review: in review round ``rounds``)."""
    deadline = time.monotonic() + timeout
    job: dict[str, Any] = {}
    while time.monotonic() < deadline:
        job = job_of(client, job_id)
        waiting = [s for s in job["steps"] if s["stepId"] == "humanReview"]
        if job["status"] == status and (
            status != "awaiting_review" or (waiting and waiting[0].get("rounds") == rounds)
        ):
            return job
        assert job["status"] not in contract.TERMINAL or status in contract.TERMINAL, job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} not {status} after {timeout}s: {job}")


def human_step(job: dict[str, Any]) -> dict[str, Any]:
    found = [s for s in job["steps"] if s["stepId"] == "humanReview"]
    assert len(found) == 1, job["steps"]
    return found[0]


def review(client: httpx.Client, job_id: str, **body: Any) -> httpx.Response:
    return client.post(f"/jobs/localization/{job_id}/review", json=body, timeout=90)


def test_a_reviewed_group_waits_for_each_approval_then_completes(
    client: httpx.Client, stack: Stack, api_key: str, receiver: Callable[..., Receiver]
) -> None:
    hook = receiver()
    created = submit(client, REVIEWED, targetLocales=["de", "fr", "ja"], callbackUrl=hook.url)
    group_id, job_ids = created["groupId"], [j["id"] for j in created["jobs"]]
    streamed: list[Any] = []
    stream = threading.Thread(
        target=lambda: streamed.extend(
            asyncio.run(collect_ws(ws_url(stack, group_id), {"X-API-Key": api_key}))[0]
        )
    )
    stream.start()
    waiting = {job_id: wait_for_status(client, job_id, "awaiting_review") for job_id in job_ids}
    for job in waiting.values():
        assert job["draftData"] is not None and job["outputData"] is None
        human = [s for s in job["steps"] if s["stepId"] == "humanReview"]
        assert human[0]["status"] == "waiting" and human[0]["reviewDueAt"]
    group = client.get(f"/jobs/localization/groups/{group_id}").json()
    assert group["status"] == "processing" and group["awaitingReviewJobs"] == 3
    listed = client.get("/reviews", params={"groupId": group_id}).json()
    assert sorted(item["id"] for item in listed["items"]) == sorted(job_ids)
    assert all(item["reviewDueAt"] for item in listed["items"])
    assert client.get("/reviews", params={"groupId": group_id, "targetLocale": "fr"}).json()[
        "items"
    ] == [i for i in listed["items"] if i["targetLocale"] == "fr"]
    hook.wait_for(3)
    requested = [json.loads(r.body) for r in hook.received]
    assert sorted(b["jobId"] for b in requested) == sorted(job_ids)
    assert {b["type"] for b in requested} == {"translation.review_requested"}
    assert all("data" not in b for b in requested)

    de, fr, ja = job_ids
    edit = {"title": "Hallo {name}, bearbeitet", "body": "Öffne den <b>Kurs</b> jetzt"}
    assert review(client, de, action="approve", data=edit).status_code == 202
    assert review(client, fr, action="approve").status_code == 202
    rejected = review(client, ja, action="reject", comment="Use the polite form")
    assert rejected.status_code == 202, rejected.text
    wait_for_status(client, ja, "awaiting_review", rounds=2)
    assert client.get(f"/jobs/localization/groups/{group_id}").json()["status"] == "processing"
    assert review(client, ja, action="approve").status_code == 202
    final = wait_for_group(client, group_id, timeout=120)
    assert final["status"] == "completed", final
    done = {job_id: job_of(client, job_id) for job_id in job_ids}
    assert done[de]["outputData"] == edit
    assert done[fr]["outputData"] == waiting[fr]["draftData"]  # the AI output, as reviewed
    assert "draftData" not in done[fr]
    rounds = {job_id: human_step(done[job_id]) for job_id in job_ids}
    assert rounds[ja]["rounds"] == 2 and rounds[de]["rounds"] == 1
    assert rounds[de]["action"] == "approve" and rounds[de]["reviewer"]
    stream.join(timeout=120)
    events = [m for m in streamed if m["type"] != "snapshot"]
    kinds = [(e["type"], e.get("jobId")) for e in events]
    assert kinds.count(("job.review_requested", ja)) == 2
    assert kinds.count(("job.review_requested", de)) == 1
    assert events[-1]["type"] == "group.completed"
    last_completion = max(i for i, e in enumerate(events) if e["type"] == "job.completed")
    assert last_completion == len(events) - 2
    ids = [m for m in streamed if m["type"] == "job.review_requested"]
    assert all(m["locale"] for m in ids)


def test_back_translation_runs_once_after_the_approval_on_the_approved_output(
    client: httpx.Client,
) -> None:
    staged = {**REVIEWED, "backTranslation": {"enabled": True}}
    edited, plain = submit(client, staged), submit(client, staged)
    edited_id, plain_id = edited["jobs"][0]["id"], plain["jobs"][0]["id"]
    first = wait_for_status(client, edited_id, "awaiting_review")
    assert [s["stepId"] for s in first["steps"]] == ["translate", "aiReview", "humanReview"]
    rejected = review(client, edited_id, action="reject", comment="Use the polite form")
    assert rejected.status_code == 202, rejected.text
    second = wait_for_status(client, edited_id, "awaiting_review", rounds=2)
    # The reject translated again and reran aiReview; backTranslation waits for approval.
    # The rejected round's records stay, with their round, and their usage still counts.
    assert [(s["stepId"], s.get("round")) for s in second["steps"]] == [
        ("translate", 1),
        ("aiReview", 1),
        ("translate", None),
        ("aiReview", None),
        ("humanReview", None),
    ]
    assert second["usage"]["providerCalls"] > first["usage"]["providerCalls"] > 0, (
        first["usage"],
        second["usage"],
    )
    edit = {"title": "Guten Tag, {name}", "body": "Öffnen Sie den <b>Kurs</b> jetzt"}
    approved = review(client, edited_id, action="approve", data=edit)
    assert approved.status_code == 202, approved.text
    wait_for_status(client, plain_id, "awaiting_review")
    assert review(client, plain_id, action="approve").status_code == 202
    order = ["translate", "aiReview", "humanReview", "backTranslation"]
    for created in (edited, plain):
        assert wait_for_group(client, created["groupId"], timeout=120)["status"] == "completed"
    done = job_of(client, edited_id)
    assert [s["stepId"] for s in done["steps"] if "round" not in s] == order, done["steps"]
    assert [s["stepId"] for s in done["steps"] if s.get("round") == 1] == [
        "translate",
        "aiReview",
    ]
    assert human_step(done)["rounds"] == 2 and human_step(done)["action"] == "approve"
    back = next(s for s in done["steps"] if s["stepId"] == "backTranslation")
    assert back["status"] == "completed"
    assert back["drift"]["none"] == len(DOC)  # it checked the edit, which it kept
    assert done["outputData"] == edit
    unedited = job_of(client, plain_id)
    assert [s["stepId"] for s in unedited["steps"]] == order
    assert unedited["outputData"] is not None and unedited["outputData"] != edit


def test_a_review_timeout_continues_with_a_warning_or_fails_the_job(client: httpx.Client) -> None:
    go_on = submit(client, {"humanReview": {"enabled": True, "timeoutSeconds": 3}})
    stop = submit(
        client, {"humanReview": {"enabled": True, "timeoutSeconds": 3, "onTimeout": "fail"}}
    )
    assert wait_for_group(client, go_on["groupId"], timeout=120)["status"] == "completed"
    job = job_of(client, go_on["jobs"][0]["id"])
    assert job["status"] == "completed_with_warnings", job
    assert [w["code"] for w in job["warnings"]] == ["review_timed_out"]
    assert wait_for_group(client, stop["groupId"], timeout=120)["status"] == "failed"
    failed = job_of(client, stop["jobs"][0]["id"])
    assert failed["status"] == "failed" and failed["error"] == contract.REVIEW_TIMED_OUT_ERROR
    assert {k: human_step(failed).get(k) for k in ("status", "action")} == {
        "status": "failed",
        "action": "timeout",
    }


def test_a_bad_edit_is_400_naming_the_key_and_a_job_not_waiting_is_409(
    client: httpx.Client,
) -> None:
    created = submit(client, {"humanReview": {"enabled": True}})
    job_id = created["jobs"][0]["id"]
    waiting = wait_for_status(client, job_id, "awaiting_review")
    broken = {"title": "Hallo", "body": "Öffne den <b>Kurs</b> jetzt"}
    resp = review(client, job_id, action="approve", data=broken)
    assert resp.status_code == 400, resp.text
    assert "title" in resp.json()["message"] and "body" not in resp.json()["message"]
    assert review(client, job_id, action="reject").status_code == 400  # no comment
    assert job_of(client, job_id)["status"] == "awaiting_review"  # nothing changed
    assert review(client, job_id, action="approve").status_code == 202
    wait_for_group(client, created["groupId"], timeout=120)
    again = review(client, job_id, action="approve")
    assert again.status_code == 409, again.text
    assert job_of(client, job_id)["outputData"] == waiting["draftData"]
    plain = submit(client, {})
    wait_for_group(client, plain["groupId"], timeout=120)
    assert review(client, plain["jobs"][0]["id"], action="approve").status_code == 409


def test_the_third_reject_fails_the_job(client: httpx.Client) -> None:
    created = submit(client, {"humanReview": {"enabled": True}})
    job_id = created["jobs"][0]["id"]
    for round_ in (1, 2, 3):
        wait_for_status(client, job_id, "awaiting_review", rounds=round_)
        assert review(client, job_id, action="reject", comment=f"no ({round_})").status_code == 202
    assert wait_for_group(client, created["groupId"], timeout=120)["status"] == "failed"
    job = job_of(client, job_id)
    assert job["error"] == contract.REVIEW_REJECTED_OUT
    # No ended job shows a review still waiting: the record ends with the job.
    human = human_step(job)
    assert human["status"] == "failed" and human["action"] == "reject", human
    assert human["rounds"] == 3 and "reviewDueAt" not in human and human["completedAt"]
    # Every round's translation is kept, with its round; the last one is current.
    translated = [s for s in job["steps"] if s["stepId"] == "translate"]
    assert [s.get("round") for s in translated] == [1, 2, None], job["steps"]


def test_a_worker_killed_while_jobs_wait_changes_nothing_and_a_review_waits_for_one(
    client: httpx.Client, stack: Stack
) -> None:
    created = submit(client, REVIEWED, targetLocales=["de", "fr"])
    first, second = (j["id"] for j in created["jobs"])
    before = {
        job_id: wait_for_status(client, job_id, "awaiting_review") for job_id in (first, second)
    }
    stack.kill("worker", signal.SIGKILL)
    try:
        time.sleep(2)  # nothing is running for these jobs: nothing can be lost
        for job_id, job in before.items():
            now = job_of(client, job_id)
            assert now["status"] == "awaiting_review" and now["draftData"] == job["draftData"]
        # A review sent while every worker is down is taken once one returns.
        answers: list[httpx.Response] = []
        sending = threading.Thread(
            target=lambda: answers.append(review(client, first, action="approve"))
        )
        sending.start()
        time.sleep(2)
        assert not answers, "answered with no worker to take the review"
    finally:
        stack.start_worker()
    sending.join(timeout=120)
    assert answers and answers[0].status_code == 202, answers
    assert review(client, second, action="approve").status_code == 202
    assert wait_for_group(client, created["groupId"], timeout=120)["status"] == "completed"
    for job_id, job in before.items():
        assert job_of(client, job_id)["outputData"] == job["draftData"]


def test_an_operator_reviews_with_the_temporal_cli(client: httpx.Client, stack: Stack) -> None:
    created = submit(client, {"humanReview": {"enabled": True}})
    job_id = created["jobs"][0]["id"]
    wait_for_status(client, job_id, "awaiting_review")
    # Operators find the jobs waiting for a review by a search attribute, and see the round.
    assert job_id in _list_ids(stack, "TolkJobStatus='awaiting_review'", expect=job_id)
    metadata = temporal_cli(
        stack,
        "workflow",
        "query",
        "--workflow-id",
        job_id,
        "--name",
        "__temporal_workflow_metadata",
    )
    assert "awaiting review, round 1 of 3" in metadata
    edit = {"title": "Servus {name}", "body": "Öffne den <b>Kurs</b>"}
    update = ["workflow", "update", "execute", "--workflow-id", job_id, "--name", "review"]
    temporal_cli(stack, *update, "--input", json.dumps({"action": "approve", "data": edit}))
    assert wait_for_group(client, created["groupId"], timeout=120)["status"] == "completed"
    job = job_of(client, job_id)
    assert job["outputData"] == edit
    assert human_step(job)["reviewer"] == "temporal"
    # Once the job ended, its workflow says how.
    ended = _list_ids(stack, "TolkJobStatus='completed'", expect=job_id)
    assert job_id in ended and job_id not in _list_ids(stack, "TolkJobStatus='awaiting_review'")


def test_a_cancel_while_a_job_awaits_review_ends_it_cancelled(client: httpx.Client) -> None:
    created = submit(client, {"humanReview": {"enabled": True}})
    job_id = created["jobs"][0]["id"]
    wait_for_status(client, job_id, "awaiting_review")
    resp = client.post(f"/jobs/localization/groups/{created['groupId']}/cancel")
    assert resp.status_code == 202, resp.text
    assert wait_for_group(client, created["groupId"], timeout=120)["status"] == "cancelled"
    job = job_of(client, job_id)
    assert job["status"] == "cancelled" and job["outputData"] is None
    human = human_step(job)
    assert human["status"] == "skipped" and "reviewDueAt" not in human, human
    assert review(client, job_id, action="approve").status_code == 409


def test_the_structure_an_edit_keeps_is_the_sources_down_to_arrays_and_values() -> None:
    source = {"a": ["x {n}", "y"], "b": {"c": 1, "d": None}, "e": {}}
    edit = {"a": ["X {n}", "Y"], "b": {"c": 1, "d": None}, "e": {}}
    assert edit_problems(source, edit) == {}
    assert contract.structure_digest(edit) == contract.structure_digest(source)
    changed = {
        "an array became an object": {**edit, "a": {"0": "X {n}", "1": "Y"}},
        "a number changed": {**edit, "b": {"c": 2, "d": None}},
        "a number became a boolean": {**edit, "b": {"c": True, "d": None}},
        "an empty object became an array": {**edit, "e": []},
        "a key was added": {**edit, "f": "z"},
    }
    for why, bad in changed.items():
        assert edit_problems(source, bad), why
        assert contract.structure_digest(bad) != contract.structure_digest(source), why
    assert edit_problems(source, changed["an array became an object"]) == {
        "a": "must be an array, as in the source"
    }
    # Only the key where a difference starts is named, not every key below it.
    assert edit_problems(source, {**edit, "b": None}) == {
        "b": "must be an object, as in the source"
    }
    assert edit_problems(source, {k: v for k, v in edit.items() if k != "b"}) == {
        "b": "missing: the source has this key"
    }
    # The text of strings is free: only structure counts.
    assert contract.structure_digest({"a": ["", ""], "b": {"c": 1, "d": None}, "e": {}}) == (
        contract.structure_digest(source)
    )


async def _update(stack: Stack, job_id: str, review: ReviewInput) -> str:
    client = await Client.connect(
        stack.settings.temporal_target, namespace=stack.settings.temporal_namespace
    )
    handle = client.get_workflow_handle(job_id)
    return await handle.execute_update(REVIEW_UPDATE, review, result_type=str)


def _refusal(stack: Stack, job_id: str, review: ReviewInput) -> str:
    """The message the workflow refuses ``review`` with."""
    try:
        asyncio.run(_update(stack, job_id, review))
    except WorkflowUpdateFailedError as err:
        return str(getattr(err.cause, "message", err.cause))
    raise AssertionError(f"the review {review} was taken")


def test_the_review_update_refuses_a_bad_edit_or_an_old_round_before_history(
    client: httpx.Client, stack: Stack
) -> None:
    created = submit(client, {"humanReview": {"enabled": True}})
    job_id = created["jobs"][0]["id"]
    wait_for_status(client, job_id, "awaiting_review")
    # The row says awaiting_review as the activity ends; the workflow holds the source's
    # structure digest once it has taken the activity's answer, in the workflow task that
    # also sets TolkJobStatus. Before that an edit is refused by the store activity instead.
    _list_ids(stack, "TolkJobStatus='awaiting_review'", expect=job_id)
    reshaped = {"title": ["Servus {name}"], "body": "Öffne den <b>Kurs</b>"}
    refused = _refusal(stack, job_id, ReviewInput(action="approve", data=reshaped))
    assert refused == contract.EDIT_STRUCTURE
    assert "comment" in _refusal(stack, job_id, ReviewInput(action="reject"))
    # Right structure, a placeholder dropped: the store activity names the key.
    dropped = {"title": "Servus", "body": "Öffne den <b>Kurs</b>"}
    refused = _refusal(stack, job_id, ReviewInput(action="approve", data=dropped))
    assert refused.startswith("data: title:") and "{name}" in refused
    rejected = review(client, job_id, action="reject", comment="Use the polite form")
    assert rejected.status_code == 202, rejected.text
    wait_for_status(client, job_id, "awaiting_review", rounds=2)
    # A review made in round 1 cannot approve the translation of round 2.
    stored = human_step(job_of(client, job_id))
    assert stored["rounds"] == 2
    old = ReviewInput(action="approve", review_id="lrv_round1", round=1)
    assert _refusal(stack, job_id, old) == contract.REVIEW_ROUND_PASSED
    assert job_of(client, job_id)["status"] == "awaiting_review"
    history = asyncio.run(_history_text(stack, job_id))
    assert "Servus {name}" not in history  # the refused edit never entered history
    assert review(client, job_id, action="approve").status_code == 202
    assert wait_for_group(client, created["groupId"], timeout=120)["status"] == "completed"


async def _history_text(stack: Stack, job_id: str) -> str:
    client = await Client.connect(
        stack.settings.temporal_target, namespace=stack.settings.temporal_namespace
    )
    history = await client.get_workflow_handle(job_id).fetch_history()
    return history.to_json()


def test_a_retry_of_a_failed_reviewed_job_is_not_held_by_its_review_webhooks(
    client: httpx.Client, receiver: Callable[..., Receiver]
) -> None:
    """A failed job's run is cancelled by a retry of its group, which waits for that run
    to close: review-requested webhooks still being retried (the receiver asked for an
    hour) are dropped, not waited for."""
    hook = receiver()
    hook.default = Reply(503, headers={"Retry-After": "3600"})
    stages = {"humanReview": {"enabled": True, "timeoutSeconds": 1, "onTimeout": "fail"}}
    created = submit(client, stages, callbackUrl=hook.url)
    group_id, job_id = created["groupId"], created["jobs"][0]["id"]
    assert wait_for_group(client, group_id, timeout=120)["status"] == "failed"
    hook.wait_for(2)  # the review request and the failure, each told to retry in an hour
    hook.default = Reply(200)
    retried = client.post(f"/jobs/localization/groups/{group_id}/retry", timeout=90)
    assert retried.status_code == 202, retried.text
    wait_for_status(client, job_id, "awaiting_review")


def test_a_review_stored_twice_under_one_id_is_stored_once(stack: Stack, api_key: str) -> None:
    """The CLI's review is stored by an activity under an id derived from its attempt: a
    second attempt after the first committed finds it and stores nothing more."""
    http = httpx.Client(base_url=stack.api_url, headers={"X-API-Key": api_key}, timeout=30)
    created = submit(http, {"humanReview": {"enabled": True}})
    job_id = created["jobs"][0]["id"]
    wait_for_status(http, job_id, "awaiting_review")
    asyncio.run(_store_twice(stack, job_id))


async def _store_twice(stack: Stack, job_id: str) -> None:
    db = Database(stack.settings.database_url)
    try:
        async with db.session() as session:
            job = await session.get(Job, job_id)
        assert job is not None
        ids = []
        for _ in range(2):
            async with db.writing() as session:
                stored = await reviews.add_review(
                    session,
                    job,
                    round_=1,
                    action="approve",
                    comment=None,
                    data={"title": "Hallo {name}", "body": "Öffne den <b>Kurs</b> jetzt"},
                    reviewer="temporal",
                    review_id="rvw_attemptAttempt01",
                )
                ids.append(stored.id)
        async with db.session() as session:
            rows = (await session.exec(select(Review).where(Review.job_id == job_id))).all()
        assert ids == ["rvw_attemptAttempt01"] * 2 and len(rows) == 1
    finally:
        await db.close()


def test_a_redelivery_after_the_workflow_is_gone_sends_the_terminal_event_not_a_review_request(
    client: httpx.Client, stack: Stack, receiver: Callable[..., Receiver]
) -> None:
    """Once a job's workflow is gone (retention), a redelivery takes the terminal event's
    id from the delivery log, where a review request's rows may come last."""
    hook = receiver()
    created = submit(client, {"humanReview": {"enabled": True}}, callbackUrl=hook.url)
    job_id = created["jobs"][0]["id"]
    wait_for_status(client, job_id, "awaiting_review")
    assert review(client, job_id, action="approve").status_code == 202
    assert wait_for_group(client, created["groupId"], timeout=120)["status"] == "completed"
    hook.wait_for(2)
    sent = {json.loads(r.body)["type"]: r.headers["webhook-id"] for r in hook.received}
    terminal, requested = sent["translation.completed"], sent["translation.review_requested"]
    asyncio.run(_log_late_review_request(stack, job_id, requested))
    temporal_cli(stack, "workflow", "delete", "--workflow-id", job_id, "--yes")
    asyncio.run(_until_gone(stack, job_id))
    again = client.post(f"/jobs/localization/{job_id}/redeliver")
    assert again.status_code == 202, again.text
    assert again.json()["eventId"] == terminal != requested


async def _log_late_review_request(stack: Stack, job_id: str, event_id: str) -> None:
    """A retry of the review request recorded after the terminal event's delivery."""
    db = Database(stack.settings.database_url)
    try:
        async with db.writing() as session:
            job = await session.get(Job, job_id)
            assert job is not None
            session.add(
                Delivery(
                    organization_id=job.organization_id,
                    job_id=job_id,
                    event_id=event_id,
                    event_type="translation.review_requested",
                    series=1,
                    attempt=2,
                    outcome="delivered",
                )
            )
            await session.commit()
    finally:
        await db.close()


async def _until_gone(stack: Stack, job_id: str) -> None:
    client = await Client.connect(
        stack.settings.temporal_target, namespace=stack.settings.temporal_namespace
    )
    for _ in range(300):
        try:
            await client.get_workflow_handle(job_id).describe()
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                return
            raise
        await asyncio.sleep(0.2)
    raise AssertionError(f"{job_id} still there")
