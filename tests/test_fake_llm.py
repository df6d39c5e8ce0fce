"""The fake LLM provider over real HTTP, on both wire formats: answers, every misbehaviour,
errors and the record of calls. Needs no stack."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.fake_llm import FakeLLM
from tests.fake_llm_modes import fake_translation, mode_of
from tests.fake_llm_wire import MALFORMED

APIS = ["openai", "anthropic"]
GLOSSARY = [{"term": "course", "translation": "Kurs"}]


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeLLM]:
    with FakeLLM() as server:
        yield server


def user_json(texts: list[str], glossary: list[dict[str, str]] | None = None) -> dict[str, Any]:
    user: dict[str, Any] = {
        "sourceLocale": "en",
        "targetLocale": "de",
        "context": "An e-learning app",
        "items": [
            {"id": str(i), "text": text, "hints": ["a button"]} for i, text in enumerate(texts)
        ],
    }
    if glossary is not None:
        user["glossary"] = glossary
    return user


def request_body(api: str, model: str, user: dict[str, Any]) -> dict[str, Any]:
    content = json.dumps(user, ensure_ascii=False)
    if api == "openai":
        return {
            "model": model,
            "temperature": 0,
            "messages": [
                {"role": "system", "content": "Translate."},
                {"role": "user", "content": content},
            ],
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "translations", "strict": True, "schema": {}},
            },
        }
    return {
        "model": model,
        "max_tokens": 4096,
        "system": "Translate.",
        "temperature": 0,
        "messages": [{"role": "user", "content": content}],
        "tools": [{"name": "submit_translations", "description": "d", "input_schema": {}}],
        "tool_choice": {"type": "tool", "name": "submit_translations"},
    }


def post(
    fake: FakeLLM,
    api: str,
    model: str,
    user: dict[str, Any],
    key: str = "test-key",
    body: bytes | None = None,
    timeout: float = 5,
) -> httpx.Response:
    if api == "openai":
        url = fake.openai_base + "/chat/completions"
        headers = {"Authorization": f"Bearer {key}"}
    else:
        url = fake.anthropic_base + "/v1/messages"
        headers = {"x-api-key": key, "anthropic-version": "2023-06-01"}
    if body is None:
        body = json.dumps(request_body(api, model, user)).encode()
    headers["content-type"] = "application/json"
    return httpx.post(url, content=body, headers=headers, timeout=timeout)


def answer(api: str, response: httpx.Response) -> list[dict[str, str]]:
    """The ANSWER items, read the way a client reads them."""
    assert response.status_code == 200, response.text
    data = response.json()
    if api == "openai":
        assert data["object"] == "chat.completion"
        choice = data["choices"][0]
        assert choice["finish_reason"] == "stop"
        parsed = json.loads(choice["message"]["content"])
    else:
        assert data["type"] == "message"
        assert data["stop_reason"] == "tool_use"
        (block,) = data["content"]
        assert block["type"] == "tool_use"
        assert block["name"] == "submit_translations"
        parsed = block["input"]
    items: list[dict[str, str]] = parsed["items"]
    return items


def error_of(api: str, response: httpx.Response) -> dict[str, Any]:
    data = response.json()
    if api == "openai":
        error: dict[str, Any] = data["error"]
        assert {"message", "type", "code"} <= error.keys()
    else:
        assert data["type"] == "error"
        error = data["error"]
        assert {"type", "message"} <= error.keys()
    return error


def test_translation_rule() -> None:
    assert fake_translation("Open the course ⟦0⟧", "de", GLOSSARY) == "de: Open the Kurs ⟦0⟧"
    assert fake_translation("COURSE courses, Course!", "fr", GLOSSARY) == "fr: Kurs courses, Kurs!"
    # Terms inside tokens are never touched; no glossary only prefixes.
    assert fake_translation("⟦12⟧ 12", "de", [{"term": "12", "translation": "x"}]) == "de: ⟦12⟧ x"
    assert fake_translation("course", "de") == "de: course"
    assert mode_of("drop-keys:t1") == "drop-keys"
    assert mode_of("gpt-4o-mini") == "good"


@pytest.mark.parametrize("api", APIS)
def test_good_answer_shape_and_glossary(fake: FakeLLM, api: str) -> None:
    model = f"good:{api}"
    user = user_json(["Open the course ⟦0⟧", "Close ⟦1⟧ the Course"], GLOSSARY)
    response = post(fake, api, model, user)
    assert answer(api, response) == [
        {"id": "0", "text": "de: Open the Kurs ⟦0⟧"},
        {"id": "1", "text": "de: Close ⟦1⟧ the Kurs"},
    ]
    data = response.json()
    assert data["model"] == model
    usage = data["usage"]
    size = len(response.request.content)
    if api == "openai":
        assert data["id"].startswith("chatcmpl-")
        assert usage["prompt_tokens"] == size // 4
        assert usage["completion_tokens"] == len(data["choices"][0]["message"]["content"]) // 4
        assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    else:
        assert data["id"].startswith("msg_")
        assert data["content"][0]["id"].startswith("toolu_")
        assert usage["input_tokens"] == size // 4
        assert usage["output_tokens"] >= 1


@pytest.mark.parametrize("api", APIS)
def test_drop_keys_first_time_then_answered(fake: FakeLLM, api: str) -> None:
    model = f"drop-keys:{api}"
    user = user_json(["a", "b", "c", "d"])
    assert [i["id"] for i in answer(api, post(fake, api, model, user))] == ["0", "2"]
    assert [i["id"] for i in answer(api, post(fake, api, model, user))] == ["0", "1", "2", "3"]
    # Another model name is another namespace: it has not seen these texts.
    other = f"drop-keys:{api}-other"
    assert [i["id"] for i in answer(api, post(fake, api, other, user))] == ["0", "2"]


@pytest.mark.parametrize("api", APIS)
def test_rename_keys_first_time_then_answered(fake: FakeLLM, api: str) -> None:
    model = f"rename-keys:{api}"
    user = user_json(["a", "b", "c"])
    first = answer(api, post(fake, api, model, user))
    assert first == [
        {"id": "0", "text": "de: a"},
        {"id": "1x", "text": "de: b"},
        {"id": "2", "text": "de: c"},
    ]
    assert [i["id"] for i in answer(api, post(fake, api, model, user))] == ["0", "1", "2"]


@pytest.mark.parametrize("api", APIS)
def test_malformed(fake: FakeLLM, api: str) -> None:
    for _ in range(2):
        response = post(fake, api, f"malformed:{api}", user_json(["a"]))
        assert response.status_code == 200
        data = response.json()
        if api == "openai":
            assert data["choices"][0]["message"]["content"] == MALFORMED
        else:
            assert data["content"] == [{"type": "text", "text": MALFORMED}]
            assert data["stop_reason"] == "end_turn"


@pytest.mark.parametrize("api", APIS)
def test_malformed_once(fake: FakeLLM, api: str) -> None:
    model = f"malformed-once:{api}"
    first = post(fake, api, model, user_json(["a"]))
    assert first.status_code == 200
    with pytest.raises((KeyError, ValueError, AssertionError)):
        answer(api, first)
    assert answer(api, post(fake, api, model, user_json(["a"]))) == [{"id": "0", "text": "de: a"}]


@pytest.mark.parametrize("api", APIS)
def test_break_placeholder(fake: FakeLLM, api: str) -> None:
    user = user_json(["x ⟦0⟧ y ⟦1⟧", "no token"])
    for _ in range(2):
        items = answer(api, post(fake, api, f"break-placeholder:{api}", user))
        assert items == [{"id": "0", "text": "de: x  y ⟦1⟧"}, {"id": "1", "text": "de: no token"}]
    model = f"break-placeholder-once:{api}"
    assert answer(api, post(fake, api, model, user))[0]["text"] == "de: x  y ⟦1⟧"
    assert answer(api, post(fake, api, model, user))[0]["text"] == "de: x ⟦0⟧ y ⟦1⟧"


@pytest.mark.parametrize("api", APIS)
def test_ignore_glossary(fake: FakeLLM, api: str) -> None:
    items = answer(api, post(fake, api, f"ignore-glossary:{api}", user_json(["course"], GLOSSARY)))
    assert items == [{"id": "0", "text": "de: course"}]


@pytest.mark.parametrize("api", APIS)
def test_ratelimit_once(fake: FakeLLM, api: str) -> None:
    model = f"ratelimit-once:{api}"
    first = post(fake, api, model, user_json(["a"]))
    assert first.status_code == 429
    assert first.headers["retry-after"] == "1"
    error = error_of(api, first)
    assert error["type"] == ("requests" if api == "openai" else "rate_limit_error")
    assert answer(api, post(fake, api, model, user_json(["a"]))) == [{"id": "0", "text": "de: a"}]


@pytest.mark.parametrize("api", APIS)
def test_slow(fake: FakeLLM, api: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fake, "slow_seconds", 0.5)
    started = time.monotonic()
    assert answer(api, post(fake, api, f"slow:{api}", user_json(["a"])))
    assert time.monotonic() - started >= 0.5
    with pytest.raises(httpx.ReadTimeout):
        post(fake, api, f"slow:{api}", user_json(["a"]), timeout=0.1)


def test_slow_once(fake: FakeLLM, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fake, "slow_seconds", 0.3)
    started = time.monotonic()
    post(fake, "openai", "slow-once:t", user_json(["a"]))
    assert time.monotonic() - started >= 0.3
    started = time.monotonic()
    assert answer("openai", post(fake, "openai", "slow-once:t", user_json(["a"])))
    assert time.monotonic() - started < 0.3


@pytest.mark.parametrize("api", APIS)
def test_unauthorized(fake: FakeLLM, api: str) -> None:
    wrong = post(fake, api, f"good:{api}-key", user_json(["a"]), key="wrong-key")
    assert wrong.status_code == 401
    error = error_of(api, wrong)
    if api == "openai":
        assert error["code"] == "invalid_api_key"
    else:
        assert error["type"] == "authentication_error"
    assert post(fake, api, f"unauthorized:{api}", user_json(["a"])).status_code == 401


@pytest.mark.parametrize("api", APIS)
def test_unknown_model(fake: FakeLLM, api: str) -> None:
    model = f"unknown-model:{api}"
    response = post(fake, api, model, user_json(["a"]))
    assert response.status_code == 404
    if api == "openai":
        assert response.json() == {
            "error": {
                "message": f"The model `{model}` does not exist",
                "type": "invalid_request_error",
                "code": "model_not_found",
            }
        }
    else:
        assert response.json() == {
            "type": "error",
            "error": {"type": "not_found_error", "message": f"model: {model}"},
        }


@pytest.mark.parametrize("api", APIS)
def test_server_error(fake: FakeLLM, api: str) -> None:
    response = post(fake, api, f"server-error:{api}", user_json(["a"]))
    assert response.status_code == 500
    error = error_of(api, response)
    assert error["type"] == ("server_error" if api == "openai" else "api_error")


@pytest.mark.parametrize("api", APIS)
def test_bad_body(fake: FakeLLM, api: str) -> None:
    for body in [b"{not json", b"[]", json.dumps({"model": "good"}).encode()]:
        response = post(fake, api, "", {}, body=body)
        assert response.status_code == 400, body
        error = error_of(api, response)
        assert error["type"] == "invalid_request_error"
    # The user message must be Tolk's USER JSON.
    bad_user = request_body(api, "good:bad", {"items": [{"id": 0}]})
    assert post(fake, api, "", {}, body=json.dumps(bad_user).encode()).status_code == 400


def test_anthropic_needs_version_header(fake: FakeLLM) -> None:
    body = request_body("anthropic", "good:version", user_json(["a"]))
    response = httpx.post(
        fake.anthropic_base + "/v1/messages", json=body, headers={"x-api-key": "test-key"}
    )
    assert response.status_code == 400
    assert error_of("anthropic", response)["type"] == "invalid_request_error"


def test_calls_are_recorded(fake: FakeLLM) -> None:
    user = user_json(["Open the course ⟦0⟧", "b"], GLOSSARY)
    post(fake, "openai", "good:rec", user)
    post(fake, "anthropic", "good:rec", user)
    post(fake, "anthropic", "server-error:rec", user)
    calls = fake.calls(model="good:rec")
    assert [(c.api, c.model, c.status) for c in calls] == [
        ("openai", "good:rec", 200),
        ("anthropic", "good:rec", 200),
    ]
    assert calls[0].at <= calls[1].at
    for call in calls:
        assert call.items == user["items"]
        assert call.user == user
        assert call.system == "Translate."
    (anthropic,) = fake.calls(model="good:rec", api="anthropic")
    assert anthropic.headers["anthropic-version"] == "2023-06-01"
    assert [c.status for c in fake.calls(model="server-error:rec")] == [500]
    post(fake, "openai", "", {}, body=b"{not json")
    bad = [c for c in fake.calls(api="openai") if c.status == 400][-1]
    assert (bad.model, bad.items, bad.user) == ("", [], None)


def test_reset_forgets_calls_and_state() -> None:
    with FakeLLM(api_key="k2") as fake:
        assert (
            post(fake, "openai", "ratelimit-once:r", user_json(["a"]), key="k2").status_code == 429
        )
        assert len(fake.calls()) == 1
        fake.reset()
        assert fake.calls() == []
        assert (
            post(fake, "openai", "ratelimit-once:r", user_json(["a"]), key="k2").status_code == 429
        )
    assert fake.url.startswith("http://127.0.0.1:")
    assert fake.openai_base == fake.url + "/v1"
    assert fake.anthropic_base == fake.url


def test_close_does_not_wait_for_a_slow_request() -> None:
    fake = FakeLLM(slow_seconds=3).__enter__()
    errors: list[BaseException] = []

    def slow_request() -> None:
        try:
            post(fake, "openai", "slow:close", user_json(["a"]), timeout=5)
        except httpx.HTTPError as exc:
            errors.append(exc)

    thread = threading.Thread(target=slow_request)
    thread.start()
    deadline = time.monotonic() + 2
    while not fake.calls() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert fake.calls(), "the slow request never arrived"
    started = time.monotonic()
    fake.close()
    assert time.monotonic() - started < 1
    thread.join(timeout=2)
    assert not thread.is_alive()
    assert errors  # dropped unanswered
