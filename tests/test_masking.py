"""Masking for LLMs: protected spans become ``⟦n⟧`` tokens and come back verbatim.

Checked against a corpus of realistic UI strings; what must survive is found here with
explicit regexes (and a small brace walker for ICU branches), independently of
``localization.masking``.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from localization.masking import (
    ATOM,
    CLOSE,
    END,
    HEAD,
    OPEN,
    SEP,
    Masked,
    TokenError,
    mask,
    token_problems,
    unmask,
)
from localization.pseudo import pseudo_localize

CORPUS: dict[str, str] = json.loads(
    (Path(__file__).parent / "data" / "corpus.json").read_text(encoding="utf-8")
)
TERMS = ("Tolk", "Acme Cloud")

# What must survive, written independently of the code under test.
BRACE = re.compile(r"\$\{\w+\}|\{\{\w+\}\}|\{\w+\}")
ICU_ARG = re.compile(r"\{\w+, (?:number|date|time)[^{}]*\}")
PRINTF = re.compile(r"%(?:\(\w+\))?(?:\d+\$)?(?:\.\d+)?[sdf]")
TAG = re.compile(r"<!--.*?-->|</?[A-Za-z][^<>]*>")
ENTITY = re.compile(r"&(?:#\d+|#x[0-9A-Fa-f]+|[A-Za-z]+);")
ICU_HEAD = re.compile(r"\{\s*\w+\s*,\s*(plural|selectordinal|select)\s*,(?:\s*offset:\d+)?")
ICU_SELECTOR = re.compile(r"\s*(=\d+|[a-z]+)\s*\{")
ICU_CLOSE = re.compile(r"\s*\}")
BRAND = re.compile(r"(?<![^\W_])(?:tolk|acme\s+cloud)(?![^\W_])", re.IGNORECASE)
NOT_TEXT = re.compile(r"#|<[^<>]*>|&#?\w+;|%\S*|" + BRAND.pattern, re.IGNORECASE)


@dataclass
class Icu:
    head: str
    plural: bool
    selectors: list[str] = field(default_factory=list)
    bodies: list[tuple[int, int]] = field(default_factory=list)  # branch texts, as slices


def icu_messages(text: str) -> list[Icu]:
    """Every well-formed ICU plural/select message in ``text``, nested ones too."""
    found = []
    for head in ICU_HEAD.finditer(text):
        icu, pos = Icu(head[0], head[1] != "select"), head.end()
        while selector := ICU_SELECTOR.match(text, pos):
            level, i = 1, selector.end()
            while level and i < len(text):
                level += {"{": 1, "}": -1}.get(text[i], 0)
                i += 1
            if level:
                break
            icu.selectors.append(selector[1])
            icu.bodies.append((selector.end(), i - 1))
            pos = i
        if icu.bodies and ICU_CLOSE.match(text, pos):
            found.append(icu)
    return found


def protected(text: str) -> Counter[str]:
    """Every span of ``text`` that must come back verbatim, with its count."""
    found: Counter[str] = Counter()
    for pattern in (ICU_ARG, PRINTF, TAG, ENTITY):
        found.update(pattern.findall(text))
    messages = icu_messages(text)
    bodies = {body for icu in messages for body in icu.bodies}
    for match in BRACE.finditer(text):
        if (match.start() + 1, match.end() - 1) not in bodies:  # "female {She}" is text
            found[match[0]] += 1
    for icu in messages:
        found[icu.head] += 1
        found.update(f"selector {selector}" for selector in icu.selectors)
        if icu.plural:
            found["#"] += sum(text.count("#", start, end) for start, end in icu.bodies)
    return found


def accented(plain: str) -> str:
    """How ``pseudo_localize`` renders a piece of plain text inside a longer string."""
    out = pseudo_localize(plain)
    assert out.startswith("[") and out.endswith("]")
    return out[1:].rsplit(" ", 1)[0]


def test_corpus_is_big_and_varied_enough() -> None:
    texts = list(CORPUS.values())
    assert len(CORPUS) >= 200 and len(set(texts)) == len(texts)
    everything = "\n".join(texts)
    assert len(ICU_HEAD.findall(everything)) >= 30
    assert len(TAG.findall(everything)) >= 40
    assert len(PRINTF.findall(everything)) >= 40
    assert len(BRACE.findall(everything)) >= 40
    assert len(ENTITY.findall(everything)) >= 20
    assert sum(text != text.strip() for text in texts) >= 5
    assert sum(bool(BRAND.search(text)) for text in texts) >= 10


@pytest.mark.parametrize("key", sorted(CORPUS))
def test_round_trip(key: str) -> None:
    source = CORPUS[key]
    for terms in ((), TERMS):
        masked = mask(source, terms)
        assert unmask(masked.text, masked) == source
        assert token_problems(masked.text, masked) == []
        # Spans are exact pieces of the source, and nothing protected is left in the text.
        assert all(span in source for span in masked.spans)
        for pattern in (BRACE, PRINTF, TAG, ENTITY):
            assert not pattern.search(masked.text), (pattern.pattern, masked.text)
        assert not icu_messages(masked.text)


@pytest.mark.parametrize("key", sorted(CORPUS))
def test_pseudo_through_masking_keeps_every_protected_span(key: str) -> None:
    source = CORPUS[key]
    masked = mask(source, TERMS)
    out = unmask(pseudo_localize(masked.text), masked)
    assert protected(out) == protected(source)
    assert Counter(BRAND.findall(out)) == Counter(BRAND.findall(source))
    assert out.startswith(masked.lead) and out.endswith(masked.trail)
    if masked.has_text:
        assert out != source


def test_plural_branch_texts_are_translatable() -> None:
    checked = 0
    for source in CORPUS.values():
        masked = mask(source, TERMS)
        out = unmask(pseudo_localize(masked.text), masked)
        for icu in icu_messages(source):
            for start, end in icu.bodies if icu.plural else ():
                for piece in NOT_TEXT.split(source[start:end]):
                    if not piece or "{" in piece or not re.search(r"[A-Za-z]", piece):
                        continue
                    assert piece in masked.text, (piece, masked.text)
                    assert accented(piece) in out, (piece, out)
                    checked += 1
    assert checked >= 60


def test_do_not_translate_terms_are_whole_words_any_case() -> None:
    source = "Read Tolkien with TOLK on acme  cloud, not AcmeCloud or Acme Cloudy. tolk2 Tolk-run"
    masked = mask(source, TERMS)
    assert masked.spans == ("TOLK", "acme  cloud", "Tolk")
    assert "Tolkien" in masked.text and "AcmeCloud" in masked.text and "tolk2" in masked.text
    out = unmask(pseudo_localize(masked.text), masked)
    assert "TOLK" in out and "acme  cloud" in out and "Tolk-" in out
    assert "Tolkien" not in out and "Cloudy" not in out


def test_longer_terms_win_and_protected_spans_are_not_searched() -> None:
    masked = mask("Acme Cloud Platform by Acme", ["Acme Cloud", "Cloud Platform", "Acme"])
    assert masked.spans == ("Acme", "Cloud Platform", "Acme")
    masked = mask('<a title="Tolk">Tolk</a> {Tolk}', ["Tolk"])
    assert masked.spans == ('<a title="Tolk">', "Tolk", "</a>", "{Tolk}")
    assert not mask("Tolk", ["Tolk"]).has_text


def test_literal_brackets_in_the_source_are_tokens() -> None:
    source = "Press ⟦0⟧ then ⟧ or ⟦ {name}, not ⟦ any thing ⟧"
    masked = mask(source)
    assert masked.text == "Press ⟦0⟧ then ⟦1⟧ or ⟦2⟧ ⟦3⟧, not ⟦4⟧"
    assert masked.spans == ("⟦0⟧", "⟧", "⟦", "{name}", "⟦ any thing ⟧")
    out = unmask(pseudo_localize(masked.text), masked)
    assert out.startswith("[Þŕéšš ⟦0⟧ ţĥéñ ⟧ öŕ ⟦ {name}, ñöţ ⟦ any thing ⟧ ~")


def test_token_problems_and_unmask() -> None:
    masked = mask("Hi {name}, you have %d <b>new</b> messages")
    assert masked.text == "Hi ⟦0⟧, you have ⟦1⟧ ⟦2⟧new⟦3⟧ messages"
    assert masked.has_text
    translated = "Hallo ⟦0⟧, du hast ⟦1⟧ ⟦2⟧neue⟦3⟧ Nachrichten"
    assert unmask(translated, masked) == "Hallo {name}, du hast %d <b>neue</b> Nachrichten"
    # Tokens spaced out by a model are accepted, order may change.
    assert unmask("  ⟦ 1 ⟧ ⟦2⟧neue⟦ 3⟧ für ⟦0 ⟧ ", masked) == "%d <b>neue</b> für {name}"
    assert token_problems("⟦0⟧ ⟦1⟧ ⟦2⟧", masked) == ["missing ⟦3⟧ (</b>)"]
    assert token_problems("⟦0⟧ ⟦0⟧ ⟦1⟧ ⟦2⟧ ⟦3⟧", masked) == ["⟦0⟧ repeated"]
    assert token_problems("⟦0⟧ ⟦1⟧ ⟦2⟧ ⟦3⟧ ⟦9⟧ ⟦x⟧", masked) == ["unknown ⟦9⟧", "unknown ⟦x⟧"]
    assert token_problems("⟦0⟧ ⟦1⟧ ⟦2⟧ ⟦3⟧ ⟦", masked) == ["stray ⟦"]
    for bad in ("⟦0⟧ ⟦1⟧ ⟦2⟧", "⟦0⟧ ⟦0⟧ ⟦1⟧ ⟦2⟧ ⟦3⟧", "⟦0⟧ ⟦1⟧ ⟦2⟧ ⟦3⟧ ⟦9⟧"):
        with pytest.raises(TokenError, match="⟦"):
            unmask(bad, masked)
    assert issubclass(TokenError, ValueError)


ICU_CASES = [
    (
        "{count, plural, one {# item} other {# items}}",
        "⟦0⟧⟦1⟧ item⟦2⟧⟦3⟧ items⟦4⟧",
        ("{count, plural, one {", "#", "} other {", "#", "}}"),
    ),
    (
        "{count, plural, =0 {No items} one {# item} other {# items}}",
        "⟦0⟧No items⟦1⟧⟦2⟧ item⟦3⟧⟦4⟧ items⟦5⟧",
        ("{count, plural, =0 {", "} one {", "#", "} other {", "#", "}}"),
    ),
    (
        "{g, select, female {{n, plural, one {She has # cat} other {# cats}}} other {Cats}}",
        "⟦0⟧⟦1⟧She has ⟦2⟧ cat⟦3⟧⟦4⟧ cats⟦5⟧⟦6⟧Cats⟦7⟧",
        (
            "{g, select, female {",
            "{n, plural, one {",
            "#",
            "} other {",
            "#",
            "}}",
            "} other {",
            "}}",
        ),
    ),
    (
        "{n, plural, offset:1 =0 {Nobody} =1 {{host}} other {{host} and # others}}",
        "⟦0⟧Nobody⟦1⟧⟦2⟧⟦3⟧⟦4⟧ and ⟦5⟧ others⟦6⟧",
        ("{n, plural, offset:1 =0 {", "} =1 {", "{host}", "} other {", "{host}", "#", "}}"),
    ),
    (  # "#" is only a token inside a plural branch, markup inside branches is masked
        "#1: {who, select, me {<b>You</b> won} other {{who} won #2}}",
        "#1: ⟦0⟧⟦1⟧You⟦2⟧ won⟦3⟧⟦4⟧ won #2⟦5⟧",
        ("{who, select, me {", "<b>", "</b>", "} other {", "{who}", "}}"),
    ),
    (
        "{p, selectordinal, one {#st} two {#nd} other {#th}}",
        "⟦0⟧⟦1⟧st⟦2⟧⟦3⟧nd⟦4⟧⟦5⟧th⟦6⟧",
        ("{p, selectordinal, one {", "#", "} two {", "#", "} other {", "#", "}}"),
    ),
    # Malformed: a balanced group is one token, unbalanced braces are text.
    ("{count, plural, one {# item} other}", "⟦0⟧", ("{count, plural, one {# item} other}",)),
    (
        "{count, plural, one {# item} other {# items}",
        "{count, plural, one ⟦0⟧ other ⟦1⟧",
        ("{# item}", "{# items}"),
    ),
    ("{count, plural}", "⟦0⟧", ("{count, plural}",)),
    ("{n, number} and {d, date, short}", "⟦0⟧ and ⟦1⟧", ("{n, number}", "{d, date, short}")),
]


@pytest.mark.parametrize(("source", "text", "spans"), ICU_CASES)
def test_icu_structure_is_masked_and_branch_texts_stay(
    source: str, text: str, spans: tuple[str, ...]
) -> None:
    masked = mask(source)
    assert (masked.text, masked.spans) == (text, spans)
    assert unmask(masked.text, masked) == source
    assert unmask(pseudo_localize(masked.text), masked) != source or not masked.has_text


def test_surrounding_whitespace_is_kept_aside() -> None:
    masked = mask("  \tHello {name}!\n")
    assert masked == Masked(text="Hello ⟦0⟧!", spans=("{name}",), lead="  \t", trail="\n")
    assert unmask("  Hallo ⟦0⟧!  ", masked) == "  \tHallo {name}!\n"
    for blank in ("", " ", "\n\t "):
        masked = mask(blank)
        assert masked == Masked(text="", spans=(), lead=blank)
        assert not masked.has_text
        assert unmask("", masked) == blank == unmask(pseudo_localize(masked.text), masked)


def test_only_tokens_means_nothing_to_translate() -> None:
    masked = mask(" {only} <br/> %s ")
    assert masked.text == "⟦0⟧ ⟦1⟧ ⟦2⟧" and not masked.has_text
    assert pseudo_localize(mask("{only}").text) == "⟦0⟧"


@pytest.mark.parametrize(
    "source", ["Hello world", "{only}", "Hi <b>{name}</b> &amp; %d more", "50% off, {unbalanced"]
)
def test_pseudo_on_masked_text_matches_pseudo_on_the_source(source: str) -> None:
    masked = mask(source)
    assert unmask(pseudo_localize(masked.text), masked) == pseudo_localize(source)


# Answers that keep every token exactly once but break the structure: each used to unmask
# into a broken string (``}}{count, plural, ...``, ``</a>here<a>``) and pass as completed.
STRUCTURE_BROKEN = [
    pytest.param(  # ⟦0⟧ head, ⟦1⟧ #, ⟦2⟧ } other {, ⟦3⟧ #, ⟦4⟧ }}
        "{count, plural, one {# item} other {# items}}",
        "⟦4⟧⟦0⟧⟦1⟧ Ding⟦2⟧⟦3⟧ Dinge",
        "ICU structure ⟦4⟧ out of order",
        id="icu-close-first",
    ),
    pytest.param(
        "{count, plural, one {# item} other {# items}}",
        "⟦0⟧⟦1⟧ Ding⟦4⟧⟦3⟧ Dinge⟦2⟧",
        "ICU structure ⟦4⟧ out of order",
        id="icu-close-before-separator",
    ),
    pytest.param(  # ⟦0⟧ head, ⟦1⟧ } one {, ⟦2⟧ } other {, ⟦3⟧ }}: selectors swapped
        "{n, plural, =0 {None} one {One} other {Many}}",
        "⟦0⟧Keins⟦2⟧Eins⟦1⟧Viele⟦3⟧",
        "ICU structure ⟦2⟧ out of order",
        id="icu-separators-swapped",
    ),
    pytest.param(
        "{count, plural, one {# item} other {# items}}",
        "⟦0⟧⟦3⟧ Ding⟦2⟧⟦1⟧ Dinge⟦4⟧",
        "⟦3⟧ not in its ICU branch",
        id="hash-swapped-across-branches",
    ),
    pytest.param(  # ⟦0⟧ {name} at the top level, moved into the plural
        "Hi {name}, {n, plural, one {# new} other {# new}}",
        "Hallo, ⟦1⟧⟦0⟧ ⟦2⟧ neu⟦3⟧⟦4⟧ neu⟦5⟧",
        "⟦0⟧ not in its ICU branch",
        id="placeholder-into-a-branch",
    ),
    pytest.param(  # ⟦2⟧ {who} of the "one" branch, moved out of the message
        "{n, plural, one {# item for {who}} other {# items for {who}}}",
        "⟦2⟧: ⟦0⟧⟦1⟧ Ding⟦3⟧⟦4⟧ Dinge für ⟦5⟧⟦6⟧",
        "⟦2⟧ not in its ICU branch",
        id="placeholder-out-of-its-branch",
    ),
    pytest.param(  # the nested plural (⟦1⟧...⟦5⟧) moved to the select's "other" branch
        "{g, select, female {{n, plural, one {# cat} other {# cats}}} other {Cats}}",
        "⟦0⟧Katzen⟦6⟧⟦1⟧⟦2⟧ Katze⟦3⟧⟦4⟧ Katzen⟦5⟧⟦7⟧",
        "⟦1⟧ not in its ICU branch",
        id="nested-icu-to-another-branch",
    ),
    pytest.param(  # ⟦0⟧ <a href>, ⟦1⟧ </a>
        'Click <a href="/x">here</a>',
        "Klicke ⟦1⟧hier⟦0⟧",
        "⟦1⟧ closes before ⟦0⟧ opens",
        id="tag-close-before-open",
    ),
    pytest.param(
        "<b>bold</b> and <i>italic</i>",
        "⟦0⟧fett ⟦2⟧und⟦1⟧ kursiv⟦3⟧",
        "⟦0⟧...⟦1⟧ not properly nested",
        id="tags-crossing",
    ),
    pytest.param(  # ⟦1⟧ <b>, ⟦2⟧ </b> of the "one" branch; ⟦3⟧ } other {
        "{n, plural, one {<b>x</b>} other {y}}",
        "⟦0⟧⟦1⟧x⟦3⟧y⟦2⟧⟦4⟧",
        "⟦1⟧ not closed in its ICU branch",
        id="tag-closed-in-another-branch",
    ),
    pytest.param(  # ⟦0⟧ <b> around the message, moved inside a branch
        "<b>{n, plural, one {x} other {y}}</b>",
        "⟦1⟧⟦0⟧x⟦2⟧y⟦3⟧⟦4⟧",
        "⟦0⟧ not in its ICU branch",
        id="tag-into-a-branch",
    ),
    pytest.param(  # a do-not-translate term stays in its branch like any token
        "{n, plural, one {Tolk file} other {files}}",
        "⟦0⟧Datei⟦2⟧⟦1⟧ Dateien⟦3⟧",
        "⟦1⟧ not in its ICU branch",
        id="term-to-another-branch",
    ),
]


@pytest.mark.parametrize(("source", "answer", "problem"), STRUCTURE_BROKEN)
def test_a_reordered_structure_is_a_token_problem(source: str, answer: str, problem: str) -> None:
    masked = mask(source, TERMS)
    assert sorted(re.findall(r"⟦\d+⟧", answer)) == sorted(re.findall(r"⟦\d+⟧", masked.text))
    assert token_problems(answer, masked) == [problem]
    with pytest.raises(TokenError) as err:
        unmask(answer, masked)
    # The message names tokens, never the user's text.
    message = str(err.value)
    assert message == problem and len(message) < 60
    for span in masked.spans:
        assert span not in message


STRUCTURE_KEPT = [
    pytest.param("<b>x</b> and <i>y</i>", "⟦2⟧y⟦3⟧ und ⟦0⟧x⟦1⟧", id="pairs-swapped"),
    pytest.param("<b><i>x</i></b>", "⟦1⟧⟦0⟧x⟦3⟧⟦2⟧", id="nesting-swapped"),
    pytest.param("<b>x</b> and <i>y</i>", "⟦0⟧x ⟦2⟧y⟦3⟧⟦1⟧", id="pair-moved-inside-another"),
    pytest.param("a<br>b</a> c <img src=x/>", "⟦2⟧ ⟦1⟧a⟦0⟧b c", id="void-and-lone-tags-are-free"),
    pytest.param("<a>x<b>y</a>z</b>", "⟦3⟧⟦0⟧y⟦2⟧ x ⟦1⟧ z", id="misnested-source-pairs-a-only"),
    pytest.param("Hi {a} and {b}, %s", "⟦2⟧: ⟦1⟧ und ⟦0⟧", id="placeholders-reordered"),
    pytest.param(
        "{n, plural, one {# item for {who}} other {# items for {who}}}",
        "⟦0⟧für ⟦2⟧ ⟦1⟧ Ding⟦3⟧für ⟦5⟧: ⟦4⟧ Dinge⟦6⟧",
        id="tokens-reordered-inside-their-branch",
    ),
    pytest.param(
        "Save {n, plural, one {# file} other {# files}} in <b>{dir}</b>",
        "In ⟦5⟧⟦6⟧⟦7⟧ ⟦0⟧⟦1⟧ Datei⟦2⟧⟦3⟧ Dateien⟦4⟧ speichern",
        id="message-moved-around-a-pair",
    ),
    pytest.param(
        "<b>{n, plural, one {x} other {y}}</b>", "⟦1⟧x⟦2⟧y⟦3⟧ ⟦0⟧!⟦4⟧", id="icu-out-of-a-pair"
    ),
]


@pytest.mark.parametrize(("source", "answer"), STRUCTURE_KEPT)
def test_reordering_that_keeps_the_structure_is_accepted(source: str, answer: str) -> None:
    masked = mask(source)
    assert token_problems(answer, masked) == []
    assert Counter(mask(unmask(answer, masked)).spans) == Counter(masked.spans)


def test_structure_is_worked_out_once_at_mask_time() -> None:
    masked = mask("<p>Hi <b>{name}</b>, {n, plural, one {# <br>new} other {# new}}</p>")
    #             ⟦0⟧  ⟦1⟧  ⟦2⟧  ⟦3⟧   ⟦4⟧             ⟦5⟧ ⟦6⟧     ⟦7⟧     ⟦8⟧   ⟦9⟧ ⟦10⟧
    roles = [role for role, _branch, _mate in masked.structure]
    assert roles == [OPEN, OPEN, ATOM, CLOSE, HEAD, ATOM, ATOM, SEP, ATOM, END, CLOSE]
    branches = [branch for _role, branch, _mate in masked.structure]
    assert branches == [0, 0, 0, 0, 0, 1, 1, 2, 2, 0, 0]
    assert masked.structure[3][2] == 1 and masked.structure[10][2] == 0  # close -> open
    # Derived data: not part of equality, and a hand-made Masked only checks presence.
    assert Masked(masked.text, masked.spans) == masked
    assert token_problems("⟦1⟧⟦0⟧", Masked("⟦0⟧⟦1⟧", ("<b>", "</b>"))) == []
