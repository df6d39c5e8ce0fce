"""Pure domain code: key paths, locked keys, placeholder protection, pseudo-localization."""

from __future__ import annotations

import asyncio
import re

import pytest

from localization.batch import BatchAnswer, BatchRequest, NoReview
from localization.engine_plan import EnginePlan, ModelChoice
from localization.locked import LockedKeys
from localization.payload import depth, iter_strings, map_strings
from localization.pipeline import translate_document
from localization.placeholders import protected_spans, split_protected
from localization.pseudo import pseudo_localize
from providers.pseudo import PseudoProvider
from settings import Settings, batch_limits

LIMITS = batch_limits(Settings())

DOC = {"a": "x", "b": [1, "y", {"c": None, "d": "z"}], "e": True, "f": {"g": "w"}}


def test_strings_are_walked_in_document_order_and_rebuilt_in_place() -> None:
    assert list(iter_strings(DOC)) == [
        (("a",), "x"),
        (("b", "1"), "y"),
        (("b", "2", "d"), "z"),
        (("f", "g"), "w"),
    ]
    upper = map_strings(DOC, lambda _path, text: text.upper())
    assert upper == {"a": "X", "b": [1, "Y", {"c": None, "d": "Z"}], "e": True, "f": {"g": "W"}}
    assert list(upper) == list(DOC)
    assert depth("x") == 0 and depth({}) == 1 and depth(DOC) == 3


@pytest.mark.parametrize(
    ("patterns", "path", "locked"),
    [
        (["id"], ("id",), True),
        (["id"], ("author", "id"), True),
        (["id"], ("steps", "3", "id"), True),
        (["id"], ("steps", "3", "idea"), False),
        (["id"], ("id", "nested"), True),  # the subtree under a locked key
        (["steps.*.slug"], ("steps", "0", "slug"), True),
        (["steps.*.slug"], ("steps", "slug"), False),
        (["steps.*.slug"], ("other", "0", "slug"), False),
        (["metadata.**"], ("metadata", "a", "b"), True),
        (["metadata.**"], ("meta", "a"), False),
        (["**.title"], ("a", "b", "title"), True),
        (["**.title"], ("title",), True),
        (["*_url"], ("links", "home_url"), True),
        (["*_url"], ("links", "home"), False),
        ([], ("id",), False),
    ],
)
def test_locked_key_patterns(patterns: list[str], path: tuple[str, ...], locked: bool) -> None:
    assert LockedKeys(patterns).is_locked(path) is locked


PLACEHOLDERS = [
    "{name}",
    "{{count}}",
    "%s",
    "%d",
    "%1$s",
    "%(total)s",
    "%.2f",
    "${user}",
    "<b>",
    "</b>",
    '<a href="/x">',
    "<br/>",
    "&amp;",
    "&#169;",
    "&#x1F600;",
    "{count, plural, one {# item} other {# items}}",
]


@pytest.mark.parametrize("token", PLACEHOLDERS)
def test_each_placeholder_is_protected_and_survives_pseudo(token: str) -> None:
    text = f"Before {token} after"
    spans = split_protected(text)
    assert "".join(span for _, span in spans) == text
    assert protected_spans(text) == [token]
    out = pseudo_localize(text)
    assert token in out and out != text


def test_plain_percent_and_braces_in_text_are_not_placeholders() -> None:
    assert protected_spans("50% off, {unbalanced") == []


def test_pseudo_is_deterministic_expands_and_keeps_blank_strings() -> None:
    text = "Hello world"
    assert pseudo_localize(text) == pseudo_localize(text)
    assert len(pseudo_localize(text)) >= len(text) * 1.3
    assert pseudo_localize("") == "" and pseudo_localize("   ") == "   "
    assert pseudo_localize("{only}") == "{only}"


def test_translate_document_honours_locked_keys_and_dedupes() -> None:
    doc = {"id": "x-1", "title": "Same", "body": "Same", "n": 3, "ph": "{only}", "b": " "}
    plan = EnginePlan("eng_x", (ModelChoice("pseudo"),))
    result = asyncio.run(
        translate_document(
            doc,
            source_locale="en",
            target_locale="de",
            plan=plan,
            providers={"pseudo": PseudoProvider()},
            limits=LIMITS,
            locked_keys=["id"],
        )
    )
    assert result.output["id"] == "x-1" and result.output["n"] == 3
    assert result.output["title"] == result.output["body"] == pseudo_localize("Same")
    assert result.output["ph"] == "{only}" and result.output["b"] == " "
    assert list(result.output) == list(doc)
    assert result.strings == 4 and result.locked == 1
    assert result.calls == 1 and result.warnings == [] and result.model == "pseudo"


def test_model_chain_prefers_the_most_specific_entries_in_rank_order() -> None:
    from localization.engine_plan import ModelChoice, model_chain

    models = [
        {"sourceLocale": "*", "targetLocale": "*", "provider": "anthropic", "model": "any"},
        {"sourceLocale": "en", "targetLocale": "ja", "provider": "openai", "model": "a"},
        {"sourceLocale": "*", "targetLocale": "ja", "provider": "pseudo"},
        {"sourceLocale": "en", "targetLocale": "ja", "provider": "openai", "model": "b"},
    ]
    assert model_chain(models, "en", "ja", "pseudo") == [
        ModelChoice("openai", "a"),
        ModelChoice("openai", "b"),
    ]
    assert model_chain(models, "de", "ja", "pseudo") == [ModelChoice("pseudo")]
    assert model_chain(models, "en", "fr", "pseudo") == [ModelChoice("anthropic", "any")]
    assert model_chain([], "en", "fr", "pseudo") == [ModelChoice("pseudo")]
    assert ModelChoice("openai", "a").label == "openai/a"


class ReorderingProvider(NoReview):
    """Answers with the tokens of every item in reverse order (each still exactly once),
    ``broken_calls`` times, then correctly (the masked text, upper-cased)."""

    name = "reorder"
    remembers = False
    batching = True

    def __init__(self, broken_calls: int) -> None:
        self.broken_calls = broken_calls
        self.calls: list[list[str]] = []

    async def translate(self, model: str | None, request: BatchRequest) -> BatchAnswer:
        self.calls.append([item.id for item in request.items])
        broken = len(self.calls) <= self.broken_calls
        texts = {}
        for item in request.items:
            parts = re.split(r"(⟦\d+⟧)", item.text.upper())
            if broken:
                tokens = parts[1::2][::-1]
                parts[1::2] = tokens
            texts[item.id] = "".join(parts)
        return BatchAnswer(texts=texts)


STRUCTURED = {
    "link": 'Read <a href="/faq">the FAQ</a> first',
    "plural": "{n, plural, one {# file} other {# files}}",
    "plain": "Just text",
}


@pytest.mark.parametrize(("broken_calls", "calls"), [(1, 2), (9, 3)])
def test_a_model_that_reorders_tokens_is_repaired_or_leaves_the_source(
    broken_calls: int, calls: int
) -> None:
    provider = ReorderingProvider(broken_calls)
    result = asyncio.run(
        translate_document(
            STRUCTURED,
            source_locale="en",
            target_locale="de",
            plan=EnginePlan("eng_x", (ModelChoice("reorder"),)),
            providers={"reorder": provider},
            limits=LIMITS,
        )
    )
    assert len(provider.calls) == calls  # the first call, then repair rounds of the broken
    assert provider.calls[1] == ["0", "1"]  # only the strings with tokens went again
    assert result.output["plain"] == "JUST TEXT"
    if broken_calls == 1:
        assert result.output["link"] == 'READ <a href="/faq">THE FAQ</a> FIRST'
        assert result.output["plural"] == "{n, plural, one {# FILE} other {# FILES}}"
        assert result.warnings == []
    else:
        assert result.output["link"] == STRUCTURED["link"]
        assert result.output["plural"] == STRUCTURED["plural"]
        assert [(w["code"], w["key"]) for w in result.warnings] == [
            ("placeholder_mismatch", "link"),
            ("placeholder_mismatch", "plural"),
        ]
        assert all("kept the source text" in w["message"] for w in result.warnings)
        assert "FAQ" not in result.warnings[0]["message"]
