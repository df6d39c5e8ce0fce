"""A group's pipeline on the real stack: the engine's ``pipeline`` overridden stage by stage
by the request's ``pipelineConfig``, fixed on the group when it is accepted (a later change
of the engine leaves it be, and a replay of the same body is still a replay), and a stage
switched on, by the request or by the engine, refused in the same words."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlmodel import col, select

from stack import Stack
from store.tables import JobGroup
from tests.conftest import new_org_key, run_sql, wait_for_group

JOB: dict[str, Any] = {"sourceLocale": "en", "targetLocales": ["de"], "data": {"t": "Hello"}}
ENGINE_PIPELINE: dict[str, Any] = {
    "aiReview": {"enabled": False, "threshold": 85, "model": "openai/reviewer"},
    "humanReview": {"enabled": False, "timeoutSeconds": 3600, "onTimeout": "fail"},
}


@pytest.fixture()
def org(stack: Stack) -> Iterator[httpx.Client]:
    """A fresh organization per test: engines are organization state."""
    _, key = new_org_key(stack, "Pipeline Co")
    with httpx.Client(base_url=stack.api_url, headers={"X-API-Key": key}, timeout=30) as c:
        yield c


def stored_pipeline(stack: Stack, group_id: str) -> Any:
    """The group's effective pipeline as its row holds it."""
    row = select(col(JobGroup.pipeline)).where(col(JobGroup.id) == group_id)
    ((pipeline,),) = run_sql(stack, row)
    return pipeline


def new_engine(org: httpx.Client, pipeline: dict[str, Any]) -> str:
    resp = org.post("/engines", json={"name": "Reviewed", "pipeline": pipeline})
    assert resp.status_code == 201, resp.text
    engine_id: str = resp.json()["id"]
    return engine_id


def test_a_group_gets_the_engines_pipeline_overridden_by_its_request(
    org: httpx.Client, stack: Stack
) -> None:
    engine_id = new_engine(org, ENGINE_PIPELINE)
    body = {
        **JOB,
        "engineId": engine_id,
        "idempotencyKey": "pipeline-inheritance",
        "pipelineConfig": {"humanReview": {"enabled": False}, "backTranslation": None},
    }
    first = org.post("/jobs/localization", json=body)
    assert first.status_code == 202, first.text
    group_id = first.json()["groupId"]
    accepted = {"aiReview": ENGINE_PIPELINE["aiReview"], "humanReview": {"enabled": False}}
    assert stored_pipeline(stack, group_id) == accepted
    assert wait_for_group(org, group_id)["status"] == "completed"

    # The engine changes: the accepted group keeps what it was accepted with, and the same
    # body again is a replay of it (the fingerprint is of the body, not of the engine).
    changed = {"backTranslation": {"enabled": False}}
    assert org.patch(f"/engines/{engine_id}", json={"pipeline": changed}).status_code == 200
    again = org.post("/jobs/localization", json=body)
    assert again.status_code == 202 and again.headers.get("Idempotent-Replayed") == "true"
    assert again.json()["groupId"] == group_id
    assert stored_pipeline(stack, group_id) == accepted

    # A new group gets the engine's pipeline as it is now.
    fresh = org.post("/jobs/localization", json={**body, "idempotencyKey": "pipeline-fresh"})
    assert fresh.status_code == 202, fresh.text
    assert stored_pipeline(stack, fresh.json()["groupId"]) == {
        "humanReview": {"enabled": False},
        "backTranslation": {"enabled": False},
    }


def test_without_any_pipeline_a_group_stores_an_empty_one(org: httpx.Client, stack: Stack) -> None:
    for config in (None, {}, {"aiReview": None}):
        resp = org.post("/jobs/localization", json={**JOB, "pipelineConfig": config})
        assert resp.status_code == 202, resp.text
        assert stored_pipeline(stack, resp.json()["groupId"]) == {}
