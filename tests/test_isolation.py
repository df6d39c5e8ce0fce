"""Organization isolation: another organization's ids are simply not found, on every route,
and look exactly like ids that do not exist."""

from __future__ import annotations

import httpx
import pytest

from stack import Stack
from tests.conftest import wait_for_group


@pytest.fixture(scope="module")
def group_of_a(stack: Stack, api_key: str) -> dict[str, object]:
    with httpx.Client(base_url=stack.api_url, headers={"X-API-Key": api_key}, timeout=30) as a:
        resp = a.post(
            "/jobs/localization",
            json={"sourceLocale": "en", "targetLocales": ["de", "fr"], "data": {"t": "Hi"}},
        )
        assert resp.status_code == 202
        group = wait_for_group(a, resp.json()["groupId"])
        job = a.get(f"/jobs/localization/{group['jobs'][0]['id']}").json()
        assert job["outputData"] is not None
        return {"group": group, "engineId": job["engineId"]}


def routes(group_id: str, job_id: str) -> list[tuple[str, str, str, str]]:
    """(method, path, entity type, id) for every route that takes an id."""
    g = f"/jobs/localization/groups/{group_id}"
    return [
        ("GET", g, "group", group_id),
        ("POST", f"{g}/cancel", "group", group_id),
        ("POST", f"{g}/retry", "group", group_id),
        ("POST", f"{g}/tokens", "group", group_id),
        ("GET", f"{g}/events", "group", group_id),
        ("GET", f"/jobs/localization/{job_id}", "job", job_id),
    ]


def test_another_organization_gets_404_for_every_id(
    stack: Stack, other_key: str, group_of_a: dict[str, object]
) -> None:
    group = group_of_a["group"]
    assert isinstance(group, dict)
    group_id, job_id = group["groupId"], group["jobs"][0]["id"]
    with httpx.Client(base_url=stack.api_url, headers={"X-API-Key": other_key}, timeout=30) as b:
        for method, path, entity, entity_id in routes(group_id, job_id):
            resp = b.request(method, path)
            assert resp.status_code == 404, (method, path, resp.text)
            assert resp.json() == {
                "_tag": "NotFoundError",
                "message": f"{entity} {entity_id} not found",
                "entityType": entity,
                "id": entity_id,
            }
        listed = b.get("/jobs/localization", params={"groupId": group_id}).json()
        assert listed == {"items": [], "nextCursor": None}
        everything = b.get("/jobs/localization", params={"limit": 100}).json()["items"]
        assert not {item["groupId"] for item in everything} & {group_id}
        # The other organization's engine cannot be used either.
        resp = b.post(
            "/jobs/localization",
            json={
                "sourceLocale": "en",
                "targetLocales": ["de"],
                "data": {"t": "x"},
                "engineId": group_of_a["engineId"],
            },
        )
        assert resp.status_code == 400
        assert resp.json()["details"][0]["path"] == "engineId"


def test_unknown_ids_look_the_same_as_foreign_ones(stack: Stack, other_key: str) -> None:
    group_id, job_id = "ljg_AAAAAAAAAAAAAAAA", "ljb_AAAAAAAAAAAAAAAA"
    with httpx.Client(base_url=stack.api_url, headers={"X-API-Key": other_key}, timeout=30) as b:
        for method, path, entity, entity_id in routes(group_id, job_id):
            resp = b.request(method, path)
            assert resp.status_code == 404
            assert resp.json()["entityType"] == entity and resp.json()["id"] == entity_id


def test_the_owner_still_sees_everything(
    client: httpx.Client, group_of_a: dict[str, object]
) -> None:
    group = group_of_a["group"]
    assert isinstance(group, dict)
    listed = client.get("/jobs/localization", params={"groupId": group["groupId"]}).json()
    assert {item["id"] for item in listed["items"]} == {job["id"] for job in group["jobs"]}
    assert client.get(f"/jobs/localization/groups/{group['groupId']}").status_code == 200
