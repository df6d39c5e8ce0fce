"""A whole group through the real stack: POST -> GroupWorkflow -> 14 LocaleJobWorkflows ->
translated outputs in the database, read back over HTTP."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
from temporalio.client import Client

from localization.payload import iter_strings
from localization.plurals import plural_categories
from stack import Stack
from tests.conftest import wait_for_group

LOCALES = [
    "de",
    "fr",
    "es",
    "it",
    "pt-BR",
    "ja",
    "ko",
    "zh-Hans",
    "zh-Hant",
    "ar",
    "he",
    "ru",
    "pl",
    "sr-Latn",
]

DOCUMENT: dict[str, Any] = {
    "title": "Welcome to the course, {name}!",
    "id": "course-42",
    "published": True,
    "rating": 4.5,
    "price": None,
    "counts": {"lessons": 12, "quizzes": 0},
    "steps": [
        {
            "id": "s1",
            "slug": "intro",
            "heading": "Introduction",
            "body": '<p>Read <a href="/docs">the docs</a> &amp; start.</p>',
        },
        {
            "id": "s2",
            "slug": "practice",
            "heading": "You have {{count}} tasks",
            "body": "Saved %s of %(total)s files; %1$s left",
        },
        ["nested", ["deeper", {"text": "Hello ${user}"}], 7, False],
    ],
    "metadata": {"author": {"id": "u-1", "name": "Ada"}, "tags": ["a", "b"]},
    "icu": "{count, plural, one {# item} other {# items}}",
    "empty": "",
    "ключ": "значение",
}
LOCKED = ["id", "steps.*.slug", "metadata.**"]


def same_shape(source: Any, output: Any) -> bool:
    """Same types everywhere, same keys in the same order, same array lengths."""
    if isinstance(source, dict):
        return (
            isinstance(output, dict)
            and list(source) == list(output)
            and all(same_shape(source[k], output[k]) for k in source)
        )
    if isinstance(source, list):
        return (
            isinstance(output, list)
            and len(source) == len(output)
            and all(same_shape(a, b) for a, b in zip(source, output, strict=True))
        )
    if isinstance(source, str):
        return isinstance(output, str)
    return type(source) is type(output) and source == output


def test_fourteen_locales_nested_document(client: httpx.Client, stack: Stack) -> None:
    resp = client.post(
        "/jobs/localization",
        json={
            "sourceLocale": "en",
            "targetLocales": LOCALES,
            "data": DOCUMENT,
            "lockedKeys": LOCKED,
            "context": "An online course page",
        },
    )
    assert resp.status_code == 202, resp.text
    created = resp.json()
    assert created["groupId"].startswith("ljg_") and len(created["groupId"]) == 20
    assert [job["targetLocale"] for job in created["jobs"]] == LOCALES
    assert all(job["status"] == "queued" for job in created["jobs"])
    assert created["status"] == "pending"
    assert created["createdAt"].endswith("Z")

    group = wait_for_group(client, created["groupId"])
    assert group["status"] == "completed"
    assert group["totalJobs"] == group["completedJobs"] == 14
    assert group["failedJobs"] == group["cancelledJobs"] == 0
    assert group["completedAt"] is not None

    for job in group["jobs"]:
        detail = client.get(f"/jobs/localization/{job['id']}").json()
        assert detail["status"] == "completed"
        assert detail["groupId"] == created["groupId"]
        assert detail["error"] is None
        assert detail["attempts"] >= 1
        output = detail["outputData"]
        assert same_shape(DOCUMENT, output), detail["targetLocale"]
        # Locked keys byte-identical; everything else translated.
        assert output["id"] == "course-42"
        assert [s["id"] for s in output["steps"][:2]] == ["s1", "s2"]
        assert [s["slug"] for s in output["steps"][:2]] == ["intro", "practice"]
        assert output["metadata"] == DOCUMENT["metadata"]
        assert output["title"] != DOCUMENT["title"] and "{name}" in output["title"]
        assert output["steps"][0]["heading"] != "Introduction"
        assert output["ключ"] != "значение"
        assert output["empty"] == ""
        # Placeholders and markup survive.
        body0 = output["steps"][0]["body"]
        for token in ("<p>", '<a href="/docs">', "</a>", "&amp;", "</p>"):
            assert token in body0
        for token in ("%s", "%(total)s", "%1$s"):
            assert token in output["steps"][1]["body"]
        assert "{{count}}" in output["steps"][1]["heading"]
        assert "${user}" in output["steps"][2][1][1]["text"]
        # ICU structure survives with the target's plural categories; the branch texts
        # are translated.
        categories = plural_categories(job["targetLocale"])
        assert f"{{count, plural, {categories[0]} {{# " in output["icu"]
        for category in categories[1:]:
            assert f"}} {category} {{# " in output["icu"]
        assert "}}" in output["icu"] and output["icu"].count(" {# ") == len(categories)
        assert "item" not in output["icu"]
        assert detail["usage"]["strings"] > 0
        assert detail["steps"][0]["stepId"] == "translate"


def test_histories_hold_no_user_content(client: httpx.Client, stack: Stack) -> None:
    marker_source = "Zebra quokka marshmallow"
    resp = client.post(
        "/jobs/localization",
        json={
            "sourceLocale": "en",
            "targetLocales": ["de", "fr"],
            "data": {"secret": marker_source, "nested": {"x": "Plover {n}"}},
            "context": "Unicorn context text",
            "hints": {"secret": ["Breadcrumb hint"]},
        },
    )
    assert resp.status_code == 202, resp.text
    group_id = resp.json()["groupId"]
    group = wait_for_group(client, group_id)
    assert group["status"] == "completed"
    outputs = [
        client.get(f"/jobs/localization/{job['id']}").json()["outputData"] for job in group["jobs"]
    ]
    forbidden = {marker_source, "Plover", "Unicorn context text", "Breadcrumb hint"}
    for output in outputs:
        forbidden.update(text for _, text in iter_strings(output))

    async def histories() -> list[str]:
        temporal = await Client.connect(
            stack.settings.temporal_target, namespace=stack.settings.temporal_namespace
        )
        ids = [group_id, *(job["id"] for job in group["jobs"])]
        dumps = []
        for workflow_id in ids:
            history = await temporal.get_workflow_handle(workflow_id).fetch_history()
            dumps.append(json.dumps(history.to_json_dict(), ensure_ascii=False))
        return dumps

    dumps = asyncio.run(histories())
    assert len(dumps) == 3
    for dump in dumps:
        # Payload data is base64 in the JSON form: decode every payload and check both.
        decoded = _decoded_payloads(json.loads(dump))
        assert decoded, "expected some payloads in history"
        for text in forbidden:
            assert text not in dump
            assert all(text not in payload for payload in decoded), text


def _decoded_payloads(node: Any) -> list[str]:
    import base64

    found: list[str] = []
    if isinstance(node, dict):
        if "data" in node and "metadata" in node and isinstance(node["data"], str):
            try:
                found.append(base64.b64decode(node["data"]).decode("utf-8", "replace"))
            except ValueError:
                pass
        for value in node.values():
            found.extend(_decoded_payloads(value))
    elif isinstance(node, list):
        for value in node:
            found.extend(_decoded_payloads(value))
    return found
