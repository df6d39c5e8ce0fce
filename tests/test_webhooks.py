"""Webhooks against a real HTTPS receiver on loopback: every delivery verified with the
official ``standardwebhooks`` library, retries on a schedule shortened by configuration,
the delivery log, redelivery, secret rotation, dataUrl links and the SSRF rules."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from settings import Settings, webhook_options
from stack import Stack
from store.tables import WebhookConfig
from tests.conftest import (
    RECEIVER_HOST,
    WEBHOOK_DELAYS,
    broken_engine,
    new_org_key,
    wait_for_group,
)
from tests.receiver import Received, Receiver, Reply
from webhooks.links import output_token
from webhooks.signing import signing_secrets
from webhooks.urls import AllowList, CallbackRefused, resolve_target
from workflows.messages import contract_schedule
from workflows.webhooks import delivery_retry_policy, job_event_id

DOC = {
    "title": "Hello {name}",
    "steps": [{"id": "s1", "body": "<b>Save</b> your work"}, {"id": "s2", "body": "Done"}],
    "count": 3,
    "flag": True,
    "none": None,
}


@pytest.fixture(scope="module")
def hooks_org(stack: Stack) -> tuple[str, str]:
    """An organization of its own, so its webhook settings touch no other test."""
    return new_org_key(stack, "Hooks Inc")


@pytest.fixture()
def hooks(stack: Stack, hooks_org: tuple[str, str]) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=stack.api_url, headers={"X-API-Key": hooks_org[1]}, timeout=30
    ) as client:
        yield client


def submit(client: httpx.Client, locales: list[str], **extra: Any) -> dict[str, Any]:
    body = {"sourceLocale": "en", "targetLocales": locales, "data": DOC, **extra}
    resp = client.post("/jobs/localization", json=body)
    assert resp.status_code == 202, resp.text
    return resp.json()


def secret(client: httpx.Client) -> str:
    resp = client.get("/webhooks/settings")
    assert resp.status_code == 200, resp.text
    value: str = resp.json()["secret"]
    return value


def verify(secret_value: str, got: Received) -> dict[str, Any]:
    payload: dict[str, Any] = Webhook(secret_value).verify(got.body, got.headers)
    return payload


def deliveries(client: httpx.Client, job_id: str, count: int, timeout: float = 30) -> list[Any]:
    """The job's delivery log once it has ``count`` attempts and the last one is final."""
    deadline = time.monotonic() + timeout
    items: list[Any] = []
    while time.monotonic() < deadline:
        resp = client.get(f"/jobs/localization/{job_id}/deliveries")
        assert resp.status_code == 200, resp.text
        items = resp.json()["items"]
        if len(items) >= count and items[-1]["outcome"] != "retrying":
            return items
        time.sleep(0.1)
    raise AssertionError(f"expected {count} final delivery records, got {items}")


def test_each_finished_job_is_delivered_signed_with_its_output(
    hooks: httpx.Client, receiver: Callable[..., Receiver]
) -> None:
    key = secret(hooks)
    assert key.startswith("whsec_")
    hook = receiver()
    group = submit(hooks, ["de", "fr"], callbackUrl=hook.url)
    got = hook.wait_for(2)
    wait_for_group(hooks, group["groupId"])

    events = {}
    for request in got:
        payload = verify(key, request)
        assert request.headers["content-type"] == "application/json"
        assert request.path == "/hook"
        events[payload["jobId"]] = (request, payload)
    assert set(events) == {job["id"] for job in group["jobs"]}
    assert len({r.headers["webhook-id"] for r, _ in events.values()}) == 2
    for job in group["jobs"]:
        _, payload = events[job["id"]]
        detail = hooks.get(f"/jobs/localization/{job['id']}").json()
        assert payload == {
            "type": "translation.completed",
            "jobId": job["id"],
            "groupId": group["groupId"],
            "sourceLocale": "en",
            "targetLocale": job["targetLocale"],
            "status": "completed",
            "warnings": [],
            "data": detail["outputData"],
        }
        log = deliveries(hooks, job["id"], 1)
        assert [(d["attempt"], d["outcome"], d["statusCode"]) for d in log] == [
            (1, "delivered", 200)
        ]
        assert log[0]["url"] == hook.url and log[0]["type"] == "translation.completed"
        assert log[0]["eventId"] == events[job["id"]][0].headers["webhook-id"]

    # What a receiver must reject: a tampered body, a stale timestamp, another secret.
    request = got[0]
    with pytest.raises(WebhookVerificationError):
        Webhook(key).verify(request.body.replace(b"completed", b"c0mpleted"), request.headers)
    stale = dict(request.headers, **{"webhook-timestamp": str(int(time.time()) - 600)})
    with pytest.raises(WebhookVerificationError, match="too old"):
        Webhook(key).verify(request.body, stale)
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + "A" * 43 + "=").verify(request.body, request.headers)


def test_a_failing_receiver_gets_every_retry_with_the_same_webhook_id(
    hooks: httpx.Client, receiver: Callable[..., Receiver]
) -> None:
    key = secret(hooks)
    hook = receiver(Reply(500), Reply(503, {"Retry-After": "2"}), Reply(200))
    group = submit(hooks, ["de"], callbackUrl=hook.url)
    job_id = group["jobs"][0]["id"]
    got = hook.wait_for(3)
    log = deliveries(hooks, job_id, 3)

    assert len({r.headers["webhook-id"] for r in got}) == 1
    for request in got:
        assert verify(key, request)["jobId"] == job_id
    assert [(d["attempt"], d["statusCode"], d["outcome"]) for d in log] == [
        (1, 500, "retrying"),
        (2, 503, "retrying"),
        (3, 200, "delivered"),
    ]
    assert {d["eventId"] for d in log} == {got[0].headers["webhook-id"]}
    assert log[0]["nextAttemptAt"] is not None and log[2]["nextAttemptAt"] is None
    # The schedule's first wait, then Retry-After (longer than the schedule's second wait).
    assert got[1].at - got[0].at >= WEBHOOK_DELAYS[0] * 0.9
    assert got[2].at - got[1].at >= 2.0 * 0.95
    assert hooks.get(f"/jobs/localization/{job_id}").json()["status"] == "completed"


def test_gone_stops_at_once_and_exhausted_schedule_gives_up_without_touching_the_job(
    hooks: httpx.Client, receiver: Callable[..., Receiver]
) -> None:
    gone = receiver(Reply(410))
    broken = receiver()
    broken.default = Reply(500)
    first = submit(hooks, ["de"], callbackUrl=gone.url)["jobs"][0]["id"]
    second = submit(hooks, ["fr"], callbackUrl=broken.url)["jobs"][0]["id"]

    log = deliveries(hooks, first, 1)
    assert [(d["statusCode"], d["outcome"]) for d in log] == [(410, "failed")]
    for request in [*gone.received, *broken.received]:
        verify(secret(hooks), request)
    attempts = len(WEBHOOK_DELAYS) + 1
    log = deliveries(hooks, second, attempts)
    assert [d["attempt"] for d in log] == list(range(1, attempts + 1))
    assert [d["outcome"] for d in log] == ["retrying"] * (attempts - 1) + ["failed"]
    assert len(broken.received) == attempts
    assert len(gone.received) == 1  # 410: never again
    for job_id in (first, second):
        assert hooks.get(f"/jobs/localization/{job_id}").json()["status"] == "completed"


def test_a_failed_job_sends_translation_failed(
    stack: Stack,
    hooks: httpx.Client,
    hooks_org: tuple[str, str],
    receiver: Callable[..., Receiver],
) -> None:
    engine = broken_engine(stack, hooks_org[0], "ja-broken")
    hook = receiver()
    group = submit(hooks, ["ja", "de"], callbackUrl=hook.url, engineId=engine)
    got = hook.wait_for(2)
    payloads = {p["targetLocale"]: p for p in (verify(secret(hooks), r) for r in got)}
    failed = payloads["ja"]
    assert failed["type"] == "translation.failed" and failed["status"] == "failed"
    assert "not configured" in failed["error"] and "data" not in failed
    assert payloads["de"]["type"] == "translation.completed"
    assert wait_for_group(hooks, group["groupId"])["status"] == "partial"


def test_a_large_output_is_sent_as_a_data_url_that_serves_exactly_the_output(
    stack: Stack, hooks: httpx.Client, receiver: Callable[..., Receiver]
) -> None:
    sentence = "The quick brown fox jumps over the lazy dog number {n}. " * 10
    data = {"items": [{"id": i, "text": f"{i} {sentence}"} for i in range(2000)]}
    hook = receiver()
    resp = hooks.post(
        "/jobs/localization",
        json={"sourceLocale": "en", "targetLocales": ["de"], "data": data, "callbackUrl": hook.url},
    )
    assert resp.status_code == 202, resp.text
    job_id = resp.json()["jobs"][0]["id"]
    (request,) = hook.wait_for(1, timeout=120)
    payload = verify(secret(hooks), request)
    assert "data" not in payload and len(request.body) < 2048
    link = payload["dataUrl"]
    assert link.startswith(f"{stack.api_url}/jobs/localization/{job_id}/output?token=")

    fetched = httpx.get(link, timeout=30)  # no API key: the signed link is the credential
    assert fetched.status_code == 200
    assert fetched.headers["content-type"].startswith("application/json")
    assert len(fetched.content) > 2 * 1024 * 1024
    assert fetched.json() == hooks.get(f"/jobs/localization/{job_id}").json()["outputData"]

    token = link.split("token=", 1)[1]
    base = f"{stack.api_url}/jobs/localization"
    assert httpx.get(f"{base}/{job_id}/output?token={token[:-2]}xx").status_code == 403
    assert httpx.get(f"{base}/ljb_0000000000000000/output?token={token}").status_code == 403
    assert httpx.get(f"{base}/{job_id}/output").status_code == 401
    # Expired: a link minted with the server's key whose time is up.
    past = int((datetime.now(UTC) - timedelta(seconds=1)).timestamp())
    expired = output_token(stack.settings.resolved_secret_key(), job_id, past)
    resp = httpx.get(f"{base}/{job_id}/output", params={"token": expired})
    assert resp.status_code == 410 and resp.json()["_tag"] == "GoneError"


def test_after_rotation_both_secrets_verify_during_the_overlap(
    stack: Stack, receiver: Callable[..., Receiver]
) -> None:
    _, key = new_org_key(stack, "Rotating Ltd")
    with httpx.Client(base_url=stack.api_url, headers={"X-API-Key": key}, timeout=30) as client:
        old = secret(client)
        resp = client.post("/webhooks/secret/rotate")
        assert resp.status_code == 200, resp.text
        new = resp.json()["secret"]
        assert new != old and new.startswith("whsec_") and secret(client) == new
        hook = receiver()
        submit(client, ["de"], callbackUrl=hook.url)
        (request,) = hook.wait_for(1)
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    assert verify(old, request)["type"] == "translation.completed"
    assert verify(new, request)["type"] == "translation.completed"


def test_redelivery_sends_the_same_event_again_as_a_new_series(
    hooks: httpx.Client, other_key: str, stack: Stack, receiver: Callable[..., Receiver]
) -> None:
    hook = receiver()
    job_id = submit(hooks, ["de"], callbackUrl=hook.url)["jobs"][0]["id"]
    (first,) = hook.wait_for(1)
    deliveries(hooks, job_id, 1)

    resp = hooks.post(f"/jobs/localization/{job_id}/redeliver")
    assert resp.status_code == 202, resp.text
    assert resp.json() == {"jobId": job_id, "eventId": first.headers["webhook-id"], "series": 2}
    _, again = hook.wait_for(2)
    assert again.headers["webhook-id"] == first.headers["webhook-id"]
    assert json.loads(again.body) == json.loads(first.body)
    log = deliveries(hooks, job_id, 2)
    assert [(d["series"], d["attempt"], d["outcome"]) for d in log] == [
        (1, 1, "delivered"),
        (2, 1, "delivered"),
    ]
    foreign = httpx.post(
        f"{stack.api_url}/jobs/localization/{job_id}/redeliver", headers={"X-API-Key": other_key}
    )
    assert foreign.status_code == 404
    foreign = httpx.get(
        f"{stack.api_url}/jobs/localization/{job_id}/deliveries", headers={"X-API-Key": other_key}
    )
    assert foreign.status_code == 404


def test_default_url_from_settings_and_nothing_sent_without_one(
    stack: Stack, receiver: Callable[..., Receiver]
) -> None:
    _, key = new_org_key(stack, "Defaults GmbH")
    with httpx.Client(base_url=stack.api_url, headers={"X-API-Key": key}, timeout=30) as client:
        nowhere = submit(client, ["de"])["jobs"][0]["id"]
        log = deliveries(client, nowhere, 1)
        assert [(d["outcome"], d["url"]) for d in log] == [("skipped", None)]
        assert client.post(f"/jobs/localization/{nowhere}/redeliver").status_code == 409

        hook = receiver()
        resp = client.put("/webhooks/settings", json={"defaultUrl": hook.url})
        assert resp.status_code == 200, resp.text
        assert resp.json()["defaultUrl"] == hook.url
        job_id = submit(client, ["fr"])["jobs"][0]["id"]
        (request,) = hook.wait_for(1)
        assert verify(secret(client), request)["jobId"] == job_id

        refused = client.put("/webhooks/settings", json={"defaultUrl": "https://10.1.2.3/x"})
        assert refused.status_code == 400 and "defaultUrl" in refused.json()["message"]
        assert client.get("/webhooks/settings").json()["defaultUrl"] == hook.url
        cleared = client.put("/webhooks/settings", json={"defaultUrl": None})
        assert cleared.status_code == 200 and cleared.json()["defaultUrl"] is None


# --- SSRF ------------------------------------------------------------------------------------


def hostile_urls(port: int) -> list[str]:
    """Callback URLs that must never receive anything. ``port`` is a live trap server."""
    return [
        f"https://127.0.0.1:{port}/hook",
        f"https://localhost:{port}/hook",  # a name that resolves to loopback
        f"https://localhost.:{port}/hook",
        f"https://[::1]:{port}/hook",
        f"https://[::ffff:127.0.0.1]:{port}/hook",  # IPv4-mapped
        f"https://[0:0:0:0:0:ffff:7f00:1]:{port}/hook",
        f"https://2130706433:{port}/hook",  # decimal 127.0.0.1
        f"https://0177.0.0.1:{port}/hook",  # octal
        f"https://0x7f.0.0.1:{port}/hook",  # hex
        f"https://127.1:{port}/hook",  # short form
        "https://10.0.0.1/hook",
        "https://172.16.5.4/hook",
        "https://192.168.1.1/hook",
        "https://100.64.0.1/hook",  # carrier-grade NAT
        "https://169.254.169.254/latest/meta-data/",  # cloud metadata
        "https://[::ffff:a9fe:a9fe]/latest/meta-data/",  # metadata, IPv4-mapped
        "https://[64:ff9b::a9fe:a9fe]/",  # metadata through NAT64
        "https://metadata.google.internal/computeMetadata/v1/",
        "https://[fd00::1]/hook",  # IPv6 unique-local
        "https://[fe80::1]/hook",  # IPv6 link-local
        "https://224.0.0.1/hook",  # multicast
        "https://[ff02::1]/hook",
        "https://240.0.0.1/hook",  # reserved
        "https://255.255.255.255/hook",
        "https://0.0.0.0/hook",
        "https://[::]/hook",
        "https://198.18.0.1/hook",  # benchmarking
        f"https://user:secret@{RECEIVER_HOST}/hook",  # userinfo, even on an allowed host
        f"https://evil.example@{RECEIVER_HOST}/hook",
        f"http://{RECEIVER_HOST}/hook",  # not https, even to an allowed host
        "ftp://example.com/hook",
        "file:///etc/passwd",
        f"gopher://127.0.0.1:{port}/",
        "javascript:alert(1)",
    ]


def test_hostile_callback_urls_are_refused_at_submission_and_at_delivery(
    hooks: httpx.Client,
    receiver: Callable[..., Receiver],
    db_counts: Callable[[], dict[str, int]],
) -> None:
    trap = receiver(host="127.0.0.1")
    urls = hostile_urls(trap.port)
    assert len(urls) >= 25
    before = db_counts()
    for url in urls:
        resp = hooks.post(
            "/jobs/localization",
            json={"sourceLocale": "en", "targetLocales": ["de"], "data": DOC, "callbackUrl": url},
        )
        assert resp.status_code == 400, (url, resp.text)
        body = resp.json()
        assert body["_tag"] == "ValidationError" and "callbackUrl" in body["message"], url
        resp = hooks.put("/webhooks/settings", json={"defaultUrl": url})
        assert resp.status_code == 400, (url, resp.text)
    assert db_counts() == before
    assert hooks.get("/webhooks/settings").json()["defaultUrl"] is None

    # The same rules guard every delivery attempt (the worker runs this same check).
    accepted = asyncio.run(accepted_at_delivery(urls, AllowList.parse([RECEIVER_HOST])))
    assert accepted == []
    assert trap.received == []


async def accepted_at_delivery(urls: list[str], allow: AllowList) -> list[str]:
    accepted = []
    for url in urls:
        try:
            await resolve_target(url, allow)
        except CallbackRefused:
            continue
        accepted.append(url)
    return accepted


def test_a_redirect_to_a_private_address_is_not_followed(
    hooks: httpx.Client, receiver: Callable[..., Receiver]
) -> None:
    trap = receiver(host="127.0.0.1")
    hook = receiver(Reply(302, {"Location": f"https://127.0.0.1:{trap.port}/hook"}), Reply(200))
    job_id = submit(hooks, ["de"], callbackUrl=hook.url)["jobs"][0]["id"]
    log = deliveries(hooks, job_id, 2)
    assert [(d["statusCode"], d["outcome"]) for d in log] == [
        (302, "retrying"),
        (200, "delivered"),
    ]
    assert len(hook.received) == 2 and trap.received == []
    for request in hook.received:
        verify(secret(hooks), request)


def test_a_slow_receiver_times_out_and_is_tried_again(
    hooks: httpx.Client, receiver: Callable[..., Receiver]
) -> None:
    # The test stack's attempt timeout is 3 s (conftest).
    hook = receiver(Reply(200, delay=4), Reply(200))
    job_id = submit(hooks, ["de"], callbackUrl=hook.url)["jobs"][0]["id"]
    log = deliveries(hooks, job_id, 2)
    assert [(d["statusCode"], d["outcome"]) for d in log] == [
        (None, "retrying"),
        (200, "delivered"),
    ]
    assert log[0]["error"] == "timed out after 3 s"
    assert 2900 <= log[0]["durationMs"] < 4000
    first, second = hook.received
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    verify(secret(hooks), second)


def test_the_default_schedule_is_the_contracts() -> None:
    """The production schedule, as configured by default and in temporal-dev.yaml, and the
    retry policy built from it (the tests above run a shortened copy)."""
    contract = [5, 300, 1800, 7200, 18000, 36000, 36000]
    assert Settings().webhooks_retry_delays_seconds == contract
    assert webhook_options(Settings()).delays_seconds == contract
    policy = delivery_retry_policy(webhook_options(Settings()))
    assert policy.maximum_attempts == len(contract) + 1
    assert policy.initial_interval == timedelta(seconds=5)
    assert policy.maximum_interval == timedelta(hours=10)
    assert set(policy.non_retryable_error_types or []) == {
        "WebhookGone",
        "WebhookRefused",
        "WebhookGaveUp",
    }
    assert webhook_options(Settings()).timeout_seconds == 15
    # Inputs from before webhook delivery existed get the same schedule.
    assert contract_schedule() == webhook_options(Settings())


def test_a_jobs_event_id_is_its_runs() -> None:
    """The job's workflow run and a redelivery send the same ``webhook-id``; a new run (a
    retry) is a new event; with the run gone, the recorded event's id is sent again."""
    job = "ljb_Abcdefghijklmnop"
    run, later_run = "0f8c6a4e-1b2d-4c3e-9f00-123456789abc", "9d2e7b10-aaaa-4bbb-8ccc-0123456789ab"
    sent = job_event_id(job, run)
    assert sent == "msg_Abcdefghijklmnop0f8c6a4e1b2d"
    assert job_event_id(job, run, last_recorded="msg_other") == sent
    assert job_event_id(job, later_run) != sent
    assert job_event_id(job, None, last_recorded=sent) == sent
    assert job_event_id(job, None) == "msg_Abcdefghijklmnop"


def test_the_previous_secret_stops_signing_when_the_overlap_ends() -> None:
    now = datetime.now(UTC)
    config = WebhookConfig(
        organization_id="org_x",
        secret="whsec_new",
        previous_secret="whsec_old",
        previous_until=now + timedelta(hours=24),
    )
    assert signing_secrets(config, now) == ["whsec_new", "whsec_old"]
    assert signing_secrets(config, now + timedelta(hours=24, seconds=1)) == ["whsec_new"]


def test_retrying_a_failed_job_supersedes_its_pending_failure_event(
    stack: Stack,
    hooks: httpx.Client,
    hooks_org: tuple[str, str],
    receiver: Callable[..., Receiver],
) -> None:
    engine = broken_engine(stack, hooks_org[0], "ja-broken-2")
    # The receiver is down for a while: the failure event waits 30 s before its next attempt,
    # so the job's workflow is still open (delivering) when the retry comes.
    hook = receiver()
    hook.default = Reply(503, {"Retry-After": "30"})
    group = submit(hooks, ["ja"], callbackUrl=hook.url, engineId=engine)
    job_id = group["jobs"][0]["id"]
    assert wait_for_group(hooks, group["groupId"])["status"] == "failed"
    (first,) = hook.wait_for(1)

    retried = hooks.post(f"/jobs/localization/groups/{group['groupId']}/retry")
    assert retried.status_code == 202, retried.text
    second = hook.wait_for(2)[1]
    assert wait_for_group(hooks, group["groupId"])["status"] == "failed"
    # The new run's failure is a new event; the old one got no more attempts.
    assert second.headers["webhook-id"] != first.headers["webhook-id"]
    assert json.loads(second.body)["type"] == "translation.failed"
    log = hooks.get(f"/jobs/localization/{job_id}/deliveries").json()["items"]
    assert [(d["eventId"], d["outcome"]) for d in log] == [
        (first.headers["webhook-id"], "superseded"),
        (second.headers["webhook-id"], "retrying"),
    ]
    assert log[0]["nextAttemptAt"] is None
