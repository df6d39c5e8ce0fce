"""Plurals in a target language's CLDR categories: the ICU rewrite of one message, the
client's forms <-> ICU functions, the pipeline (masking, checks, memory) and the real stack.

ICU output is judged by ``pyicumessageformat``, an ICU parser independent of ours.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyicumessageformat import Parser

from localization.batch import BatchAnswer, BatchRequest, NoReview
from localization.engine_plan import EnginePlan, ModelChoice
from localization.icu_plurals import adapt_plurals, icu_plural, icu_plural_forms
from localization.masking import mask, token_problems, unmask
from localization.pipeline import translate_document
from localization.plurals import CATEGORIES, ordinal_categories, plural_categories
from localization.pseudo import pseudo_localize
from providers.pseudo import PseudoProvider
from settings import Settings, batch_limits
from store import accounts
from store.db import Database
from store.memory import DatabaseMemory
from tests.conftest import wait_for_group

LIMITS = batch_limits(Settings())

ICU = Parser()
FILES = "{count, plural, one {# file} other {# files}}"


def messages(text: str) -> list[dict[str, Any]]:
    """Every plural/select/selectordinal message of ``text``, outermost first."""
    found: list[dict[str, Any]] = []

    def walk(parts: list[Any]) -> None:
        for part in parts:
            if isinstance(part, dict) and "options" in part:
                found.append(part)
                for branch in part["options"].values():
                    walk(branch)

    walk(ICU.parse(text))
    return found


def keys(text: str) -> list[list[str]]:
    """The selectors of every message of ``text``, in written order, outermost first."""
    return [list(message["options"]) for message in messages(text)]


# CLDR data -----------------------------------------------------------------------------


def test_cardinal_and_ordinal_categories_come_from_cldr() -> None:
    assert plural_categories("pl") == ("one", "few", "many", "other")
    assert plural_categories("ja") == ("other",)
    assert ordinal_categories("en") == ("one", "two", "few", "other")
    assert ordinal_categories("en-GB") == ("one", "two", "few", "other")
    assert ordinal_categories("fr") == ("one", "other")
    assert ordinal_categories("it") == ("many", "other")
    assert ordinal_categories("pl") == ordinal_categories("ja") == ("other",)
    assert ordinal_categories("xx-unknown") == ("other",)


# The rewrite of one message -------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("pl", "{count, plural, one {# file} few {# files} many {# files} other {# files}}"),
        ("ja", "{count, plural, other {# files}}"),
        ("fr", "{count, plural, one {# file} many {# files} other {# files}}"),
        (
            "ar",
            "{count, plural, zero {# files} one {# file} two {# files} few {# files}"
            " many {# files} other {# files}}",
        ),
        ("de", FILES),
    ],
)
def test_a_plural_gets_exactly_the_targets_categories(target: str, expected: str) -> None:
    adapted = adapt_plurals(FILES, target)
    assert adapted == expected
    assert keys(adapted) == [list(plural_categories(target))]


def test_a_message_that_fits_the_target_is_kept_byte_for_byte() -> None:
    odd = "Got {count,plural,one{# file}   other {# files} } today"
    assert adapt_plurals(odd, "de") == odd
    assert adapt_plurals("{n, plural, other {#}}", "ja") == "{n, plural, other {#}}"


def test_exact_matches_are_kept_first_and_categories_follow_cldr_order() -> None:
    source = "{count, plural, other {# files} =1 {one file} one {# file} = 0 {no files}}"
    assert adapt_plurals(source, "ja") == (
        "{count, plural, =1 {one file} =0 {no files} other {# files}}"
    )
    assert keys(adapt_plurals(source, "pl")) == [["=1", "=0", "one", "few", "many", "other"]]


def test_an_offset_stays_in_the_head() -> None:
    source = (
        "{guests, plural, offset:1 =0 {Nobody} =1 {{host}} one {{host} and # guest}"
        " other {{host} and # guests}}"
    )
    adapted = adapt_plurals(source, "ru")
    assert adapted.startswith("{guests, plural, offset:1 =0 {Nobody} =1 {{host}} one {")
    (message,) = messages(adapted)
    assert message["offset"] == 1
    assert list(message["options"]) == ["=0", "=1", "one", "few", "many", "other"]
    assert adapt_plurals(source, "ja") == (
        "{guests, plural, offset:1 =0 {Nobody} =1 {{host}} other {{host} and # guests}}"
    )


def test_nested_plurals_are_adapted_and_select_keeps_its_branches() -> None:
    in_select = (
        "{who, select, admin {{count, plural, one {# admin file} other {# admin files}}}"
        " other {{count, plural, =0 {none} one {# file} other {# files}}}}"
    )
    assert keys(adapt_plurals(in_select, "pl")) == [
        ["admin", "other"],
        ["one", "few", "many", "other"],
        ["=0", "one", "few", "many", "other"],
    ]
    in_plural = (
        "{a, plural, one {# folder, {b, plural, one {# file} other {# files}}}"
        " other {# folders, {b, plural, one {# file} other {# files}}}}"
    )
    assert keys(adapt_plurals(in_plural, "ja")) == [["other"], ["other"]]
    polish = ["one", "few", "many", "other"]
    assert keys(adapt_plurals(in_plural, "pl")) == [polish] * 5  # the outer, then 4 inner
    select_only = "{g, select, male {He} female {She} other {They}}"
    assert adapt_plurals(select_only, "ar") == select_only


def test_selectordinal_gets_the_targets_ordinal_categories() -> None:
    source = "Your {n, selectordinal, other {#th}} visit"
    assert adapt_plurals(source, "en") == (
        "Your {n, selectordinal, one {#th} two {#th} few {#th} other {#th}} visit"
    )
    english = "{n, selectordinal, one {#st} two {#nd} few {#rd} other {#th}}"
    assert adapt_plurals(english, "en") == english
    assert adapt_plurals(english, "de") == "{n, selectordinal, other {#th}}"
    assert keys(adapt_plurals(english, "it")) == [["many", "other"]]


def test_text_placeholders_and_tags_around_a_message_are_kept() -> None:
    source = "<b>{name}</b>: {count, plural, one {# <i>file</i>} other {# <i>files</i>}} %s"
    japanese = "<b>{name}</b>: {count, plural, other {# <i>files</i>}} %s"
    assert adapt_plurals(source, "ja") == japanese
    # Inside a tag, as for masking, a message is not a message: it is part of the tag.
    attribute = '<a title="{n, plural, one {a} other {b}}">x</a>'
    assert adapt_plurals(attribute, "pl") == attribute


@pytest.mark.parametrize(
    "source",
    [
        "{count, plural, one {# file} other {# files}",  # unbalanced
        "{count, plural, one {# file}}",  # no other
        "{count, plural, one {# file} other {# files} junk}",  # text after the branches
        "{count, plural, one {# file} one {# files} other {# files}}",  # a selector twice
        "{count, plural, single {# file} other {# files}}",  # no CLDR category
        "{count, plural, }",  # no branches
        "{count, plural one {# file} other {# files}}",  # no comma
    ],
)
def test_malformed_icu_is_left_alone(source: str) -> None:
    assert adapt_plurals(source, "pl") == source
    assert adapt_plurals(f"Before {source} after", "ja") == f"Before {source} after"


@pytest.mark.parametrize("target", ["pl", "ja", "ar", "fr", "cy", "en", "he", "xx"])
def test_masked_adapted_messages_round_trip_through_pseudo(target: str) -> None:
    """What the pipeline does with the offline engine: the tokens of the adapted message
    come back in order and the result parses with exactly the target's categories."""
    source = (
        "{who, select, admin {{count, plural, offset:1 =0 {No file} one {# file of {name}}"
        " other {# files of {name}}}} other {{n, selectordinal, one {#st} other {#th}} run}}"
    )
    adapted = adapt_plurals(source, target)
    masked = mask(adapted)
    answer = pseudo_localize(masked.text)
    assert token_problems(answer, masked) == []
    found = messages(unmask(answer, masked))
    assert [list(m["options"]) for m in found] == [
        ["admin", "other"],
        ["=0", *plural_categories(target)],
        list(ordinal_categories(target)),
    ]


# The file client's functions ------------------------------------------------------------


def test_icu_plural_builds_a_message_in_order_with_texts_verbatim() -> None:
    forms = {"other": "{{count}} files of {name}", "one": "%d file", "=0": "none", "few": "#"}
    message = icu_plural(forms)
    assert message == (
        "{count, plural, =0 {none} one {%d file} few {#} other {{{count}} files of {name}}}"
    )
    assert icu_plural_forms(message) == ("count", forms)
    assert icu_plural({"other": "x", "=10": "ten", "=2": "two"}, "n") == (
        "{n, plural, =2 {two} =10 {ten} other {x}}"
    )


@pytest.mark.parametrize(
    ("forms", "argument"),
    [({"one": "x"}, "count"), ({"other": "x", "several": "y"}, "n"), ({"other": "x"}, "a b")],
)
def test_icu_plural_refuses_what_is_no_icu_plural(forms: dict[str, str], argument: str) -> None:
    with pytest.raises(ValueError):
        icu_plural(forms, argument)


@pytest.mark.parametrize(
    "message",
    [
        "Hello",
        "{count}",
        f"{FILES} more",
        f"[{FILES}]",
        "{g, select, male {x} other {y}}",
        "{n, selectordinal, one {#st} other {#th}}",
        "{n, plural, offset:1 one {x} other {y}}",
        "{n, plural, one {x}}",
        "{n, plural, one {x} other {y}",
    ],
)
def test_icu_plural_forms_reads_only_one_plain_plural(message: str) -> None:
    assert icu_plural_forms(message) is None


def _braced(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.lists(inner | inner.map(lambda t: "{" + t + "}"), max_size=3).map("".join)


# Texts with balanced braces: any characters but braces, placeholders, nested groups.
PLAIN = st.text(st.characters(exclude_characters="{}", exclude_categories=["Cs"]), max_size=8)
TOKENS = st.sampled_from(["#", "%d", "{name}", "{{count}}", "${x}", " other {x} ", "=0", " "])
TEXTS = st.recursive(PLAIN | TOKENS, _braced, max_leaves=12)
SELECTORS = st.sampled_from(CATEGORIES[:-1]) | st.integers(-3, 1000).map(lambda n: f"={n}")
ARGUMENTS = st.text(
    st.characters(exclude_categories=["Z", "C"], exclude_characters="{},"), min_size=1
)


@settings(max_examples=300, deadline=None, database=None, derandomize=True)
@given(st.dictionaries(SELECTORS, TEXTS, max_size=6), TEXTS, ARGUMENTS)
def test_forms_round_trip_through_an_icu_plural(
    forms: dict[str, str], other: str, argument: str
) -> None:
    forms = {**forms, "other": other}
    assert icu_plural_forms(icu_plural(forms, argument)) == (argument, forms)


# The pipeline ---------------------------------------------------------------------------


def translate(data: Any, target: str, provider: Any, **extra: Any) -> Any:
    return asyncio.run(
        translate_document(
            data,
            source_locale="en",
            target_locale=target,
            plan=EnginePlan("eng_plurals", (ModelChoice(provider.name),)),
            providers={provider.name: provider},
            limits=LIMITS,
            **extra,
        )
    )


def test_the_pipeline_translates_the_adapted_message_without_warnings() -> None:
    data = {"n": FILES, "blank": "{count, plural, one {#} other {#}}", "plain": "Hi"}
    result = translate(data, "pl", PseudoProvider())
    assert result.warnings == []
    assert keys(result.output["n"]) == [["one", "few", "many", "other"]]
    assert "ƒíĺéš" in result.output["n"]  # the branches were translated
    # Nothing to translate, and still the target's categories.
    assert result.output["blank"] == "{count, plural, one {#} few {#} many {#} other {#}}"


class BranchDroppingModel:
    """Upper-cases every masked text, and drops what lies between ``⟦2⟧`` and ``⟦6⟧``: of
    the Polish message, its ``few`` and ``many`` branches (what a model that answered in
    the source's shape, ``one``/``other``, would do)."""

    name = "dropping"
    remembers = False
    batching = True

    async def translate(self, model: str | None, request: BatchRequest) -> BatchAnswer:
        texts = {item.id: re.sub("⟦2⟧.*(?=⟦6⟧)", "", item.text.upper()) for item in request.items}
        return BatchAnswer(texts=texts)


def test_real_breakage_still_warns_and_keeps_the_adapted_source() -> None:
    result = translate({"n": FILES, "ok": "Fine"}, "pl", BranchDroppingModel())
    assert [(w["code"], w["key"]) for w in result.warnings] == [("placeholder_mismatch", "n")]
    assert "kept the source text" in result.warnings[0]["message"]
    assert result.output == {"n": adapt_plurals(FILES, "pl"), "ok": "FINE"}


class RememberingModel(NoReview):
    """A paid-like model whose answers go to memory: the masked text, upper-cased."""

    name = "remembering"
    remembers = True
    batching = True

    def __init__(self) -> None:
        self.items = 0

    async def translate(self, model: str | None, request: BatchRequest) -> BatchAnswer:
        self.items += len(request.items)
        return BatchAnswer(texts={item.id: item.text.upper() for item in request.items})


def test_memory_never_serves_a_translation_in_the_sources_categories(tmp_path: Path) -> None:
    """An entry written for the source text as it was (before targets got their own
    categories: Polish with ``one``/``other`` only) is not served; the adapted message is
    translated, remembered and served from then on."""
    plan = EnginePlan("eng_plurals", (ModelChoice("remembering"),))
    stale = "{count, plural, one {# plik} other {# plików}}"
    old_key = json.dumps([plan.fingerprint, "en", "pl", "", FILES, []], ensure_ascii=False)

    async def scenario() -> tuple[Any, Any, int]:
        db = Database(f"sqlite+aiosqlite:///{tmp_path / 'tolk.db'}")
        await db.create_schema()
        async with db.writing() as session:
            org = await accounts.create_organization(session, "acme")
        memory = DatabaseMemory(db, org.id)
        await memory.store({hashlib.sha256(old_key.encode()).hexdigest(): stale})
        model = RememberingModel()
        runs = []
        for _ in range(2):
            runs.append(
                await translate_document(
                    {"n": FILES},
                    source_locale="en",
                    target_locale="pl",
                    plan=plan,
                    providers={"remembering": model},
                    limits=LIMITS,
                    memory=memory,
                )
            )
        await db.close()
        return runs[0], runs[1], model.items

    first, second, items = asyncio.run(scenario())
    assert first.memory_hits == 0 and items == 1
    assert first.output["n"] == (
        "{count, plural, one {# FILE} few {# FILES} many {# FILES} other {# FILES}}"
    )
    assert second.memory_hits == 1 and second.output == first.output


# The real stack -------------------------------------------------------------------------


def test_jobs_give_every_target_its_plural_categories(client: httpx.Client) -> None:
    resp = client.post(
        "/jobs/localization",
        json={"sourceLocale": "en", "targetLocales": ["pl", "ja", "de"], "data": {"n": FILES}},
    )
    assert resp.status_code == 202, resp.text
    group = wait_for_group(client, resp.json()["groupId"])
    assert group["status"] == "completed"
    expected = {
        "pl": {"one", "few", "many", "other"},
        "ja": {"other"},
        "de": {"one", "other"},
    }
    seen = {}
    for job in group["jobs"]:
        detail = client.get(f"/jobs/localization/{job['id']}").json()
        assert detail["status"] == "completed" and detail["warnings"] == []
        (message,) = messages(detail["outputData"]["n"])
        assert message["type"] == "plural" and message["name"] == "count"
        seen[detail["targetLocale"]] = set(message["options"])
    assert seen == expected


def test_process_localize_gives_polish_its_plural_categories(client: httpx.Client) -> None:
    resp = client.post(
        "/process/localize",
        json={"sourceLocale": "en", "targetLocale": "pl", "data": {"n": FILES}},
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["warnings"] == []
    (message,) = messages(body["data"]["n"])
    assert list(message["options"]) == ["one", "few", "many", "other"]
    assert body["data"]["n"] != adapt_plurals(FILES, "pl")  # translated, not kept
