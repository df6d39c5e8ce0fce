"""LLM engines end to end: jobs on the real stack whose engines call the fake provider
(OpenAI chat-completions and Anthropic Messages wire formats) and its failure modes.

Every test names its own models (``mode:test-id``), so the fake's per-model state and the
translation memory (keyed by engine) never leak between tests.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from collections import Counter
from typing import Any

import httpx
import pytest

from localization.icu_plurals import adapt_plurals
from localization.masking import mask
from tests.conftest import LLM_BATCH_TOKENS, wait_for_group
from tests.fake_llm import FakeLLM
from tests.test_masking import BRAND, CORPUS, TERMS, protected

TOKEN = re.compile(r"⟦\s*\d+\s*⟧")


def model(mode: str) -> str:
    return f"{mode}:{uuid.uuid4().hex[:8]}"


def new_engine(client: httpx.Client, *chain: tuple[str, str], **extra: Any) -> str:
    models = [{"provider": provider, "model": name} for provider, name in chain]
    resp = client.post("/engines", json={"name": f"llm {uuid.uuid4().hex[:6]}", "models": models,
                                         **extra})  # fmt: skip
    assert resp.status_code == 201, resp.text
    engine_id: str = resp.json()["id"]
    return engine_id


def run_job(
    client: httpx.Client, engine_id: str, data: dict[str, Any], **extra: Any
) -> dict[str, Any]:
    """Submit one German job, wait for its group, return the job as GET shows it."""
    resp = client.post(
        "/jobs/localization",
        json={"sourceLocale": "en", "targetLocales": ["de"], "data": data, "engineId": engine_id,
              **extra},
    )  # fmt: skip
    assert resp.status_code == 202, resp.text
    group = wait_for_group(client, resp.json()["groupId"], timeout=90)
    job: dict[str, Any] = client.get(f"/jobs/localization/{group['jobs'][0]['id']}").json()
    return job


def fake_de(text: str) -> str:
    """What the fake answers for ``text`` (after unmasking): the locale prefix."""
    return f"de: {text}"


DOC = {
    "title": "Welcome, {name}!",
    "steps": [
        {"id": "intro", "heading": "Open the course", "body": "You have %d lessons left."},
        {"id": "end", "heading": "Finish", "body": 'Read <a href="/faq">the FAQ</a> &amp; more'},
    ],
    "count": 3,
    "ok": True,
}


def test_openai_engine_translates_with_context_hints_glossary_and_locked_keys(
    client: httpx.Client, fake_llm: FakeLLM
) -> None:
    name = model("good")
    engine_id = new_engine(
        client,
        ("openai", name),
        glossary=[{"term": "course", "translation": "Kurs"}, {"term": "FAQ",
                                                               "doNotTranslate": True}],
        brandVoices=[{"targetLocale": "de", "text": "Du-Form, freundlich."}],
        instructions=[{"targetLocale": "*", "text": "Keep it short."}],
    )  # fmt: skip
    job = run_job(
        client,
        engine_id,
        DOC,
        context="An e-learning app for nurses",
        hints={"steps.0.heading": ["Course outline", "Step title"]},
        lockedKeys=["id"],
    )
    assert job["status"] == "completed", job
    out = job["outputData"]
    assert out == {
        "title": fake_de("Welcome, {name}!"),
        "steps": [
            {"id": "intro", "heading": "de: Open the Kurs",
             "body": fake_de("You have %d lessons left.")},
            {"id": "end", "heading": fake_de("Finish"),
             "body": fake_de("Read <a href=\"/faq\">the FAQ</a> &amp; more")},
        ],
        "count": 3,
        "ok": True,
    }  # fmt: skip
    assert list(out) == list(DOC)

    calls = fake_llm.calls(model=name)
    assert len(calls) == 1 and calls[0].api == "openai" and calls[0].status == 200
    sent = calls[0].user
    assert sent is not None
    assert sent["context"] == "An e-learning app for nurses"
    assert sent["glossary"] == [{"term": "course", "translation": "Kurs"}]
    texts = [item["text"] for item in sent["items"]]
    # Placeholders, markup and the do-not-translate term travel as tokens; locked keys and
    # user key paths never leave the server; ids are short and opaque.
    wire = json.dumps(sent, ensure_ascii=False)
    for raw in ("{name}", "%d", "<a href", "&amp;", "FAQ", "intro", "steps.0"):
        assert raw not in wire, raw
    assert "Welcome, ⟦0⟧!" in texts
    assert all(len(item["id"]) <= 2 for item in sent["items"])
    hinted = [item for item in sent["items"] if item["text"] == "Open the course"]
    assert hinted[0]["hints"] == ["Course outline", "Step title"]
    assert "Du-Form, freundlich." in calls[0].system and "Keep it short." in calls[0].system

    assert job["usage"]["strings"] == 5 and job["usage"]["lockedStrings"] == 2
    assert job["usage"]["inputTokens"] > 0 and job["usage"]["outputTokens"] > 0
    assert job["usage"]["providerCalls"] == 1 and job["usage"]["memoryHits"] == 0
    assert job["steps"][0]["model"] == f"openai/{name}" and job["warnings"] == []


def test_anthropic_engine_translates(client: httpx.Client, fake_llm: FakeLLM) -> None:
    name = model("good")
    job = run_job(client, new_engine(client, ("anthropic", name)), {"a": "Hello {x}", "b": "Bye"})
    assert job["status"] == "completed", job
    assert job["outputData"] == {"a": "de: Hello {x}", "b": "de: Bye"}
    calls = fake_llm.calls(model=name)
    assert [c.api for c in calls] == ["anthropic"]
    assert job["steps"][0]["model"] == f"anthropic/{name}" and job["usage"]["inputTokens"] > 0


@pytest.mark.parametrize("api", ["openai", "anthropic"])
@pytest.mark.parametrize("mode", ["drop-keys", "rename-keys", "break-placeholder-once"])
def test_broken_answers_are_repaired_by_resending_only_those_strings(
    client: httpx.Client, fake_llm: FakeLLM, mode: str, api: str
) -> None:
    name = model(mode)
    data = {f"k{i}": f"Item {i} for {{user}}" for i in range(6)}
    job = run_job(client, new_engine(client, (api, name)), data)
    assert job["status"] == "completed", job
    assert job["outputData"] == {k: fake_de(v) for k, v in data.items()}
    calls = fake_llm.calls(model=name)
    assert len(calls) == 2, [len(c.items) for c in calls]
    assert len(calls[0].items) == 6
    first_ids = [item["id"] for item in calls[0].items]
    # Only what came back broken goes again: the fake drops or renames the items at odd
    # positions, and breaks the placeholder of every item it has not seen before.
    broken = first_ids if mode == "break-placeholder-once" else first_ids[1::2]
    assert [item["id"] for item in calls[1].items] == broken
    assert job["warnings"] == []


def test_a_model_that_keeps_breaking_placeholders_leaves_warnings_not_holes(
    client: httpx.Client, fake_llm: FakeLLM
) -> None:
    name = model("break-placeholder")
    data = {"plain": "Save", "ph": "Hello {name}", "html": "<b>Bold</b> move"}
    job = run_job(client, new_engine(client, ("openai", name)), data)
    assert job["status"] == "completed_with_warnings", job
    # Strings without tokens are translated; broken ones keep their source text.
    assert job["outputData"] == {"plain": "de: Save", "ph": "Hello {name}",
                                 "html": "<b>Bold</b> move"}  # fmt: skip
    assert sorted((w["code"], w["key"]) for w in job["warnings"]) == [
        ("placeholder_mismatch", "html"),
        ("placeholder_mismatch", "ph"),
    ]
    assert all("kept the source text" in w["message"] for w in job["warnings"])
    assert len(fake_llm.calls(model=name)) == 3  # first call + two repair rounds


def test_an_ignored_glossary_term_is_repaired_then_warned(
    client: httpx.Client, fake_llm: FakeLLM
) -> None:
    name = model("ignore-glossary")
    engine_id = new_engine(
        client, ("openai", name), glossary=[{"sourceLocale": "en", "targetLocale": "de",
                                             "term": "checkout", "translation": "Kasse"}]
    )  # fmt: skip
    job = run_job(client, engine_id, {"a": "Go to checkout", "b": "Thanks"})
    assert job["status"] == "completed_with_warnings", job
    assert job["outputData"] == {"a": "de: Go to checkout", "b": "de: Thanks"}
    assert [(w["code"], w["key"]) for w in job["warnings"]] == [("glossary_term_missing", "a")]
    assert "Kasse" in job["warnings"][0]["message"]
    calls = fake_llm.calls(model=name)
    assert [len(c.items) for c in calls] == [2, 1, 1]  # repairs re-send only "a"


def test_malformed_json_falls_back_down_the_model_chain(
    client: httpx.Client, fake_llm: FakeLLM
) -> None:
    bad, good = model("malformed"), model("good")
    job = run_job(client, new_engine(client, ("openai", bad), ("anthropic", good)), {"a": "Hi"})
    assert job["status"] == "completed", job
    assert job["outputData"] == {"a": "de: Hi"}
    assert len(fake_llm.calls(model=bad)) == 2  # attempts per model in tests
    assert len(fake_llm.calls(model=good)) == 1
    step = job["steps"][0]
    assert step["model"] == f"anthropic/{good}"
    assert step["fallbacks"] == [
        {"model": f"openai/{bad}", "error": "the answer was not valid JSON"}
    ]


def test_malformed_json_without_fallback_fails_clearly(
    client: httpx.Client, fake_llm: FakeLLM
) -> None:
    bad = model("malformed")
    job = run_job(client, new_engine(client, ("anthropic", bad)), {"a": "Hi", "b": "There"})
    assert job["status"] == "failed", job
    assert job["error"] == (
        f"no string could be translated (anthropic/{bad}: the answer had no submit_translations "
        "call (stop_reason end_turn))"
    )
    assert job["attempts"] == 1  # not retried: the model answers, just not usably
    # Two tries of the whole batch, then two of its first half alone; once a single string
    # cannot be answered the model is given up.
    assert len(fake_llm.calls(model=bad)) == 4
    assert "outputData" not in job or job["outputData"] is None


def test_glossary_terms_inside_placeholders_or_markup_are_not_required(
    client: httpx.Client, fake_llm: FakeLLM
) -> None:
    name = model("good")
    engine_id = new_engine(
        client, ("openai", name), glossary=[{"term": "checkout", "translation": "Kasse"}]
    )
    data = {"a": "Go to {checkout}", "b": 'See <a href="/checkout">this page</a>'}
    job = run_job(client, engine_id, data)
    assert job["status"] == "completed" and job["warnings"] == [], job
    assert job["outputData"] == {k: fake_de(v) for k, v in data.items()}
    calls = fake_llm.calls(model=name)
    assert len(calls) == 1 and "glossary" not in (calls[0].user or {})


def test_an_outage_then_a_broken_answer_ends_with_a_warning_not_a_retry(
    client: httpx.Client, fake_llm: FakeLLM
) -> None:
    down, sloppy = model("server-error"), model("break-placeholder")
    engine_id = new_engine(client, ("openai", down), ("anthropic", sloppy))
    job = run_job(client, engine_id, {"ph": "Hello {name}", "plain": "Save"})
    assert job["status"] == "completed_with_warnings", job
    assert job["attempts"] == 1
    assert job["outputData"] == {"ph": "Hello {name}", "plain": "de: Save"}
    assert [w["code"] for w in job["warnings"]] == ["placeholder_mismatch"]


def test_malformed_once_is_retried_on_the_same_model(
    client: httpx.Client, fake_llm: FakeLLM
) -> None:
    name = model("malformed-once")
    job = run_job(client, new_engine(client, ("openai", name)), {"a": "Hi"})
    assert job["status"] == "completed" and job["outputData"] == {"a": "de: Hi"}, job
    assert [c.status for c in fake_llm.calls(model=name)] == [200, 200]


@pytest.mark.parametrize("api", ["openai", "anthropic"])
def test_429_retry_after_is_honoured(client: httpx.Client, fake_llm: FakeLLM, api: str) -> None:
    name = model("ratelimit-once")
    job = run_job(client, new_engine(client, (api, name)), {"a": "Hi"})
    assert job["status"] == "completed", job
    calls = fake_llm.calls(model=name)
    assert [c.status for c in calls] == [429, 200]
    assert calls[1].at - calls[0].at >= 1.0  # the fake asked for Retry-After: 1


def test_a_timeout_falls_back_to_the_next_model(client: httpx.Client, fake_llm: FakeLLM) -> None:
    slow, good = model("slow"), model("good")
    job = run_job(client, new_engine(client, ("openai", slow), ("openai", good)), {"a": "Hi"})
    assert job["status"] == "completed", job
    assert job["steps"][0]["model"] == f"openai/{good}"
    assert len(fake_llm.calls(model=slow)) == 2
    assert job["steps"][0]["fallbacks"][0]["error"].startswith("no answer within 1.5 s")


def test_refused_credentials_fail_at_once_with_a_clear_error(
    client: httpx.Client, fake_llm: FakeLLM
) -> None:
    name = model("good")
    job = run_job(client, new_engine(client, ("stale", name)), {"a": "Hi"})
    assert job["status"] == "failed", job
    assert job["error"].startswith(f"no string could be translated (stale/{name}: credentials "
                                   "refused (HTTP 401")  # fmt: skip
    assert job["attempts"] == 1 and len(fake_llm.calls(model=name)) == 1


def test_refused_credentials_fall_back_to_the_next_model(
    client: httpx.Client, fake_llm: FakeLLM
) -> None:
    first, second = model("unauthorized"), model("good")
    job = run_job(client, new_engine(client, ("openai", first), ("anthropic", second)), {"a": "x"})
    assert job["status"] == "completed", job
    assert job["steps"][0]["fallbacks"][0]["error"].startswith("credentials refused (HTTP 401")
    assert len(fake_llm.calls(model=first)) == 1  # not retried: retrying cannot help


def test_an_unknown_model_fails_with_a_clear_error(client: httpx.Client, fake_llm: FakeLLM) -> None:
    name = model("unknown-model")
    job = run_job(client, new_engine(client, ("openai", name)), {"a": "Hi"})
    assert job["status"] == "failed", job
    assert f"openai/{name}: unknown model '{name}' (HTTP 404" in job["error"]


def test_a_provider_that_stays_down_is_retried_by_temporal_then_fails(
    client: httpx.Client, fake_llm: FakeLLM
) -> None:
    name = model("server-error")
    job = run_job(client, new_engine(client, ("openai", name)), {"a": "Hi"})
    assert job["status"] == "failed", job
    assert job["attempts"] == 3  # TOLK_TRANSLATE_MAX_ATTEMPTS in the test stack
    assert "HTTP 500" in job["error"] and "not translated yet" in job["error"]
    assert len(fake_llm.calls(model=name)) == 3 * 2  # attempts x calls per attempt


def test_batches_follow_the_token_budget_and_memory_skips_known_strings(
    client: httpx.Client, fake_llm: FakeLLM
) -> None:
    name = model("good")
    engine_id = new_engine(client, ("openai", name))
    data = {
        "lessons": [
            {"title": f"Lesson {i}: caring for patients, part {i}",
             "body": f"In lesson {i} you learn {{skill}} with %d exercises and <b>{i}</b> quizzes."}
            for i in range(150)
        ]
    }  # fmt: skip
    hints = {"lessons.0.title": ["Course outline"]}
    first = run_job(client, engine_id, data, hints=hints)
    assert first["status"] == "completed", first
    calls = fake_llm.calls(model=name)
    sent = sum(len(c.items) for c in calls)
    assert sent == 300  # every string once, each call far from one per string
    chars = sum(len(item["text"]) for c in calls for item in c.items)
    budget_calls = math.ceil(chars / 4 / LLM_BATCH_TOKENS)
    assert budget_calls <= len(calls) <= budget_calls + 3, (len(calls), budget_calls)
    assert len(calls) <= 15
    assert first["usage"]["providerCalls"] == len(calls) and first["usage"]["memoryHits"] == 0

    fake_llm.reset()
    again = run_job(client, engine_id, data, hints=hints)
    assert again["status"] == "completed" and again["outputData"] == first["outputData"]
    assert fake_llm.calls(model=name) == []
    assert again["usage"]["memoryHits"] == 300 and again["usage"]["providerCalls"] == 0
    assert again["usage"]["model"] == again["steps"][0]["model"] == f"openai/{name}"

    changed = json.loads(json.dumps(data))
    changed["lessons"][7]["body"] = "A new body for {skill}."
    fake_llm.reset()
    third = run_job(client, engine_id, changed, hints={"lessons.0.title": ["Course plan"]})
    assert third["status"] == "completed", third
    resent = [item for c in fake_llm.calls(model=name) for item in c.items]
    assert sorted(item["text"] for item in resent) == [
        "A new body for ⟦0⟧.",
        "Lesson 0: caring for patients, part 0",
    ]
    assert third["usage"]["memoryHits"] == 298
    assert third["outputData"]["lessons"][7]["body"] == "de: A new body for {skill}."


def test_process_localize_uses_the_engine_and_memory(
    client: httpx.Client, fake_llm: FakeLLM
) -> None:
    name = model("good")
    engine_id = new_engine(client, ("openai", name))
    body = {"sourceLocale": None, "targetLocale": "de", "engineId": engine_id,
            "data": {"a": "Where is the train station, please?", "n": 1}}  # fmt: skip
    first = client.post("/process/localize", json=body)
    assert first.status_code == 200, first.text
    out = first.json()
    assert out["sourceLocale"] == "en" and out["model"] == f"openai/{name}"
    assert out["data"] == {"a": "de: Where is the train station, please?", "n": 1}
    again = client.post("/process/localize", json=body).json()
    assert again["data"] == out["data"] and again["usage"]["memoryHits"] == 1
    assert len(fake_llm.calls(model=name)) == 1

    broken = new_engine(client, ("openai", model("unknown-model")))
    resp = client.post("/process/localize", json={**body, "engineId": broken})
    assert resp.status_code == 502 and "unknown model" in resp.json()["message"], resp.text


def test_estimate(client: httpx.Client) -> None:
    priced = new_engine(client, ("openai", "priced"))
    resp = client.post(
        "/process/estimate",
        json={"engineId": priced, "items": [{"targetLocale": "de", "sourceChars": 4000},
                                            {"targetLocale": "fr", "sourceChars": 0}]},
    )  # fmt: skip
    assert resp.status_code == 200, resp.text
    body = resp.json()
    de, fr = body["items"]
    assert de["model"] == "openai/priced" and de["inputTokens"] >= 1000
    assert de["outputTokens"] >= 1000
    assert de["cost"] == pytest.approx((de["inputTokens"] * 2 + de["outputTokens"] * 8) / 1e6)
    assert fr["inputTokens"] == 0 and fr["cost"] == 0
    assert body["total"]["cost"] == pytest.approx(de["cost"]) and body["currency"] == "USD"

    unpriced = new_engine(client, ("anthropic", "no-price"))
    body = client.post("/process/estimate", json={"engineId": unpriced, "items": [
        {"targetLocale": "de", "sourceChars": 10}]}).json()  # fmt: skip
    assert body["items"][0]["cost"] is None and body["total"]["cost"] is None
    pseudo = client.post(
        "/process/estimate", json={"items": [{"targetLocale": "de", "sourceChars": 10}]}
    ).json()
    assert pseudo["items"][0]["model"] == "pseudo" and pseudo["total"]["cost"] == 0

    bad = client.post("/process/estimate", json={"items": [{"targetLocale": "de"}]})
    assert bad.status_code == 400 and "sourceChars" in bad.text


@pytest.mark.parametrize("provider", ["pseudo", "openai"])
def test_corpus_keeps_every_placeholder_tag_and_term(
    client: httpx.Client, fake_llm: FakeLLM, provider: str
) -> None:
    """260 strings mixing placeholders, ICU messages, HTML and brand names, as one job
    through the offline pseudo provider and through the (fake) LLM."""
    name = model("good")
    engine_id = new_engine(
        client,
        (provider, name),
        glossary=[{"term": term, "doNotTranslate": True} for term in TERMS],
    )
    job = run_job(client, engine_id, CORPUS)
    assert job["status"] == "completed", job
    out = job["outputData"]
    assert list(out) == list(CORPUS) and job["warnings"] == []
    for key, source in CORPUS.items():
        # Plural branches follow German (English ordinals one/two/few become other).
        assert protected(out[key]) == protected(adapt_plurals(source, "de")), key
        assert Counter(BRAND.findall(out[key])) == Counter(BRAND.findall(source)), key
        if mask(source, TERMS).has_text:  # not only placeholders or markup
            assert out[key] != source, key
    if provider == "openai":
        sent = [item["text"] for c in fake_llm.calls(model=name) for item in c.items]
        with_text = {text for text in CORPUS.values() if mask(text, TERMS).has_text}
        assert len(sent) == len(with_text)  # each once; tokens-only strings stay home
        assert not any(BRAND.search(text) or "<" in text for text in sent)
