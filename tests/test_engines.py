"""Engines as organization resources, on the real stack: CRUD, one default per organization,
validation, isolation, and what an engine's model chain does to jobs."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from stack import Stack
from tests.conftest import new_org_key, wait_for_group

FULL = {
    "name": "Marketing",
    "description": "Brand copy",
    "models": [
        {"sourceLocale": "*", "targetLocale": "ja", "provider": "pseudo", "model": "jp-1"},
        {"sourceLocale": "en", "targetLocale": "pt-br", "provider": "pseudo"},
    ],
    "glossary": [
        {"sourceLocale": "en", "targetLocale": "de", "term": "checkout", "translation": "Kasse"},
        {"term": "Tolk", "doNotTranslate": True},
    ],
    "brandVoices": [{"targetLocale": "*", "text": "Warm, short sentences."}],
    "instructions": [{"targetLocale": "ja", "text": "Use polite form."}],
}


@pytest.fixture()
def org(stack: Stack) -> Iterator[httpx.Client]:
    """A fresh organization per test: engines and defaults are organization state."""
    _, key = new_org_key(stack, "Engines Co")
    with httpx.Client(base_url=stack.api_url, headers={"X-API-Key": key}, timeout=30) as c:
        yield c


@pytest.fixture(scope="module")
def quiet_org(stack: Stack) -> Iterator[httpx.Client]:
    """One organization for the tests that change nothing (each checks that)."""
    _, key = new_org_key(stack, "Engines Validation Co")
    with httpx.Client(base_url=stack.api_url, headers={"X-API-Key": key}, timeout=30) as c:
        yield c


def engines(client: httpx.Client) -> list[dict[str, Any]]:
    resp = client.get("/engines")
    assert resp.status_code == 200, resp.text
    items: list[dict[str, Any]] = resp.json()["items"]
    return items


def test_crud_round_trip_and_one_default(org: httpx.Client) -> None:
    (default,) = engines(org)
    assert default["isDefault"] is True and default["models"] == []

    resp = org.post("/engines", json=FULL)
    assert resp.status_code == 201, resp.text
    created = resp.json()
    assert created["id"].startswith("eng_") and created["isDefault"] is False
    assert created["models"][1] == {
        "sourceLocale": "en",
        "targetLocale": "pt-BR",  # normalised
        "provider": "pseudo",
        "model": None,
    }
    assert created["glossary"][1] == {
        "sourceLocale": "*",
        "targetLocale": "*",
        "term": "Tolk",
        "translation": None,
        "doNotTranslate": True,
    }
    assert created["brandVoices"] == FULL["brandVoices"]
    assert org.get(f"/engines/{created['id']}").json() == created
    assert [e["id"] for e in engines(org)] == [default["id"], created["id"]]

    patched = org.patch(
        f"/engines/{created['id']}", json={"name": "Brand", "instructions": []}
    ).json()
    assert patched["name"] == "Brand" and patched["instructions"] == []
    assert patched["models"] == created["models"] and patched["glossary"] == created["glossary"]

    made_default = org.patch(f"/engines/{created['id']}", json={"isDefault": True})
    assert made_default.status_code == 200 and made_default.json()["isDefault"] is True
    assert [(e["id"], e["isDefault"]) for e in engines(org)] == [
        (default["id"], False),
        (created["id"], True),
    ]
    refused = org.patch(f"/engines/{created['id']}", json={"isDefault": False})
    assert refused.status_code == 409 and refused.json()["_tag"] == "ConflictError"
    assert org.delete(f"/engines/{created['id']}").status_code == 409  # the default

    assert org.delete(f"/engines/{default['id']}").status_code == 204
    gone = org.get(f"/engines/{default['id']}")
    assert gone.status_code == 404 and gone.json()["entityType"] == "engine"
    assert [e["id"] for e in engines(org)] == [created["id"]]


BOTH = {"term": "a", "translation": "b", "doNotTranslate": True}
INVALID = [
    ("missing name", {"models": []}, "name"),
    ("empty name", {"name": ""}, "name"),
    ("unknown field", {"name": "x", "temperature": 1}, "temperature"),
    ("bad locale", {"name": "x", "models": [{"targetLocale": "pt_br", "provider": "x"}]}, "models"),
    ("bad provider", {"name": "x", "models": [{"provider": "Open AI!"}]}, "models"),
    ("no provider", {"name": "x", "models": [{"targetLocale": "de"}]}, "models"),
    ("models not a list", {"name": "x", "models": {"provider": "pseudo"}}, "models"),
    ("glossary neither", {"name": "x", "glossary": [{"term": "a"}]}, "glossary"),
    ("glossary both", {"name": "x", "glossary": [BOTH]}, "glossary"),
    ("voice without text", {"name": "x", "brandVoices": [{"targetLocale": "de"}]}, "brandVoices"),
    ("wrong type", {"name": 5}, "name"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "body", "field"), INVALID, ids=[c[0] for c in INVALID])
def test_invalid_engines_are_refused_and_change_nothing(
    quiet_org: httpx.Client, case: str, body: dict[str, Any], field: str
) -> None:
    org = quiet_org
    before = engines(org)
    resp = org.post("/engines", json=body)
    assert resp.status_code == 400, (case, resp.text)
    error = resp.json()
    assert error["_tag"] == "ValidationError" and field in error["message"], (case, error)
    if field != "name":  # the same fields in a PATCH are refused too
        patch = org.patch(f"/engines/{before[0]['id']}", json=body)
        assert patch.status_code == 400, (case, patch.text)
    assert engines(org) == before


def test_a_patch_error_names_the_path_as_sent(quiet_org: httpx.Client) -> None:
    engine = engines(quiet_org)[0]
    resp = quiet_org.patch(f"/engines/{engine['id']}", json={"models": [{"provider": "Bad!"}]})
    assert resp.status_code == 400, resp.text
    assert [d["path"] for d in resp.json()["details"]] == ["models[0].provider"]
    assert engines(quiet_org)[0] == engine


# --- the default pipeline of an engine's jobs ----------------------------------------------

PIPELINE: dict[str, Any] = {
    "aiReview": {"enabled": False, "threshold": 85, "model": "openai/reviewer"},
    "humanReview": {"enabled": False, "timeoutSeconds": 3600, "onTimeout": "fail"},
}
NO_PIPELINE = {"aiReview": None, "humanReview": None, "backTranslation": None}


def test_an_engines_pipeline_is_stored_returned_and_replaced_whole(org: httpx.Client) -> None:
    (default,) = engines(org)
    assert default["pipeline"] == NO_PIPELINE
    resp = org.post("/engines", json={"name": "Reviewed", "pipeline": PIPELINE})
    assert resp.status_code == 201, resp.text
    engine = resp.json()
    assert engine["pipeline"] == {**PIPELINE, "backTranslation": None}
    assert org.get(f"/engines/{engine['id']}").json() == engine
    # Read back, it can be sent back unchanged (nulls included).
    copy = org.post(
        "/engines", json={k: v for k, v in engine.items() if k not in {"id", "createdAt"}}
    )
    assert copy.status_code == 201 and copy.json()["pipeline"] == engine["pipeline"], copy.text

    url = f"/engines/{engine['id']}"
    renamed = org.patch(url, json={"name": "Renamed"})
    assert renamed.status_code == 200 and renamed.json()["pipeline"] == engine["pipeline"]
    replaced = org.patch(url, json={"pipeline": {"backTranslation": {"enabled": False}}})
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["pipeline"] == {**NO_PIPELINE, "backTranslation": {"enabled": False}}
    assert org.get(url).json()["pipeline"] == replaced.json()["pipeline"]
    cleared = org.patch(url, json={"pipeline": {}})
    assert cleared.status_code == 200 and cleared.json()["pipeline"] == NO_PIPELINE
    nulled = org.patch(url, json={"pipeline": None})
    assert nulled.status_code == 400 and nulled.json()["details"][0]["path"] == "pipeline"
    assert org.get(url).json()["pipeline"] == NO_PIPELINE


PIPELINE_INVALID = [
    ({"qualityGate": {"enabled": False}}, "pipeline.qualityGate"),
    ({"aiReview": {"enabled": False, "threshold": 101}}, "pipeline.aiReview.threshold"),
    ({"aiReview": {"enabled": False, "threshold": "80"}}, "pipeline.aiReview.threshold"),
    ({"aiReview": {"enabled": False, "model": ""}}, "pipeline.aiReview.model"),
    ({"aiReview": {"enabled": False, "judge": "x"}}, "pipeline.aiReview.judge"),
    ({"humanReview": {"enabled": False, "timeoutSeconds": 0}},
     "pipeline.humanReview.timeoutSeconds"),
    ({"humanReview": {"enabled": False, "onTimeout": "wait"}}, "pipeline.humanReview.onTimeout"),
    ({"backTranslation": {}}, "pipeline.backTranslation.enabled"),
    ({"backTranslation": True}, "pipeline.backTranslation"),
    (["aiReview"], "pipeline"),
    (None, "pipeline"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("pipeline", "path"), PIPELINE_INVALID, ids=[str(c[0]) for c in PIPELINE_INVALID]
)
def test_invalid_pipelines_are_refused_naming_the_path_and_change_nothing(
    quiet_org: httpx.Client, pipeline: Any, path: str
) -> None:
    org = quiet_org
    before = engines(org)
    for resp in (
        org.post("/engines", json={"name": "x", "pipeline": pipeline}),
        org.patch(f"/engines/{before[0]['id']}", json={"pipeline": pipeline}),
    ):
        assert resp.status_code == 400, (pipeline, resp.text)
        error = resp.json()
        assert error["_tag"] == "ValidationError" and error["details"][0]["path"] == path, error
        assert error["message"].startswith(f"{path}: "), error
    assert engines(org) == before


def test_engines_belong_to_one_organization(org: httpx.Client, other_key: str) -> None:
    engine_id = org.post("/engines", json={"name": "Mine"}).json()["id"]
    other = httpx.Client(base_url=str(org.base_url), headers={"X-API-Key": other_key})
    with other:
        assert other.get(f"/engines/{engine_id}").status_code == 404
        assert other.patch(f"/engines/{engine_id}", json={"name": "x"}).status_code == 404
        assert other.delete(f"/engines/{engine_id}").status_code == 404
        assert engine_id not in {e["id"] for e in other.get("/engines").json()["items"]}
        resp = other.post(
            "/jobs/localization",
            json={"sourceLocale": "en", "targetLocales": ["de"], "data": {"a": "b"},
                  "engineId": engine_id},
        )  # fmt: skip
        assert resp.status_code == 400 and "engineId" in resp.json()["message"]
    assert org.get(f"/engines/{engine_id}").json()["name"] == "Mine"


def test_jobs_use_the_engine_chain_and_the_default(org: httpx.Client) -> None:
    only_ja = org.post(
        "/engines",
        json={"name": "ja only", "models": [{"targetLocale": "ja", "provider": "pseudo"}]},
    ).json()
    resp = org.post(
        "/jobs/localization",
        json={"sourceLocale": "en", "targetLocales": ["ja", "de"], "data": {"t": "Hello {n}"},
              "engineId": only_ja["id"]},
    )  # fmt: skip
    assert resp.status_code == 202, resp.text
    group = wait_for_group(org, resp.json()["groupId"])
    assert group["status"] == "partial" and group["engineId"] == only_ja["id"]
    jobs = {
        j["targetLocale"]: org.get(f"/jobs/localization/{j['id']}").json() for j in group["jobs"]
    }
    assert jobs["ja"]["status"] == "completed" and "{n}" in jobs["ja"]["outputData"]["t"]
    assert jobs["de"]["status"] == "failed"
    assert jobs["de"]["error"] == (
        f"engine {only_ja['id']} has no model for en -> de: add a models entry that matches "
        "this pair"
    )

    org.patch(f"/engines/{only_ja['id']}", json={"isDefault": True})
    resp = org.post(
        "/jobs/localization", json={"sourceLocale": "en", "targetLocales": ["ja"], "data": {}}
    )
    assert resp.status_code == 202, resp.text
    assert wait_for_group(org, resp.json()["groupId"])["engineId"] == only_ja["id"]


def test_an_engine_in_use_cannot_be_deleted(org: httpx.Client, stack: Stack) -> None:
    engine_id = org.post("/engines", json={"name": "Busy"}).json()["id"]
    stack.kill("worker", signal.SIGTERM)  # the group stays unfinished while we try
    try:
        resp = org.post(
            "/jobs/localization",
            json={"sourceLocale": "en", "targetLocales": ["de"], "data": {"a": "b"},
                  "engineId": engine_id},
        )  # fmt: skip
        assert resp.status_code == 202, resp.text
        refused = org.delete(f"/engines/{engine_id}")
        assert refused.status_code == 409 and "1 unfinished" in refused.json()["message"]
    finally:
        stack.start_worker()
    wait_for_group(org, resp.json()["groupId"])
    assert org.delete(f"/engines/{engine_id}").status_code == 204


def test_users_me(stack: Stack, org_key: tuple[str, str], api_key: str) -> None:
    me = httpx.get(f"{stack.api_url}/users/me", headers={"X-API-Key": api_key})
    assert me.status_code == 200
    body = me.json()
    assert body["organizationId"] == org_key[0]
    assert api_key.startswith(body["id"] + "_") and body["email"]
    assert httpx.get(f"{stack.api_url}/users/me").status_code == 401
