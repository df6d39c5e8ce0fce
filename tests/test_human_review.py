"""The humanReview stage: its vocabulary in the contract (status, counts, stream and webhook
events), the event log and memo that carry each entry into awaiting_review, and (on the
real stack) jobs that wait for a person."""

from __future__ import annotations

from typing import Any

import contract
from api.progress.messages import build_message
from workflows.event_log import decode_memo, encode_memo, latest_statuses, snapshot

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
