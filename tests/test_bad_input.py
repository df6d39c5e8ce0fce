"""Bad input on the real stack: every refusal is a JSON 400 naming the field, and the request
changes nothing. One class of input per test group (explicit nulls, text that is not valid
Unicode, numbers JSON cannot carry, characters a URL may not hold, bad query values), each
with accepted controls so that a test cannot pass by refusing everything."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from cli.stack import Stack
from tests.conftest import new_org_key

JOB: dict[str, Any] = {"sourceLocale": "en", "targetLocales": ["de"], "data": {"t": "Hi"}}
JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def org(stack: Stack) -> Iterator[httpx.Client]:
    """An organization of its own: its engines and webhook settings are compared before and
    after every refused request."""
    _, key = new_org_key(stack, "Bad Input Co")
    with httpx.Client(base_url=stack.api_url, headers={"X-API-Key": key}, timeout=30) as c:
        yield c


def refused(resp: httpx.Response, path: str, *words: str) -> dict[str, Any]:
    """A JSON 400 whose first problem is at ``path`` and whose message has ``words``."""
    assert resp.status_code == 400, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    error: dict[str, Any] = resp.json()
    assert error["_tag"] == "ValidationError", error
    assert error["details"] and error["details"][0]["path"] == path, error
    assert error["message"].startswith(f"{path}: "), error
    for word in words:
        assert word in error["message"], (word, error)
    return error


def engines(client: httpx.Client) -> list[dict[str, Any]]:
    resp = client.get("/engines")
    assert resp.status_code == 200, resp.text
    items: list[dict[str, Any]] = resp.json()["items"]
    return items


# --- 1. explicit nulls ---------------------------------------------------------------------

PATCH_FIELDS = ["name", "description", "isDefault", "models", "glossary", "brandVoices",
                "instructions"]  # fmt: skip


@pytest.mark.parametrize("field", PATCH_FIELDS)
def test_null_in_an_engine_patch_is_refused_and_changes_nothing(
    org: httpx.Client, field: str
) -> None:
    engine = org.post("/engines", json={"name": f"null {field}", "models": [
        {"provider": "pseudo"}]}).json()  # fmt: skip
    before = engines(org)
    resp = org.patch(f"/engines/{engine['id']}", json={field: None})
    refused(resp, field, "null")
    assert engines(org) == before  # the organization's engines still list, unchanged
    assert org.get(f"/engines/{engine['id']}").json() == engine
    # The same field with a value is a change, and the engine still reads back.
    ok = org.patch(f"/engines/{engine['id']}", json={"description": "changed"})
    assert ok.status_code == 200 and ok.json()["description"] == "changed"


@pytest.mark.parametrize("field", PATCH_FIELDS)
def test_null_in_an_engine_create_is_refused(org: httpx.Client, field: str) -> None:
    before = engines(org)
    body: dict[str, Any] = {"name": "x", field: None}
    refused(org.post("/engines", json=body), field)
    assert engines(org) == before


def test_an_engine_stored_with_null_lists_reads_back(stack: Stack, org: httpx.Client) -> None:
    """Rows written by the bug (before nulls were refused) do not break GET /engines."""
    engine = org.post("/engines", json={"name": "stored null"}).json()
    path = stack.settings.database_url.split(":///", 1)[1]
    config = {"models": None, "glossary": None, "brandVoices": None, "instructions": None}
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE engine SET config = ? WHERE id = ?",
                     (json.dumps(config), engine["id"]))  # fmt: skip
    listed = {e["id"]: e for e in engines(org)}
    assert listed[engine["id"]]["models"] == [] and listed[engine["id"]]["glossary"] == []


@pytest.mark.parametrize(
    "field", ["context", "hints", "lockedKeys", "callbackUrl", "idempotencyKey", "engineId"]
)
def test_null_still_means_absent_where_a_field_is_optional(
    client: httpx.Client, field: str
) -> None:
    resp = client.post("/jobs/localization", json={**JOB, field: None})
    assert resp.status_code == 202, resp.text


def test_null_default_url_still_clears_it(org: httpx.Client) -> None:
    resp = org.put("/webhooks/settings", json={"defaultUrl": None})
    assert resp.status_code == 200 and resp.json()["defaultUrl"] is None
