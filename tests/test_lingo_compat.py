"""The official lingo.dev clients against the real stack, unchanged.

The Python SDK (``lingodotdev``) is driven through every public method. The JS SDK and the
CLI cannot run here, so the bodies they send (read from their source, saved under
``tests/data/lingo/`` with the upstream file and commit in ``_source``) are replayed byte for
byte as they serialise them, and the answers are checked against what their code reads."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from lingodotdev import LingoDotDevEngine
from sqlmodel import col, select

from stack import Stack
from store.tables import ProcessUsage
from tests.conftest import new_org_key, run_sql, wait_for_group

DATA = Path(__file__).parent / "data" / "lingo"

# What the JS SDK sends: `JSON.stringify(body, null, 2)` with this header (index.ts).
JS_HEADERS = {"Content-Type": "application/json; charset=utf-8"}


def fixture(name: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads((DATA / name).read_text())
    assert body.pop("_source").startswith("lingodotdev/lingo.dev@")
    return body


def js_post(stack: Stack, key: str, path: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(
        f"{stack.api_url}{path}",
        content=json.dumps(body, indent=2, ensure_ascii=False).encode(),
        headers={**JS_HEADERS, "X-API-Key": key},
        timeout=30,
    )


def usage_rows(stack: Stack, organization_id: str) -> list[dict[str, Any]]:
    """The organization's recorded /process/localize calls, oldest first, read from the
    stack's database."""
    rows = run_sql(
        stack,
        select(ProcessUsage)
        .where(col(ProcessUsage.organization_id) == organization_id)
        .order_by(col(ProcessUsage.id)),
    )
    return [dict(row._mapping) for row in rows]


def strings_of(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in strings_of(v)]
    if isinstance(value, list):
        return [s for v in value for s in strings_of(v)]
    return []


def same_shape(a: Any, b: Any) -> bool:
    """Same keys in the same order, same list lengths, same types at every leaf."""
    if isinstance(a, dict):
        return isinstance(b, dict) and list(a) == list(b) and all(same_shape(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(map(same_shape, a, b))
    return type(a) is type(b)


def translated(source: Any, output: Any) -> None:
    """Pseudo-localized: the same structure, and every string changed."""
    assert same_shape(source, output), (source, output)
    for before, after in zip(strings_of(source), strings_of(output), strict=True):
        assert after != before, (before, after)


@pytest.fixture(scope="module")
def lingo_org(stack: Stack) -> tuple[str, str]:
    """An organization of its own, so its usage rows are exactly this module's calls."""
    return new_org_key(stack, "Lingo clients")


def default_engine(stack: Stack, key: str) -> str:
    engines = httpx.get(f"{stack.api_url}/engines", headers={"X-API-Key": key}).json()["items"]
    engine_id: str = next(e["id"] for e in engines if e["isDefault"])
    return engine_id


# --- the Python SDK, every public method ------------------------------------------------------


def sdk(stack: Stack, key: str, **config: Any) -> LingoDotDevEngine:
    return LingoDotDevEngine({"api_key": key, "api_url": stack.api_url, **config})


DOC = {
    "title": "Welcome back, {name}!",
    "body": "<b>Save</b> your work before %s.",
    "steps": [{"heading": "Course outline", "count": 3, "done": False}],
}


async def test_python_sdk_localizes_objects_texts_and_chats(stack: Stack, api_key: str) -> None:
    async with sdk(stack, api_key) as engine:
        obj = await engine.localize_object(DOC, {"source_locale": "en", "target_locale": "de"})
        translated(DOC, obj)
        assert "{name}" in obj["title"] and "<b>" in obj["body"] and "%s" in obj["body"]
        assert obj["steps"][0]["count"] == 3 and obj["steps"][0]["done"] is False

        text = await engine.localize_text(
            "Good morning, everyone.", {"source_locale": "en", "target_locale": "fr", "fast": True}
        )
        assert isinstance(text, str) and text and text != "Good morning, everyone."

        # No source locale: the server detects it (French here) and translates.
        detected = await engine.localize_text(
            "Le temps est magnifique aujourd'hui, nous allons faire une promenade.",
            {"source_locale": None, "target_locale": "de"},
        )
        assert detected and not detected.startswith("Le temps est magnifique")

        texts = await engine.batch_localize_text(
            "Save changes", {"source_locale": "en", "target_locales": ["de", "fr", "ja"]}
        )
        assert len(texts) == 3 and all(t and t != "Save changes" for t in texts)

        chat = [{"name": "Alice", "text": "Hi there!"}, {"name": "Bob", "text": "Hello, Alice."}]
        out = await engine.localize_chat(chat, {"source_locale": "en", "target_locale": "es"})
        assert [list(m) for m in out] == [["name", "text"], ["name", "text"]]
        assert all(m["text"] != c["text"] for m, c in zip(out, chat, strict=True))

        objects = [{"a": "One apple"}, {"b": "Two pears", "n": 2}]
        many = await engine.batch_localize_objects(
            objects, {"source_locale": "en", "target_locale": "it"}
        )
        assert len(many) == 2
        for source, result in zip(objects, many, strict=True):
            translated(source, result)


async def test_python_sdk_chunks_report_progress(stack: Stack, api_key: str) -> None:
    """Small batches: the SDK sends the document in chunks and merges the answers."""
    doc = {f"k{i}": f"Item number {i}" for i in range(5)}
    seen: list[int] = []
    async with sdk(stack, api_key, batch_size=2) as engine:
        out = await engine.localize_object(
            doc,
            {"source_locale": "en", "target_locale": "de"},
            progress_callback=lambda pct, _src, _done: seen.append(pct),
        )
    translated(doc, out)
    assert seen == [33, 67, 100]


async def test_python_sdk_quick_translations(stack: Stack, api_key: str) -> None:
    one = await LingoDotDevEngine.quick_translate(
        "Open the door", api_key, "de", source_locale="en", api_url=stack.api_url
    )
    assert isinstance(one, str) and one and one != "Open the door"
    obj = await LingoDotDevEngine.quick_translate(
        {"cta": "Buy now", "n": 1}, api_key, "fr", source_locale="en", api_url=stack.api_url
    )
    translated({"cta": "Buy now", "n": 1}, obj)
    texts = await LingoDotDevEngine.quick_batch_translate(
        "Sign in", api_key, ["de", "es"], source_locale="en", api_url=stack.api_url
    )
    assert len(texts) == 2 and all(isinstance(t, str) and t != "Sign in" for t in texts)
    objs = await LingoDotDevEngine.quick_batch_translate(
        {"x": "Sign out"}, api_key, ["de", "es"], source_locale="en", api_url=stack.api_url
    )
    assert len(objs) == 2
    for result in objs:
        translated({"x": "Sign out"}, result)


async def test_python_sdk_recognizes_and_knows_the_caller(stack: Stack, api_key: str) -> None:
    async with sdk(stack, api_key) as engine:
        assert await engine.recognize_locale("Das Wetter ist heute herrlich und warm.") == "de"
        me = await engine.whoami()
    async with httpx.AsyncClient(base_url=stack.api_url, headers={"X-API-Key": api_key}) as raw:
        users_me = (await raw.get("/users/me")).json()
    assert me == {"email": users_me["email"], "id": users_me["id"]}
    assert me["email"] and me["id"]
    async with sdk(stack, "tolk_not-a-real-key") as stranger:
        assert await stranger.whoami() is None
        with pytest.raises(RuntimeError, match="401"):
            await stranger.localize_text("Hello", {"source_locale": "en", "target_locale": "de"})


async def test_python_sdk_calls_are_recorded(stack: Stack) -> None:
    org, key = new_org_key(stack, "Python SDK usage")
    async with sdk(stack, key, batch_size=1) as engine:
        await engine.localize_object(
            {"a": "First line", "b": "Second line"}, {"source_locale": "en", "target_locale": "de"}
        )
    rows = usage_rows(stack, org)
    assert len(rows) == 2  # one per chunk the SDK sent
    assert {r["session_id"] for r in rows} == {engine._session_id}
    assert all(r["trigger_type"] is None and r["file_path"] is None for r in rows)
    assert all(r["strings"] == 1 and r["target_locale"] == "de" for r in rows)


# --- the JS SDK and the CLI, replayed -------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "trigger", "file_path"),
    [
        ("cli_localize.json", "cli", "locales/[locale].json"),
        ("ci_localize.json", "ci", "apps/web/messages/[locale].json"),
        ("sdk_localize_object.json", None, None),
    ],
)
def test_js_localize_bodies_succeed_and_are_recorded(
    stack: Stack, lingo_org: tuple[str, str], name: str, trigger: str | None, file_path: str | None
) -> None:
    org, key = lingo_org
    body = fixture(name)
    before = len(usage_rows(stack, org))
    resp = js_post(stack, key, "/process/localize", body)
    assert resp.status_code == 200, resp.text
    answer = resp.json()
    # What localizeChunk reads: `data` (and `error` only when there is no data).
    translated(body["data"], answer["data"])
    assert "error" not in answer
    rows = usage_rows(stack, org)
    assert len(rows) == before + 1
    row = rows[-1]
    assert row["trigger_type"] == trigger and row["file_path"] == file_path
    assert row["session_id"] == body["sessionId"]
    assert row["source_locale"] == body["sourceLocale"]
    assert row["target_locale"] == body["targetLocale"]
    assert row["engine_id"] == default_engine(stack, key)
    assert row["model"] == "pseudo" and row["strings"] == len(strings_of(body["data"]))
    assert row["input_tokens"] == 0 and row["output_tokens"] == 0  # pseudo spends none
    assert row["created_at"]


def test_localize_trigger_and_metadata_are_accepted_but_bounded(
    stack: Stack, lingo_org: tuple[str, str]
) -> None:
    org, key = lingo_org
    base = {"sourceLocale": "en", "targetLocale": "de", "data": {"t": "Hello"}}
    before = len(usage_rows(stack, org))
    # Any short trigger type is recorded; metadata keys beyond filePath are accepted.
    ok = js_post(
        stack,
        key,
        "/process/localize",
        {**base, "triggerType": "github-action", "metadata": {"filePath": "a.json", "x": [1]}},
    )
    assert ok.status_code == 200, ok.text
    nulls = js_post(
        stack, key, "/process/localize", {**base, "triggerType": None, "metadata": None}
    )
    assert nulls.status_code == 200, nulls.text
    rows = usage_rows(stack, org)[before:]
    assert [(r["trigger_type"], r["file_path"]) for r in rows] == [
        ("github-action", "a.json"),
        (None, None),
    ]
    too_much: list[tuple[dict[str, Any], str]] = [
        ({"triggerType": "x" * 65}, "triggerType"),
        ({"triggerType": 3}, "triggerType"),
        ({"metadata": {"filePath": "p" * 4097}}, "metadata.filePath"),
        ({"metadata": {"filePath": 7}}, "metadata.filePath"),
        ({"metadata": "a.json"}, "metadata"),
        ({"metadata": {"filePath": "a.json", "blob": "z" * 20_000}}, "metadata"),
    ]
    for extra, path in too_much:
        resp = js_post(stack, key, "/process/localize", {**base, **extra})
        assert resp.status_code == 400, (extra, resp.text)
        assert resp.json()["details"][0]["path"] == path, resp.text
    assert len(usage_rows(stack, org)) == before + 2


def test_a_call_with_nothing_to_translate_is_recorded_too(
    stack: Stack, lingo_org: tuple[str, str]
) -> None:
    org, key = lingo_org
    before = len(usage_rows(stack, org))
    body = {"sourceLocale": "de", "targetLocale": "de", "data": {"t": "Hallo"}, "triggerType": "ci"}
    resp = js_post(stack, key, "/process/localize", body)
    assert resp.status_code == 200 and resp.json()["data"] == {"t": "Hallo"}, resp.text
    rows = usage_rows(stack, org)[before:]
    assert [(r["strings"], r["model"], r["trigger_type"]) for r in rows] == [(0, None, "ci")]


NUMBER = "number"  # a JSON number: int or float, never a bool, never null

# `CostEstimate` in packages/sdk/src/index.ts, field for field.
COST_ESTIMATE: dict[str, Any] = {
    "approximate": bool,
    "totals": {
        "sourceChars": NUMBER,
        "estimatedOutputTokens": NUMBER,
        "estimatedLlmCostUsd": NUMBER,
        "estimatedLocalizationCostUsd": NUMBER,
        "estimatedTotalCostUsd": NUMBER,
    },
    "byLocale": [
        {
            "targetLocale": str,
            "sourceChars": NUMBER,
            "estimatedOutputTokens": NUMBER,
            "estimatedCostUsd": NUMBER,
        }
    ],
}
OUR_EXTRAS = {"currency", "items", "total"}  # our own answer, beside the SDK's


def conforms(value: Any, spec: Any, path: str = "") -> None:
    assert value is not None, f"{path}: null"
    if isinstance(spec, dict):
        assert isinstance(value, dict), path
        assert set(value) == set(spec), (path, set(value) ^ set(spec))
        for field, inner in spec.items():
            conforms(value[field], inner, f"{path}.{field}")
    elif isinstance(spec, list):
        assert isinstance(value, list), path
        for i, item in enumerate(value):
            conforms(item, spec[0], f"{path}[{i}]")
    elif spec == NUMBER:
        assert isinstance(value, int | float) and not isinstance(value, bool), (path, value)
    else:
        assert type(value) is spec, (path, value)


def check_cost_estimate(answer: dict[str, Any]) -> None:
    assert set(answer) - set(COST_ESTIMATE) <= OUR_EXTRAS, set(answer)
    conforms({k: v for k, v in answer.items() if k in COST_ESTIMATE}, COST_ESTIMATE)
    assert answer["approximate"] is True
    totals, rows = answer["totals"], answer["byLocale"]
    assert totals["sourceChars"] == sum(r["sourceChars"] for r in rows)
    assert totals["estimatedOutputTokens"] == sum(r["estimatedOutputTokens"] for r in rows)
    assert totals["estimatedLlmCostUsd"] == pytest.approx(sum(r["estimatedCostUsd"] for r in rows))
    assert totals["estimatedTotalCostUsd"] == pytest.approx(
        totals["estimatedLlmCostUsd"] + totals["estimatedLocalizationCostUsd"]
    )


@pytest.mark.parametrize("name", ["sdk_estimate.json", "cli_estimate.json"])
def test_js_estimate_answers_the_sdks_cost_estimate(
    stack: Stack, lingo_org: tuple[str, str], name: str
) -> None:
    body = fixture(name)
    resp = js_post(stack, lingo_org[1], "/process/estimate", body)
    assert resp.status_code == 200, resp.text
    answer = resp.json()
    check_cost_estimate(answer)
    merged: dict[str, int] = {}
    for item in body["items"]:  # one row per distinct locale, in first-seen order
        merged[item["targetLocale"]] = merged.get(item["targetLocale"], 0) + item["sourceChars"]
    assert [(r["targetLocale"], r["sourceChars"]) for r in answer["byLocale"]] == list(
        merged.items()
    )
    # The default engine is pseudo: free, and said so with zeros, not nulls.
    assert answer["totals"]["estimatedTotalCostUsd"] == 0


def test_estimate_prices_the_default_engine_and_never_answers_null(stack: Stack) -> None:
    """The SDK sends no engineId: the organization's default engine is priced."""
    _, key = new_org_key(stack, "Estimates")
    headers = {"X-API-Key": key}
    body = fixture("sdk_estimate.json")
    for model, priced in (("priced", True), ("no-price-configured", False)):
        created = httpx.post(
            f"{stack.api_url}/engines",
            headers=headers,
            json={
                "name": model,
                "isDefault": True,
                "models": [{"provider": "openai", "model": model}],
            },
        )
        assert created.status_code == 201, created.text
        answer = js_post(stack, key, "/process/estimate", body).json()
        check_cost_estimate(answer)
        rows = answer["byLocale"]
        assert all(r["estimatedOutputTokens"] > 0 for r in rows)
        if priced:
            assert all(r["estimatedCostUsd"] > 0 for r in rows)
            assert answer["totals"]["estimatedTotalCostUsd"] > 0
        else:  # unpriced: 0 in the SDK's fields; our own `cost` says it is unknown
            assert all(r["estimatedCostUsd"] == 0 for r in rows)
            assert answer["totals"]["estimatedTotalCostUsd"] == 0
            assert answer["total"]["cost"] is None


def test_whoami_answers_the_sdks_identity_call(stack: Stack, client: httpx.Client) -> None:
    # observability.ts: POST /whoami, no body, X-API-Key and Content-Type: application/json.
    key = client.headers["X-API-Key"]
    resp = httpx.post(
        f"{stack.api_url}/whoami", headers={"X-API-Key": key, "Content-Type": "application/json"}
    )
    assert resp.status_code == 200, resp.text
    me = client.get("/users/me").json()
    assert resp.json() == {**me, "keyId": me["id"]}
    assert me["email"] and me["organizationId"].startswith("org_")
    stranger = httpx.post(f"{stack.api_url}/whoami", headers={"X-API-Key": "tolk_nobody"})
    assert stranger.status_code == 401 and stranger.json()["_tag"] == "UnauthorizedError"


# --- pipelineConfig ---------------------------------------------------------------------------

JOB: dict[str, Any] = {"sourceLocale": "en", "targetLocales": ["de"], "data": {"t": "Hello"}}
OFF: dict[str, dict[str, Any]] = {
    "aiReview": {"enabled": False, "threshold": 80, "model": "openai/reviewer"},
    "humanReview": {"enabled": False, "timeoutSeconds": 172800, "onTimeout": "continue"},
    "backTranslation": {"enabled": False},
}


def test_pipeline_config_is_validated_path_by_path(
    client: httpx.Client, db_counts: Callable[[], dict[str, int]]
) -> None:
    before = db_counts()["jobgroup"]
    cases = [
        ({"qualityGate": {"enabled": False}}, "pipelineConfig.qualityGate"),
        ({"aiReview": {"enabled": False, "threshold": 101}}, "pipelineConfig.aiReview.threshold"),
        ({"aiReview": {"enabled": False, "threshold": -1}}, "pipelineConfig.aiReview.threshold"),
        ({"aiReview": {"enabled": False, "threshold": "80"}}, "pipelineConfig.aiReview.threshold"),
        ({"aiReview": {"threshold": 80}}, "pipelineConfig.aiReview.enabled"),
        ({"aiReview": {"enabled": False, "judge": "x"}}, "pipelineConfig.aiReview.judge"),
        (
            {"humanReview": {"enabled": False, "timeoutSeconds": 0}},
            "pipelineConfig.humanReview.timeoutSeconds",
        ),
        (
            {"humanReview": {"enabled": False, "timeoutSeconds": 2_592_001}},
            "pipelineConfig.humanReview.timeoutSeconds",
        ),
        (
            {"humanReview": {"enabled": False, "onTimeout": "skip"}},
            "pipelineConfig.humanReview.onTimeout",
        ),
        ({"backTranslation": {"enabled": "yes"}}, "pipelineConfig.backTranslation.enabled"),
        ({"backTranslation": True}, "pipelineConfig.backTranslation"),
    ]
    for config, path in cases:
        resp = client.post("/jobs/localization", json={**JOB, "pipelineConfig": config})
        assert resp.status_code == 400, (config, resp.text)
        error = resp.json()
        assert error["_tag"] == "ValidationError" and error["details"][0]["path"] == path, error
        assert error["message"].startswith(path), error
    bad = client.post("/jobs/localization", json={**JOB, "pipelineConfig": ["aiReview"]})
    assert bad.status_code == 400 and bad.json()["details"][0]["path"] == "pipelineConfig"
    assert db_counts()["jobgroup"] == before


def test_disabled_stages_are_honoured_and_the_job_completes(client: httpx.Client) -> None:
    for config in (OFF, {"backTranslation": {"enabled": False}}, {}, None):
        resp = client.post("/jobs/localization", json={**JOB, "pipelineConfig": config})
        assert resp.status_code == 202, (config, resp.text)
        group = wait_for_group(client, resp.json()["groupId"])
        assert group["status"] == "completed", group
        job = client.get(f"/jobs/localization/{group['jobs'][0]['id']}").json()
        assert job["status"] == "completed" and job["outputData"]["t"] != "Hello"


def test_pipeline_config_is_part_of_the_idempotent_body(client: httpx.Client) -> None:
    body = {**JOB, "idempotencyKey": "lingo-compat-pipeline", "pipelineConfig": OFF}
    first = client.post("/jobs/localization", json=body)
    assert first.status_code == 202, first.text
    again = client.post("/jobs/localization", json=body)
    assert again.status_code == 202 and again.headers.get("Idempotent-Replayed") == "true"
    assert again.json()["groupId"] == first.json()["groupId"]
    changed = {**OFF, "aiReview": {"enabled": False, "threshold": 90}}
    for other in (
        {**body, "pipelineConfig": changed},
        {k: v for k, v in body.items() if k != "pipelineConfig"},
    ):
        reused = client.post("/jobs/localization", json=other)
        assert reused.status_code == 422, reused.text
        assert reused.json()["_tag"] == "IdempotencyKeyReusedError"


def test_openapi_describes_the_compatible_fields(stack: Stack) -> None:
    doc = httpx.get(f"{stack.api_url}/openapi.json", timeout=30).json()
    schemas = doc["components"]["schemas"]
    assert "pipelineConfig" in schemas["CreateJobGroupRequest"]["properties"]
    stages = schemas["PipelineConfig"]
    assert set(stages["properties"]) == {"aiReview", "humanReview", "backTranslation"}
    assert stages["additionalProperties"] is False
    assert {"triggerType", "metadata"} <= set(schemas["LocalizeRequest"]["properties"])
    assert {"approximate", "totals", "byLocale"} <= set(schemas["EstimateOut"]["properties"])
    whoami = doc["paths"]["/whoami"]["post"]["responses"]["200"]["content"]["application/json"]
    assert set(schemas[whoami["schema"]["$ref"].rsplit("/", 1)[1]]["properties"]) == {
        "id",
        "email",
        "organizationId",
        "keyId",
    }
