"""Mask a source string for an LLM: protected spans become opaque tokens, restored after.

Every span that must survive verbatim becomes one token ``⟦n⟧`` (U+27E6/U+27E7), numbered
from 0 in order of appearance; ``Masked.spans[n]`` is the exact original text of ``⟦n⟧``.
Tokens stand for what ``localization.placeholders`` protects (``{name}``, ``{{name}}``,
``${name}``, printf forms, HTML tags, comments and entities, simple ICU arguments such as
``{n, number}``), for do-not-translate terms (whole words, any case, longest first; the
token keeps the original spelling) and for any ``⟦``/``⟧`` already in the source, so a
literal bracket can never pass for a token.

ICU ``plural``, ``select`` and ``selectordinal`` messages are split rather than hidden: the
structure becomes tokens and the branch texts stay translatable, masked recursively (nested
ICU, placeholders, markup; ``#`` in a plural branch is a token of its own)::

    {count, plural, =0 {No items} other {# items}}
    -> ⟦0⟧No items⟦1⟧⟦2⟧ items⟦3⟧
       with spans "{count, plural, =0 {", "} other {", "#", "}}"

Known limit: the translation keeps the source's plural categories (``=0``, ``one``,
``other``...); a target language that needs others (``few``, ``many``) does not get them.
A malformed ICU message is one token, as in ``placeholders``; unbalanced braces are text.

Surrounding whitespace is kept aside (``lead``/``trail``) and re-added by ``unmask``.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache

from localization.placeholders import balanced_end, protected_end

TOKEN_FORMAT = "⟦{}⟧"

_TOKEN = re.compile(r"⟦([^⟦⟧]*)⟧")  # anything token-like; valid ones are ⟦ n ⟧
_NUMBER = re.compile(r"\s*(\d+)\s*", re.ASCII)
_ICU_HEAD = re.compile(
    r"\{\s*[^\s{},]+\s*,\s*(plural|selectordinal|select)\s*,\s*(?:offset\s*:\s*\d+\s*)?"
)
_SELECTOR = re.compile(r"\s*(?:=\s*-?\d+(?:\.\d+)?|[^\s{},=]+)\s*\{")

Segment = tuple[bool, str]  # (protected, text)


@dataclass(frozen=True)
class Masked:
    text: str  # what to translate, with tokens; surrounding whitespace stripped
    spans: tuple[str, ...]  # spans[n]: the original text of token ⟦n⟧
    lead: str = ""  # leading whitespace of the original, re-added by ``unmask``
    trail: str = ""  # trailing whitespace of the original

    @cached_property
    def has_text(self) -> bool:
        """Whether there is anything to translate: a letter outside the tokens."""
        return any(ch.isalpha() for ch in _TOKEN.sub("", self.text))


class TokenError(ValueError):
    """A translation lost, repeated or invented tokens."""


def _icu(group: str, in_plural: bool) -> list[Segment] | None:
    """Split a balanced ``{...}`` plural/select message, or None if it is not one."""
    head = _ICU_HEAD.match(group)
    if head is None:
        return None
    plural = in_plural or head[1] != "select"
    segments: list[Segment] = []
    structure = 0  # start of the structure not yet emitted
    pos = head.end()
    while selector := _SELECTOR.match(group, pos):
        close = balanced_end(group, selector.end() - 1)
        if close is None or close >= len(group):
            return None
        segments.append((True, group[structure : selector.end()]))
        segments.extend(_segments(group[selector.end() : close - 1], plural))
        structure, pos = close - 1, close
    if not segments or group[pos:-1].strip():
        return None
    segments.append((True, group[structure:]))
    return segments


def _segments(text: str, in_plural: bool = False) -> list[Segment]:
    segments: list[Segment] = []
    plain = i = 0
    while i < len(text):
        end = protected_end(text, i)
        if end is None and (text[i] in "⟦⟧" or (in_plural and text[i] == "#")):
            end = i + 1
        if end is None:
            i += 1
            continue
        if plain < i:
            segments.append((False, text[plain:i]))
        group = text[i:end]
        icu = _icu(group, in_plural) if group[0] == "{" else None
        segments.extend(icu or [(True, group)])
        plain = i = end
    if plain < len(text):
        segments.append((False, text[plain:]))
    return segments


@lru_cache(maxsize=1024)
def _term_pattern(term: str) -> re.Pattern[str]:
    words = r"\s+".join(re.escape(word) for word in term.split())
    return re.compile(rf"(?<![^\W_])(?:{words})(?![^\W_])", re.IGNORECASE)


def _mask_terms(text: str, segments: list[Segment], terms: Sequence[str]) -> list[Segment]:
    """Split plain segments around do-not-translate terms, longest terms first."""
    plain: list[tuple[int, int]] = []  # (start, end) of plain segments in ``text``
    offset = 0
    for protected, span in segments:
        if not protected:
            plain.append((offset, offset + len(span)))
        offset += len(span)
    found: list[tuple[int, int]] = []
    for term in sorted({t.strip() for t in terms if t.strip()}, key=lambda t: (-len(t), t)):
        for match in _term_pattern(term).finditer(text):
            start, end = match.span()
            inside = any(a <= start and end <= b for a, b in plain)
            if inside and not any(start < e and s < end for s, e in found):
                found.append((start, end))
    if not found:
        return segments
    result: list[Segment] = []
    offset = 0
    for protected, span in segments:
        cut = 0
        for start, end in sorted(found) if not protected else ():
            if offset <= start and end <= offset + len(span):
                if start > offset + cut:
                    result.append((False, span[cut : start - offset]))
                result.append((True, span[start - offset : end - offset]))
                cut = end - offset
        if cut < len(span):
            result.append((protected, span[cut:]))
        offset += len(span)
    return result


def mask(text: str, do_not_translate: Sequence[str] = ()) -> Masked:
    core = text.strip()
    if not core:
        return Masked(text="", spans=(), lead=text)
    lead = text[: len(text) - len(text.lstrip())]
    trail = text[len(text.rstrip()) :]
    segments = _mask_terms(core, _segments(core), do_not_translate)
    parts: list[str] = []
    spans: list[str] = []
    for protected, span in segments:
        if protected:
            parts.append(TOKEN_FORMAT.format(len(spans)))
            spans.append(span)
        else:
            parts.append(span)
    return Masked(text="".join(parts), spans=tuple(spans), lead=lead, trail=trail)


def _token_number(inner: str, masked: Masked) -> int | None:
    number = _NUMBER.fullmatch(inner)
    if number is None or int(number[1]) >= len(masked.spans):
        return None
    return int(number[1])


def token_problems(translated: str, masked: Masked) -> list[str]:
    """What is wrong with the tokens of ``translated``; empty when each appears once."""
    if not masked.spans and "⟦" not in translated and "⟧" not in translated:
        return []  # the common case of plain text, without a scan
    seen: Counter[int] = Counter()
    unknown: list[str] = []
    for match in _TOKEN.finditer(translated):
        n = _token_number(match[1], masked)
        if n is None:
            unknown.append(f"unknown {match[0]}")
        else:
            seen[n] += 1
    problems = []
    for n, span in enumerate(masked.spans):
        if not seen[n]:
            problems.append(f"missing {TOKEN_FORMAT.format(n)} ({span})")
        elif seen[n] > 1:
            problems.append(f"{TOKEN_FORMAT.format(n)} repeated")
    rest = _TOKEN.sub("", translated)
    stray = [f"stray {ch}" for ch in "⟦⟧" if ch in rest]
    return problems + unknown + stray


def without_tokens(text: str) -> str:
    """``text`` with every token replaced by a space (to search what is outside them)."""
    return _TOKEN.sub(" ", text)


def unmask(translated: str, masked: Masked) -> str:
    problems = token_problems(translated, masked)
    if problems:
        raise TokenError("; ".join(problems))

    def span(match: re.Match[str]) -> str:
        return masked.spans[int(match[1])]

    return masked.lead + _TOKEN.sub(span, translated.strip()) + masked.trail
