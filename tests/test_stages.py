"""The stages after translate as steps of the job workflow, on the real stack: aiReview on
the pseudo engine and through the LLM stand-in (low scores, malformed reviews),
backTranslation through the stand-in, what the progress stream and the webhook say about a
staged job, and a cancel while a stage runs."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx

from localization.pricing import cost_usd
from stack import Stack
from tests.conftest import wait_for_group
from tests.fake_llm import FakeLLM
from tests.fake_llm_modes import GOOD_SCORE, LOW_SCORE
from tests.receiver import Receiver
from tests.test_progress import collect_ws, ws_url

DOC = {"title": "Hello {name}", "body": "Open the <b>course</b> now"}
KEYS = len(DOC)
PRICES = {"openai/priced": {"input": 2.0, "output": 8.0}}  # TOLK_LLM_PRICES in conftest.py


def model(mode: str) -> str:
    return f"{mode}:{uuid.uuid4().hex[:8]}"


def llm_engine(client: httpx.Client, name: str) -> str:
    models = [{"provider": "openai", "model": name}]
    resp = client.post(
        "/engines", json={"name": f"staged {uuid.uuid4().hex[:6]}", "models": models}
    )
    assert resp.status_code == 201, resp.text
    engine_id: str = resp.json()["id"]
    return engine_id


def submit(client: httpx.Client, pipeline: dict[str, Any], **extra: Any) -> dict[str, Any]:
    body = {"sourceLocale": "en", "targetLocales": ["de"], "data": DOC, "pipelineConfig": pipeline}
    resp = client.post("/jobs/localization", json={**body, **extra})
    assert resp.status_code == 202, resp.text
    created: dict[str, Any] = resp.json()
    return created


def finished_job(client: httpx.Client, created: dict[str, Any]) -> dict[str, Any]:
    wait_for_group(client, created["groupId"], timeout=120)
    job: dict[str, Any] = client.get(f"/jobs/localization/{created['jobs'][0]['id']}").json()
    return job


def step(job: dict[str, Any], step_id: str) -> dict[str, Any]:
    found = [s for s in job["steps"] if s["stepId"] == step_id]
    assert len(found) == 1, job["steps"]
    return found[0]


def test_ai_review_on_the_pseudo_engine_adds_its_step_and_keeps_the_output(
    client: httpx.Client,
) -> None:
    plain = finished_job(client, submit(client, {}))
    reviewed = finished_job(client, submit(client, {"aiReview": {"enabled": True}}))
    assert reviewed["status"] == "completed", reviewed
    assert reviewed["outputData"] == plain["outputData"]
    assert [s["stepId"] for s in reviewed["steps"]] == ["translate", "aiReview"]
    review = step(reviewed, "aiReview")
    assert review["status"] == "completed" and review["model"] == "pseudo"
    assert review["scoreMin"] == 100 and review["scoreMean"] == 100
    assert review["retranslated"] == 0
    assert review["startedAt"] <= review["completedAt"]
    assert "scoreMin" not in step(reviewed, "translate")  # figures only on their stage


def test_low_scores_are_retranslated_once_then_warned_about(
    client: httpx.Client, fake_llm: FakeLLM
) -> None:
    name = model("low-score")
    engine = llm_engine(client, name)
    job = finished_job(client, submit(client, {"aiReview": {"enabled": True}}, engineId=engine))
    assert job["status"] == "completed_with_warnings", job
    review = step(job, "aiReview")
    assert review["status"] == "completed"
    assert review["scoreMin"] == LOW_SCORE and review["retranslated"] == KEYS
    low = [w for w in job["warnings"] if w["code"] == "low_quality_score"]
    assert sorted(w["key"] for w in low) == sorted(DOC)
    # One translate call, one review, one re-translation, one review of it.
    assert len(fake_llm.calls(model=name)) == 4
    assert job["usage"]["providerCalls"] == 4


def test_a_failing_review_leaves_a_failed_step_and_a_warning_not_a_failed_job(
    client: httpx.Client, stack: Stack
) -> None:
    plain = finished_job(client, submit(client, {}))
    reviewer = f"openai/{model('bad-review')}"
    pipeline = {"aiReview": {"enabled": True, "model": reviewer}}
    job = finished_job(client, submit(client, pipeline))
    assert job["status"] == "completed_with_warnings", job
    assert job["outputData"] == plain["outputData"]  # the draft before the stage
    review = step(job, "aiReview")
    assert review["status"] == "failed" and review["error"]
    assert [w["code"] for w in job["warnings"]] == ["stage_failed"]
    assert "aiReview" in job["warnings"][0]["message"]


def test_back_translation_through_the_stand_in_grades_drift(client: httpx.Client) -> None:
    engine = llm_engine(client, model("good"))
    pipeline = {"aiReview": {"enabled": True}, "backTranslation": {"enabled": True}}
    job = finished_job(client, submit(client, pipeline, engineId=engine))
    assert job["status"] == "completed", job
    assert [s["stepId"] for s in job["steps"]] == ["translate", "aiReview", "backTranslation"]
    back = step(job, "backTranslation")
    assert back["status"] == "completed"
    assert back["drift"] == {"none": KEYS, "minor": 0, "major": 0, "critical": 0}
    assert step(job, "aiReview")["scoreMin"] == GOOD_SCORE


def test_drift_that_stays_after_its_correction_is_warned_about(client: httpx.Client) -> None:
    engine = llm_engine(client, model("low-score"))
    job = finished_job(
        client, submit(client, {"backTranslation": {"enabled": True}}, engineId=engine)
    )
    assert job["status"] == "completed_with_warnings", job
    assert step(job, "backTranslation")["drift"]["major"] == KEYS
    drifted = [w for w in job["warnings"] if w["code"] == "back_translation_drift"]
    assert sorted(w["key"] for w in drifted) == sorted(DOC)


def test_a_staged_group_streams_one_completion_and_delivers_one_webhook_per_job(
    client: httpx.Client,
    stack: Stack,
    api_key: str,
    receiver: Callable[..., Receiver],
) -> None:
    hook = receiver()
    created = submit(
        client,
        {"aiReview": {"enabled": True}, "backTranslation": {"enabled": True}},
        targetLocales=["de", "fr", "ja"],
        callbackUrl=hook.url,
    )
    group_id = created["groupId"]
    messages, _ = asyncio.run(collect_ws(ws_url(stack, group_id), {"X-API-Key": api_key}))
    job_ids = sorted(j["id"] for j in created["jobs"])
    events = [m for m in messages if m["type"] != "snapshot"]
    assert sorted(e["jobId"] for e in events if e["type"] == "job.completed") == job_ids
    assert events[-1]["type"] == "group.completed"
    assert events[-1]["snapshot"]["status"] == "completed"
    received = hook.wait_for(len(job_ids))
    time.sleep(1)  # a second delivery of any job would be here by now
    bodies = [json.loads(r.body) for r in hook.received]
    assert sorted(b["jobId"] for b in bodies) == job_ids, received
    assert {b["type"] for b in bodies} == {"translation.completed"}


def test_a_cancel_while_a_stage_runs_ends_the_job_cancelled(
    client: httpx.Client, fake_llm: FakeLLM
) -> None:
    reviewer = model("slow")
    created = submit(client, {"aiReview": {"enabled": True, "model": f"openai/{reviewer}"}})
    deadline = time.monotonic() + 60
    while not fake_llm.calls(model=reviewer):  # the review is under way
        assert time.monotonic() < deadline, "the review never started"
        time.sleep(0.1)
    resp = client.post(f"/jobs/localization/groups/{created['groupId']}/cancel")
    assert resp.status_code == 202, resp.text
    group = wait_for_group(client, created["groupId"], timeout=120)
    assert group["status"] == "cancelled"
    job = client.get(f"/jobs/localization/{created['jobs'][0]['id']}").json()
    assert job["status"] == "cancelled" and job["outputData"] is None


def test_an_engines_pipeline_runs_its_stages_unless_the_request_switches_them_off(
    client: httpx.Client,
) -> None:
    resp = client.post(
        "/engines", json={"name": "reviewed", "pipeline": {"aiReview": {"enabled": True}}}
    )
    assert resp.status_code == 201, resp.text
    engine = resp.json()["id"]
    job = finished_job(client, submit(client, {}, engineId=engine))
    assert [s["stepId"] for s in job["steps"]] == ["translate", "aiReview"]
    off = submit(client, {"aiReview": {"enabled": False}}, engineId=engine)
    assert [s["stepId"] for s in finished_job(client, off)["steps"]] == ["translate"]


def test_each_llm_step_is_priced_from_its_tokens_and_an_unpriced_model_is_not(
    client: httpx.Client,
) -> None:
    pipeline = {"aiReview": {"enabled": True}, "backTranslation": {"enabled": True}}
    priced = finished_job(client, submit(client, pipeline, engineId=llm_engine(client, "priced")))
    assert priced["status"] == "completed", priced
    stages = ["translate", "aiReview", "backTranslation"]
    assert [s["stepId"] for s in priced["steps"]] == stages
    costs = [s["costUsd"] for s in priced["steps"]]
    assert all(cost > 0 for cost in costs), priced["steps"]
    # Every step is priced by the rule /process/estimate uses, so together they are the
    # job's whole usage at the configured price (2 and 8 USD per million tokens).
    usage = priced["usage"]
    whole = cost_usd("openai/priced", usage["inputTokens"], usage["outputTokens"], PRICES)
    assert whole is not None and abs(sum(costs) - whole) < 1e-5
    assert abs(usage["costUsd"] - sum(costs)) < 1e-5  # the job's cost: its steps'
    unpriced = finished_job(client, submit(client, pipeline, engineId=llm_engine(client, "good")))
    assert [s["stepId"] for s in unpriced["steps"]] == stages
    assert all("costUsd" not in s for s in unpriced["steps"]), unpriced["steps"]
    assert "costUsd" not in unpriced["usage"]
    free = finished_job(client, submit(client, pipeline))  # the pseudo engine costs nothing
    assert [s.get("costUsd") for s in free["steps"]] == [0.0, 0.0, 0.0]
