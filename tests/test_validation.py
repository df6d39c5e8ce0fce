"""Every invalid POST /jobs/localization gets the documented status and a JSON error, and
creates nothing. One valid request is the control: the table cannot pass by refusing all."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from stack import Stack

VALID: dict[str, Any] = {"sourceLocale": "en", "targetLocales": ["de"], "data": {"t": "Hi"}}


def with_(**changes: Any) -> dict[str, Any]:
    body = dict(VALID)
    for key, value in changes.items():
        if value is ...:
            body.pop(key, None)
        else:
            body[key] = value
    return body


def nested(depth: int) -> dict[str, Any]:
    node: dict[str, Any] = {"leaf": "text"}
    for _ in range(depth - 1):
        node = {"n": node}
    return node


# (id, raw body or JSON-able body, expected status, expected first error path)
CASES: list[tuple[str, Any, int, str]] = [
    ("malformed-json", b'{"sourceLocale": "en", ', 400, "body"),
    ("not-utf8", b"\xff\xfe{}", 400, "body"),
    ("array-body", [VALID], 400, "body"),
    ("string-body", "hello", 400, "body"),
    ("number-body", 42, 400, "body"),
    ("empty-body", b"", 400, "body"),
    ("missing-source", with_(sourceLocale=...), 400, "sourceLocale"),
    ("missing-targets", with_(targetLocales=...), 400, "targetLocales"),
    ("missing-data", with_(data=...), 400, "data"),
    ("underscore-locale", with_(targetLocales=["pt_br"]), 400, "targetLocales[0]"),
    ("garbage-locale", with_(targetLocales=["de", "xx-??"]), 400, "targetLocales[1]"),
    ("und-locale", with_(targetLocales=["und"]), 400, "targetLocales[0]"),
    ("empty-locale", with_(targetLocales=[""]), 400, "targetLocales[0]"),
    ("number-locale", with_(targetLocales=[123]), 400, "targetLocales[0]"),
    ("bad-source", with_(sourceLocale="english!"), 400, "sourceLocale"),
    ("no-targets", with_(targetLocales=[]), 400, "targetLocales"),
    ("duplicate-targets", with_(targetLocales=["de", "fr", "de"]), 400, "targetLocales"),
    ("duplicate-after-normalising", with_(targetLocales=["pt-br", "pt-BR"]), 400, "targetLocales"),
    (
        "too-many-targets",
        with_(targetLocales=[f"de-x-t{i:03d}" for i in range(101)]),
        400,
        "targetLocales",
    ),
    ("source-in-targets", with_(targetLocales=["de", "en"]), 400, "targetLocales"),
    (
        "source-in-targets-normalised",
        with_(sourceLocale="pt-br", targetLocales=["pt-BR"]),
        400,
        "targetLocales",
    ),
    ("http-callback", with_(callbackUrl="http://example.com/hook"), 400, "callbackUrl"),
    ("ftp-callback", with_(callbackUrl="ftp://example.com/hook"), 400, "callbackUrl"),
    (
        "userinfo-callback",
        with_(callbackUrl="https://user:pw@example.com/hook"),
        400,
        "callbackUrl",
    ),
    ("hostless-callback", with_(callbackUrl="https:///hook"), 400, "callbackUrl"),
    ("data-array", with_(data=["a", "b"]), 400, "data"),
    ("data-string", with_(data="text"), 400, "data"),
    ("data-null", with_(data=None), 400, "data"),
    ("string-too-long", with_(data={"t": "x" * 100_001}), 400, "data"),
    ("too-many-strings", with_(data={"items": ["s"] * 20_001}), 400, "data"),
    ("too-deep", with_(data=nested(33)), 400, "data"),
    ("targets-as-string", with_(targetLocales="de"), 400, "targetLocales"),
    ("context-number", with_(context=5), 400, "context"),
    ("locked-keys-string", with_(lockedKeys="id"), 400, "lockedKeys"),
    ("hints-not-lists", with_(hints={"t": "Title"}), 400, "hints.t"),
    ("idempotency-number", with_(idempotencyKey=7), 400, "idempotencyKey"),
    ("idempotency-empty", with_(idempotencyKey=""), 400, "idempotencyKey"),
    ("idempotency-too-long", with_(idempotencyKey="k" * 256), 400, "idempotencyKey"),
    ("idempotency-control-char", with_(idempotencyKey="a\nb"), 400, "idempotencyKey"),
    ("unknown-field", with_(sourceLanguage="en"), 400, "sourceLanguage"),
    ("unknown-engine", with_(engineId="eng_AAAAAAAAAAAAAAAA"), 400, "engineId"),
]


def encode(body: Any) -> bytes:
    return body if isinstance(body, bytes) else json.dumps(body).encode()


@pytest.mark.parametrize(
    ("body", "status", "path"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_invalid_request_is_refused_and_creates_nothing(
    client: httpx.Client,
    db_counts: Callable[[], dict[str, int]],
    body: Any,
    status: int,
    path: str,
) -> None:
    before = db_counts()
    resp = client.post(
        "/jobs/localization", content=encode(body), headers={"Content-Type": "application/json"}
    )
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    error = resp.json()
    assert error["_tag"] == "ValidationError"
    assert isinstance(error["message"], str) and error["message"]
    assert error["details"], error
    assert error["details"][0]["path"] == path, error
    assert error["message"].startswith(path), error
    assert db_counts() == before


def test_oversize_body_is_413_and_creates_nothing(
    client: httpx.Client, db_counts: Callable[[], dict[str, int]]
) -> None:
    before = db_counts()
    big = json.dumps(with_(data={"t": "x" * (5 * 1024 * 1024)})).encode()
    resp = client.post(
        "/jobs/localization", content=big, headers={"Content-Type": "application/json"}
    )
    assert resp.status_code == 413
    assert resp.json()["_tag"] == "PayloadTooLargeError"
    assert "5242880" in resp.json()["message"]
    assert db_counts() == before


def test_oversize_body_without_content_length_is_413(stack: Stack, api_key: str) -> None:
    def chunks() -> Any:
        yield b'{"sourceLocale":"en","targetLocales":["de"],"data":{"t":"'
        for _ in range(6):
            yield b"x" * (1024 * 1024)
        yield b'"}}'

    resp = httpx.post(
        f"{stack.api_url}/jobs/localization",
        content=chunks(),
        headers={"X-API-Key": api_key, "Content-Type": "application/json"},
        timeout=60,
    )
    assert resp.status_code == 413
    assert resp.json()["_tag"] == "PayloadTooLargeError"


@pytest.mark.parametrize(
    "headers",
    [{}, {"X-API-Key": "tolk_00000000_notakey"}, {"X-API-Key": "garbage"}],
    ids=["missing", "unknown", "malformed"],
)
def test_requests_without_a_valid_key_are_401(
    stack: Stack, db_counts: Callable[[], dict[str, int]], headers: dict[str, str]
) -> None:
    before = db_counts()
    resp = httpx.post(f"{stack.api_url}/jobs/localization", json=VALID, headers=headers)
    assert resp.status_code == 401
    assert resp.json()["_tag"] == "UnauthorizedError"
    assert db_counts() == before


def test_the_valid_control_request_is_accepted_and_normalised(client: httpx.Client) -> None:
    resp = client.post(
        "/jobs/localization", json=with_(sourceLocale="EN", targetLocales=["pt-br", "zh-hant"])
    )
    assert resp.status_code == 202, resp.text
    body = resp.json()
    assert body["sourceLocale"] == "en"
    assert [job["targetLocale"] for job in body["jobs"]] == ["pt-BR", "zh-Hant"]
