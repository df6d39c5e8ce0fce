"""Details of the contract a client can feel: ``createdAfter`` with an offset filters on the
right instant; a redelivery before the first attempt is recorded keeps the event's own
``webhook-id``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone

import httpx

from stack import Stack
from tests.conftest import broken_engine, wait_for_group
from tests.receiver import Receiver, Reply
from tests.test_webhooks import deliveries


def test_created_after_with_an_offset_filters_on_the_instant(client: httpx.Client) -> None:
    created = client.post(
        "/jobs/localization",
        json={"sourceLocale": "en", "targetLocales": ["de"], "data": {"t": "Hi"}},
    ).json()
    job_id = created["jobs"][0]["id"]
    at = datetime.fromisoformat(created["createdAt"].replace("Z", "+00:00"))
    for offset in (timedelta(hours=2), timedelta(hours=-5, minutes=-30), timedelta(0)):
        zone = timezone(offset)
        listed = {}
        for label, moment in (
            ("before", at - timedelta(seconds=1)),
            ("after", at + timedelta(seconds=1)),
        ):
            resp = client.get(
                "/jobs/localization",
                params={"createdAfter": moment.astimezone(zone).isoformat(), "limit": 100},
            )
            assert resp.status_code == 200, resp.text
            listed[label] = {item["id"] for item in resp.json()["items"]}
        assert job_id in listed["before"], (offset, created["createdAt"])
        assert job_id not in listed["after"], (offset, created["createdAt"])
    # Written into the URL as is, a "+" arrives as a space: read as the offset it was.
    raw = (at - timedelta(seconds=1)).astimezone(timezone(timedelta(hours=2))).isoformat()
    resp = client.get(f"/jobs/localization?createdAfter={raw}&limit=100")
    assert resp.status_code == 200, resp.text
    assert job_id in {item["id"] for item in resp.json()["items"]}


def test_a_redelivery_before_the_first_attempt_keeps_the_events_webhook_id(
    client: httpx.Client, receiver: Callable[..., Receiver]
) -> None:
    hook = receiver(Reply(200, delay=4))  # the first attempt is still in flight
    created = client.post(
        "/jobs/localization",
        json={
            "sourceLocale": "en",
            "targetLocales": ["de"],
            "data": {"t": "Hi"},
            "callbackUrl": hook.url,
        },
    ).json()
    wait_for_group(client, created["groupId"])
    job_id = created["jobs"][0]["id"]
    hook.wait_for(1)  # arrived; its answer (and so its record) comes 4 s later
    assert client.get(f"/jobs/localization/{job_id}/deliveries").json()["items"] == []
    redelivered = client.post(f"/jobs/localization/{job_id}/redeliver")
    assert redelivered.status_code == 202, redelivered.text
    received = hook.wait_for(2)
    ids = {got.headers["webhook-id"] for got in received}
    assert ids == {redelivered.json()["eventId"]}, ids
    log = deliveries(client, job_id, 2)
    assert {item["eventId"] for item in log} == ids


def test_a_redelivery_after_a_retry_sends_the_new_event_not_the_failure(
    stack: Stack,
    client: httpx.Client,
    org_key: tuple[str, str],
    receiver: Callable[..., Receiver],
) -> None:
    # The failure event was delivered and recorded; the retried job's completed event is
    # in flight, not yet recorded, when the redelivery is asked for.
    hook = receiver(Reply(200), Reply(200, delay=4))
    engine_id = broken_engine(stack, org_key[0], "redeliver-after-retry")
    created = client.post(
        "/jobs/localization",
        json={
            "sourceLocale": "en",
            "targetLocales": ["ja"],
            "data": {"t": "Hi"},
            "callbackUrl": hook.url,
            "engineId": engine_id,
        },
    ).json()
    job_id = created["jobs"][0]["id"]
    wait_for_group(client, created["groupId"])
    failure = deliveries(client, job_id, 1)[-1]["eventId"]
    client.patch(f"/engines/{engine_id}", json={"models": [{"provider": "pseudo"}]})
    assert client.post(f"/jobs/localization/groups/{created['groupId']}/retry").status_code == 202
    hook.wait_for(2)  # the completed event arrived; its answer comes 4 s later
    redelivered = client.post(f"/jobs/localization/{job_id}/redeliver")
    assert redelivered.status_code == 202, redelivered.text
    received = hook.wait_for(3)
    completed = received[1].headers["webhook-id"]
    assert completed != failure
    assert redelivered.json()["eventId"] == completed == received[2].headers["webhook-id"]
