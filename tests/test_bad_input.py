"""Bad input on the real stack: every refusal is a JSON 400 naming the field, and the request
changes nothing. One class of input per test group (explicit nulls, text that is not valid
Unicode, numbers JSON cannot carry, characters a URL may not hold, bad query values), each
with accepted controls so that a test cannot pass by refusing everything."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import update
from sqlmodel import col

from api.errors import ValidationError
from api.requests import parse_json
from stack import Stack
from store.tables import Engine
from tests.conftest import RECEIVER_HOST, new_org_key, run_sql, wait_for_group
from webhooks.urls import CallbackRefused, check_syntax

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
    config = {"models": None, "glossary": None, "brandVoices": None, "instructions": None}
    run_sql(stack, update(Engine).where(col(Engine.id) == engine["id"]).values(config=config))
    listed = {e["id"]: e for e in engines(org)}
    assert listed[engine["id"]]["models"] == [] and listed[engine["id"]]["glossary"] == []
    # And it still translates: its null lists are empty ones to the engine plan too.
    created = org.post(
        "/jobs/localization",
        json={"sourceLocale": "en", "targetLocales": ["de"], "data": {"t": "Hi"},
              "engineId": engine["id"]},
    )  # fmt: skip
    assert created.status_code == 202, created.text
    group = wait_for_group(org, created.json()["groupId"])
    assert group["status"] == "completed", group


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


# --- 2. text that is not valid Unicode ------------------------------------------------------

BAD_TEXT: list[tuple[str, bytes, str]] = [
    ("escape-in-value", rb'{"t": "a\ud800b"}', "data.t"),
    ("low-escape-in-value", rb'{"t": "\udc00"}', "data.t"),
    ("escape-in-key", rb'{"\ud800": "x"}', "data.\\ud800"),
    ("escape-in-nested-key", rb'{"a": [1, {"k\udfff": "x"}]}', "data.a[1].k\\udfff"),
    ("reversed-pair", rb'{"t": "\ude00\ud83d"}', "data.t"),
    ("raw-encoded-surrogate", b'{"t": "\xed\xa0\x80"}', "body"),
    ("nul-escape", rb'{"t": "a\u0000"}', "data.t"),
]


def post_raw_data(client: httpx.Client, route: str, data: bytes) -> httpx.Response:
    """POST a job (or a /process/localize call) whose ``data`` is these raw bytes."""
    head = (
        b'{"sourceLocale": "en", "targetLocales": ["de"], "data": '
        if route == "/jobs/localization"
        else b'{"sourceLocale": "en", "targetLocale": "de", "data": '
    )
    return client.post(route, content=head + data + b"}", headers=JSON)


@pytest.mark.parametrize(("data", "path"), [c[1:] for c in BAD_TEXT], ids=[c[0] for c in BAD_TEXT])
@pytest.mark.parametrize("route", ["/jobs/localization", "/process/localize"])
def test_text_that_is_not_unicode_is_refused_and_creates_nothing(
    client: httpx.Client,
    db_counts: Callable[[], dict[str, int]],
    route: str,
    data: bytes,
    path: str,
) -> None:
    before = db_counts()
    error = refused(post_raw_data(client, route, data), path)
    assert any(word in error["message"] for word in ("Unicode", "UTF-8", "U+0000")), error
    assert db_counts() == before


@pytest.mark.parametrize(
    ("route", "method", "body", "path"),
    [
        ("/engines", "POST", rb'{"name": "\ud800"}', "name"),
        ("/engines", "POST", rb'{"name": "x", "glossary": [{"term": "\udbff",'
                             rb' "doNotTranslate": true}]}', "glossary[0].term"),
        ("/process/recognize", "POST", rb'{"text": "\ud800"}', "text"),
        ("/webhooks/settings", "PUT", rb'{"defaultUrl": "https://a/\ud800"}', "defaultUrl"),
        ("/process/estimate", "POST", rb'{"items": [], "\ud800": 1}', "\\ud800"),
    ],
)  # fmt: skip
def test_surrogates_are_refused_on_every_body_route(
    org: httpx.Client, route: str, method: str, body: bytes, path: str
) -> None:
    before = engines(org)
    refused(org.request(method, route, content=body, headers=JSON), path, "Unicode")
    assert engines(org) == before


def test_valid_pairs_and_non_ascii_keys_come_back_as_sent(client: httpx.Client) -> None:
    body = rb'{"targetLocale": "de", "sourceLocale": "en", "data": {"\ud83d\ude00": "\ud83d\ude00",'
    body += '"grüße": "Grüße", "日本": ["東京"]}}'.encode()
    resp = client.post("/process/localize", content=body, headers=JSON)
    assert resp.status_code == 200, resp.text
    assert list(resp.json()["data"]) == ["\U0001f600", "grüße", "日本"]


# Pieces of a JSON string literal: escaped backslashes, surrogate halves, NUL, plain text.
PIECES = ["\\\\", "\\ud83d", "\\uDE00", "\\udc00", "\\uD800", "\\udbff", "\\udfff", "\\u0000",
          "\\u0041", "u", "d800", "a", "\\n", '\\"', "é", "😀"]  # fmt: skip


@settings(max_examples=2_000, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=12), st.booleans())
def test_parse_json_refuses_exactly_the_strings_that_are_not_text(
    pieces: list[str], as_key: bool
) -> None:
    """The quick scan of the raw text agrees with the parsed strings, backslash runs, pairs
    and keys included: refused when a string would hold a lone surrogate or U+0000."""
    inner = "".join(pieces)
    text = '{"' + inner + '": 1}' if as_key else '{"k": "' + inner + '"}'
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError:
        return
    string = next(iter(parsed)) if as_key else parsed["k"]
    bad = any(char == "\0" or "\ud800" <= char <= "\udfff" for char in string)
    if bad:
        with pytest.raises(ValidationError) as info:
            parse_json(text.encode("utf-8", "surrogatepass"))
        assert info.value.extra["details"][0]["path"] in {"k", string.encode(
            "utf-8", "backslashreplace").decode()}  # fmt: skip
    else:
        assert parse_json(text.encode()) == parsed


# --- 3. numbers JSON cannot carry -------------------------------------------------------------

BAD_NUMBERS: list[tuple[str, bytes, str]] = [
    ("nan", b'{"n": NaN}', "data.n"),
    ("infinity", b'{"n": Infinity}', "data.n"),
    ("minus-infinity", b'{"a": [1, -Infinity]}', "data.a[1]"),
    ("overflow", b'{"n": 1e999}', "data.n"),
    ("negative-overflow", b'{"x": {"n": -1.5E+400}}', "data.x.n"),
    ("overflow-by-digits", b'{"n": ' + b"9" * 400 + b".0}", "data.n"),
    ("too-many-digits", b'{"n": ' + b"1" * 5000 + b"}", "data.n"),
]


@pytest.mark.parametrize(
    ("data", "path"), [c[1:] for c in BAD_NUMBERS], ids=[c[0] for c in BAD_NUMBERS]
)
@pytest.mark.parametrize("route", ["/jobs/localization", "/process/localize"])
def test_numbers_json_cannot_carry_are_refused_and_create_nothing(
    client: httpx.Client,
    db_counts: Callable[[], dict[str, int]],
    route: str,
    data: bytes,
    path: str,
) -> None:
    before = db_counts()
    error = refused(post_raw_data(client, route, data), path)
    assert "number" in error["message"] or "digits" in error["message"], error
    assert db_counts() == before


@pytest.mark.parametrize(
    ("route", "body", "path"),
    [
        ("/process/estimate", b'{"items": [{"targetLocale": "de", "sourceChars": 1e999}]}',
         "items[0].sourceChars"),
        ("/process/estimate", b'{"items": [{"targetLocale": "de", "sourceChars": '
                              + b"7" * 4500 + b"}]}", "items[0].sourceChars"),
        ("/engines", b'{"name": "x", "isDefault": NaN}', "isDefault"),
    ],
)  # fmt: skip
def test_numbers_json_cannot_carry_are_refused_everywhere(
    org: httpx.Client, route: str, body: bytes, path: str
) -> None:
    refused(org.post(route, content=body, headers=JSON), path)


def test_numbers_json_can_carry_pass_through(client: httpx.Client) -> None:
    big = "1" * 4000
    body = ('{"sourceLocale": "en", "targetLocale": "de", "data": {"a": 1e308, "b": -0.0, '
            f'"c": 1e-999, "d": {big}, "e": 12.5e3, "f": "1e999"}}}}').encode()  # fmt: skip
    resp = client.post("/process/localize", content=body, headers=JSON)
    assert resp.status_code == 200, resp.text
    data = resp.json()["data"]
    assert data["a"] == 1e308 and data["c"] == 0.0 and data["d"] == int(big)
    assert data["e"] == 12500.0 and isinstance(data["f"], str)


def test_a_group_token_ttl_of_infinity_is_refused(client: httpx.Client) -> None:
    group_id = client.post("/jobs/localization", json=JOB).json()["groupId"]
    resp = client.post(
        f"/jobs/localization/groups/{group_id}/tokens",
        content=b'{"ttlSeconds": Infinity}',
        headers=JSON,
    )
    refused(resp, "ttlSeconds", "number")


# --- 4. characters a URL may not hold ---------------------------------------------------------

BAD_URLS = [
    ("control-in-path", f"https://{RECEIVER_HOST}/ho\x01ok"),
    ("control-in-host", "https://exa\x1fmple.com/hook"),
    ("delete-char", f"https://{RECEIVER_HOST}/hook\x7f"),
    ("escape-char", f"https://{RECEIVER_HOST}/\x1b[31m"),
    ("non-ascii-path", f"https://{RECEIVER_HOST}/h\u00e9"),
    ("idn-host", "https://b\u00fccher.example/hook"),
    ("non-ascii-query", f"https://{RECEIVER_HOST}/hook?q=\u2603"),
]


@pytest.mark.parametrize("url", [c[1] for c in BAD_URLS], ids=[c[0] for c in BAD_URLS])
def test_urls_with_characters_a_url_may_not_hold_are_refused(
    client: httpx.Client, org: httpx.Client, db_counts: Callable[[], dict[str, int]], url: str
) -> None:
    before, settings = db_counts(), org.get("/webhooks/settings").json()
    error = refused(client.post("/jobs/localization", json={**JOB, "callbackUrl": url}),
                    "callbackUrl", "printable ASCII")  # fmt: skip
    assert "punycode" in error["message"]
    assert db_counts() == before
    refused(org.put("/webhooks/settings", json={"defaultUrl": url}), "defaultUrl", "ASCII")
    assert org.get("/webhooks/settings").json() == settings


def test_ascii_urls_are_still_accepted(org: httpx.Client) -> None:
    url = f"https://{RECEIVER_HOST}/h%C3%A9?q=a~b&r=%E2%98%83#frag"
    resp = org.put("/webhooks/settings", json={"defaultUrl": url})
    assert resp.status_code == 200 and resp.json()["defaultUrl"] == url, resp.text
    assert org.put("/webhooks/settings", json={"defaultUrl": None}).status_code == 200
    # An internationalised host given as punycode passes the syntax check (where it then
    # resolves to is checked separately, and needs DNS).
    assert check_syntax("https://xn--bcher-kva.example/hook").hostname == "xn--bcher-kva.example"
    with pytest.raises(CallbackRefused, match="punycode"):
        check_syntax("https://bücher.example/hook")


# --- 7. the rest of the request surface --------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "path"),
    [
        ({"createdAfter": "0001-01-01T00:00:00+23:59"}, "createdAfter"),
        ({"createdAfter": "9999-12-31T23:59:59-23:59"}, "createdAfter"),
        ({"cursor": "MDAwMS0wMS0wMVQwMDowMDowMCsyMzo1OXx4"}, "cursor"),  # year 1, +23:59
        ({"cursor": "OTk5OS0xMi0zMVQyMzo1OTo1OS0yMzo1OXx4"}, "cursor"),  # year 9999, -23:59
        ({"cursor": "MjAyMC0wMS0wMXx4"}, "cursor"),  # "2020-01-01|x": no time zone
        ({"cursor": "MjAyMC0wMS0wMVQwMDowMDowMFp8AA"}, "cursor"),  # id part "\x00"
        ({"engineId": "eng_\x00"}, "engineId"),
        ({"groupId": "x" * 100}, "groupId"),
        ({"targetLocale": "\ufffd"}, "targetLocale"),
        ({"limit": "9" * 5000}, "limit"),
    ],
)
def test_bad_list_query_values_are_400(
    client: httpx.Client, params: dict[str, str], path: str
) -> None:
    refused(client.get("/jobs/localization", params=params), path)


def test_bad_last_event_ids_are_400(stack: Stack, client: httpx.Client, api_key: str) -> None:
    group_id = client.post("/jobs/localization", json=JOB).json()["groupId"]
    url = f"{stack.api_url}/jobs/localization/groups/{group_id}/events"
    for raw in (b"\xb2", b"\xff\xfe", b"1" * 19, b"-0"):
        resp = httpx.get(url, headers={b"X-API-Key": api_key.encode(), b"Last-Event-ID": raw})
        refused(resp, "Last-Event-ID")


# --- lockedKeys patterns whose cost grows with the input ---------------------------------


@pytest.mark.parametrize(
    ("patterns", "problem"),
    [
        ([f"a{i}.b" for i in range(21)], "more than 20 patterns with a dot"),
        ([f"t{i}_*" for i in range(9)], "wildcard inside"),
        ([".".join(["s"] * 17)], "more than 16 segments"),
        (["x" * 201], "at most 200 characters"),
        ([f"k{i}" for i in range(1001)], "at most 1000 items"),
    ],
)
def test_locked_keys_that_would_cost_too_much_are_refused(
    client: httpx.Client, db_counts: Callable[[], dict[str, int]], patterns: list[str], problem: str
) -> None:
    before = db_counts()
    resp = client.post("/jobs/localization", json={**JOB, "lockedKeys": patterns})
    assert resp.status_code == 400, resp.text
    assert resp.json()["details"][0]["path"].startswith("lockedKeys"), resp.json()
    assert problem in resp.json()["message"], resp.json()
    assert db_counts() == before


def test_locked_keys_within_the_limits_are_accepted(client: httpx.Client) -> None:
    patterns = [
        *(f"name{i}" for i in range(950)),  # bare names cost one lookup each: not limited
        *(f"a{i}.**.b" for i in range(18)),  # with the two below: 20 with a dot
        *(f"t{i}_*" for i in range(8)),
        "**.**.**.**.**.**.**.x",
        ".".join(["s"] * 16),
    ]
    resp = client.post("/jobs/localization", json={**JOB, "lockedKeys": patterns})
    assert resp.status_code == 202, resp.text
