"""Service routes, JSON errors from the framework itself, the OpenAPI document, listing."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from stack import Stack
from tests.conftest import run_tolk, wait_for_group


def test_health_and_readiness(stack: Stack) -> None:
    assert httpx.get(f"{stack.api_url}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{stack.api_url}/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "database": "ok", "temporal": "ok"}


def test_unknown_route_and_wrong_method_are_json(stack: Stack) -> None:
    missing = httpx.get(f"{stack.api_url}/nope")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/json")
    assert missing.json()["_tag"] == "NotFoundError"
    wrong = httpx.delete(f"{stack.api_url}/jobs/localization")
    assert wrong.status_code == 405
    assert wrong.json()["_tag"] == "MethodNotAllowedError"


def test_openapi_comes_from_the_models(stack: Stack) -> None:
    from api.schemas import CreateJobGroupRequest

    doc = httpx.get(f"{stack.api_url}/openapi.json").json()
    assert doc["openapi"].startswith("3.1")
    for path in (
        "/jobs/localization",
        "/jobs/localization/groups/{groupId}",
        "/jobs/localization/{jobId}",
        "/jobs/localization/groups/{groupId}/cancel",
    ):
        assert path in doc["paths"]
    schema = doc["components"]["schemas"]["CreateJobGroupRequest"]
    assert sorted(schema["required"]) == ["data", "sourceLocale", "targetLocales"]
    model = CreateJobGroupRequest.model_json_schema(by_alias=True)
    assert set(schema["properties"]) == set(model["properties"])
    page = httpx.get(f"{stack.api_url}/docs")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "/jobs/localization/groups/{groupId}/retry" in page.text
    assert "<script" not in page.text
    metrics = httpx.get(f"{stack.api_url}/metrics").text
    assert "tolk_progress_polls_total" in metrics


def test_listing_pages_newest_first_with_filters(client: httpx.Client) -> None:
    locales = ["de", "fr", "es", "it", "nl", "sv", "da"]
    started = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() - 1))
    created = client.post(
        "/jobs/localization",
        json={"sourceLocale": "en", "targetLocales": locales, "data": {"t": "Hello"}},
    ).json()
    group_id = created["groupId"]
    wait_for_group(client, group_id)

    seen, cursor, sizes = [], None, []
    for _ in range(5):
        params: dict[str, str | int] = {"groupId": group_id, "limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = client.get("/jobs/localization", params=params).json()
        sizes.append(len(page["items"]))
        seen += page["items"]
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert sizes == [3, 3, 1]
    assert len({item["id"] for item in seen}) == 7
    assert all("outputData" not in item for item in seen)
    stamps = [(item["createdAt"], item["id"]) for item in seen]
    assert stamps == sorted(stamps, reverse=True)

    only_fr = client.get("/jobs/localization", params={"groupId": group_id, "targetLocale": "FR"})
    assert [item["targetLocale"] for item in only_fr.json()["items"]] == ["fr"]
    done = client.get("/jobs/localization", params={"groupId": group_id, "status": "completed"})
    assert len(done.json()["items"]) == 7
    recent = client.get("/jobs/localization", params={"createdAfter": started, "limit": 100})
    assert group_id in {item["groupId"] for item in recent.json()["items"]}
    future = client.get("/jobs/localization", params={"createdAfter": "2999-01-01T00:00:00Z"})
    assert future.json()["items"] == []


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": 101},
        {"limit": "x"},
        {"cursor": "garbage!"},
        {"status": "done"},
        {"targetLocale": "pt_br"},
        {"createdAfter": "yesterday"},
        {"unknown": "1"},
    ],
)
def test_bad_list_queries_are_400(client: httpx.Client, params: dict[str, str | int]) -> None:
    resp = client.get("/jobs/localization", params=params)
    assert resp.status_code == 400, resp.text
    assert resp.json()["_tag"] == "ValidationError"


def test_admin_cli_creates_orgs_and_keys(stack: Stack) -> None:
    plain = run_tolk(stack, "orgs", "create", "Initech").strip()
    assert plain.startswith("org_") and len(plain) == 20
    as_json = json.loads(run_tolk(stack, "orgs", "create", "Hooli", "--json"))
    assert as_json["name"] == "Hooli" and as_json["id"].startswith("org_")
    key = json.loads(
        run_tolk(stack, "keys", "create", "--org", plain, "--email", "ops@initech.test", "--json")
    )
    assert key["organizationId"] == plain and key["email"] == "ops@initech.test"
    resp = httpx.get(f"{stack.api_url}/jobs/localization", headers={"X-API-Key": key["key"]})
    assert resp.status_code == 200 and resp.json()["items"] == []
    unknown = subprocess.run(
        [sys.executable, "-m", "cli.main", "keys", "create", "--org", "org_AAAAAAAAAAAAAAAA"],
        env=stack.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert unknown.returncode != 0
    assert "unknown organization" in unknown.stderr


def test_a_revoked_key_opens_nothing(stack: Stack) -> None:
    org = run_tolk(stack, "orgs", "create", "Umbrella").strip()
    key = json.loads(run_tolk(stack, "keys", "create", "--org", org, "--json"))["key"]
    headers = {"X-API-Key": key}
    api = stack.api_url
    created = httpx.post(
        f"{api}/jobs/localization",
        headers=headers,
        json={"sourceLocale": "en", "targetLocales": ["de"], "data": {"t": "Hello"}},
        timeout=30,
    )
    assert created.status_code == 202, created.text
    group_id = created.json()["groupId"]
    stream = f"{api}/jobs/localization/groups/{group_id}/events"
    token = httpx.post(f"{stream.removesuffix('/events')}/tokens", headers=headers, timeout=30)
    assert token.status_code == 201
    with httpx.Client(base_url=api, headers=headers, timeout=30) as owner:
        wait_for_group(owner, group_id)
    # A stream opens with the key (the group is finished: snapshot, group.completed, end).
    assert httpx.get(stream, headers=headers, timeout=30).status_code == 200

    other = run_tolk(stack, "orgs", "create", "Initech").strip()
    run_tolk(stack, "keys", "create", "--org", other)
    listed = json.loads(run_tolk(stack, "keys", "list", "--org", org, "--json"))
    assert [(k["id"], k["email"], k["revokedAt"]) for k in listed] == [
        (key[:13], "admin@localhost", None)
    ]
    assert key not in run_tolk(stack, "keys", "list")  # ids only: the secret is not stored

    revoked = json.loads(run_tolk(stack, "keys", "revoke", key[:13], "--json"))
    assert revoked["id"] == key[:13] and revoked["organizationId"] == org
    listed = json.loads(run_tolk(stack, "keys", "list", "--org", org, "--json"))
    assert [(k["id"], k["revokedAt"]) for k in listed] == [(key[:13], revoked["revokedAt"])]
    everyone = {k["organizationId"] for k in json.loads(run_tolk(stack, "keys", "list", "--json"))}
    assert {org, other} <= everyone
    # By the whole key, again: the first revocation time stays.
    assert json.loads(run_tolk(stack, "keys", "revoke", key, "--json")) == revoked

    # A revoked key is a real key that may no longer be used: 403 (API.md), everywhere.
    for resp in (
        httpx.get(f"{api}/jobs/localization", headers=headers, timeout=30),
        httpx.get(f"{api}/jobs/localization/groups/{group_id}", headers=headers, timeout=30),
        httpx.post(f"{api}/engines", headers=headers, json={"name": "x"}, timeout=30),
        httpx.get(stream, headers=headers, timeout=30),
    ):
        assert resp.status_code == 403, resp.text
        assert resp.json() == {"_tag": "ForbiddenError", "message": "this API key was revoked"}
    # The revoked key's id with another secret part is no key at all: 401, as before.
    forged = {"X-API-Key": key[:14] + "x" * (len(key) - 14)}
    for resp in (
        httpx.get(f"{api}/jobs/localization", headers=forged, timeout=30),
        httpx.get(stream, headers=forged, timeout=30),
    ):
        assert resp.status_code == 401, resp.text
        assert resp.json()["_tag"] == "UnauthorizedError"

    async def ws_status(sent: dict[str, str]) -> tuple[int, bytes | bytearray]:
        url = stream.replace("http://", "ws://").removesuffix("/events") + "/ws"
        with pytest.raises(InvalidStatus) as info:
            async with connect(url, additional_headers=sent, open_timeout=10):
                pass
        return info.value.response.status_code, info.value.response.body or b""

    status, body = asyncio.run(ws_status(headers))
    assert status == 403 and json.loads(body)["_tag"] == "ForbiddenError"
    assert asyncio.run(ws_status(forged))[0] == 401
    # A read token issued before still opens its group's stream until it expires.
    opened = httpx.get(stream, params={"token": token.json()["token"]}, timeout=30)
    assert opened.status_code == 200

    unknown = subprocess.run(
        [sys.executable, "-m", "cli.main", "keys", "revoke", "tolk_00000000"],
        env=stack.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert unknown.returncode == 1 and "unknown API key" in unknown.stderr
