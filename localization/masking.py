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

Plural categories are the target's, not the source's: the pipeline rewrites a source for
its target with ``localization.icu_plurals.adapt_plurals`` before masking it (Polish gets
``one few many other``, Japanese ``other``; exact matches such as ``=0`` stay), so the
masked text, its structure and the check of a translation are those of the target's
message. The ICU grammar split here is the one that module rewrites (``ICU_HEAD``).
A malformed ICU message is one token, as in ``placeholders``; unbalanced braces are text.

Surrounding whitespace is kept aside (``lead``/``trail``) and re-added by ``unmask``.

A translation must keep the structure, not only every token once (``token_problems``): the
ICU structure tokens of a message keep their order (head, each ``} other {``, the closing
``}}``), every token stays in the ICU branch it came from (the top level is a branch too),
and HTML tags that the source pairs (``<b>``...``</b>`` in one branch) stay properly nested,
open before close; pairs, atoms and text may move around each other inside their branch.
Void, self-closing and unpaired tags are free tokens of their branch. The roles are worked
out once by ``mask`` (``Masked.structure``) and checked in one pass.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property, lru_cache

from localization.icu_plurals import ICU_HEAD as _ICU_HEAD
from localization.icu_plurals import SELECTOR as _SELECTOR
from localization.placeholders import balanced_end, protected_end

TOKEN_FORMAT = "⟦{}⟧"

_TOKEN = re.compile(r"⟦([^⟦⟧]*)⟧")  # anything token-like; valid ones are ⟦ n ⟧
_NUMBER = re.compile(r"\s*(\d+)\s*", re.ASCII)
_TAG = re.compile(r"<(/?)([A-Za-z][^\s/<>]*)[^<>]*?(/?)>\Z")
_VOID = frozenset(
    "area base br col embed hr img input keygen link meta param source track wbr".split()
)

# What a segment is; for tokens, also their role in ``Masked.structure``.
TEXT = 0  # translatable text (segments only)
ATOM = 1  # a token free to move inside its branch: placeholder, #, term, void or lone tag
OPEN = 2  # an HTML open tag with its close tag in the same branch
CLOSE = 3
HEAD = 4  # ICU ``{n, plural, one {``: the message and its first branch start
SEP = 5  # ICU ``} other {``: a branch ends, the next starts
END = 6  # ICU ``}}``: the last branch and the message end

Segment = tuple[int, str]  # (kind, text): TEXT, ATOM, HEAD, SEP or END
# Per token: (role, branch, mate). ATOM, OPEN, CLOSE: the branch it is in; the mate of
# CLOSE is its OPEN. HEAD: the enclosing branch, and the mate is the branch it opens. SEP:
# the branch it opens, and the mate is the message's structure token before it. END: the
# enclosing branch, mate as for SEP. Branch 0 is the top level.
Role = tuple[int, int, int]


@dataclass(frozen=True)
class Masked:
    text: str  # what to translate, with tokens; surrounding whitespace stripped
    spans: tuple[str, ...]  # spans[n]: the original text of token ⟦n⟧
    lead: str = ""  # leading whitespace of the original, re-added by ``unmask``
    trail: str = ""  # trailing whitespace of the original
    # Role of each token (see ``Role``), from ``mask``; without it only presence is checked.
    structure: tuple[Role, ...] = field(default=(), compare=False, repr=False)

    @cached_property
    def has_text(self) -> bool:
        """Whether there is anything to translate: a letter outside the tokens."""
        return any(ch.isalpha() for ch in _TOKEN.sub("", self.text))


class TokenError(ValueError):
    """A translation lost, repeated or invented tokens, or broke their structure."""


def _icu(group: str, in_plural: bool) -> list[Segment] | None:
    """Split a balanced ``{...}`` plural/select message, or None if it is not one."""
    head = _ICU_HEAD.match(group)
    if head is None:
        return None
    plural = in_plural or head["kind"] != "select"
    segments: list[Segment] = []
    structure = 0  # start of the structure not yet emitted
    pos = head.end()
    while selector := _SELECTOR.match(group, pos):
        close = balanced_end(group, selector.end() - 1)
        if close is None or close >= len(group):
            return None
        segments.append((SEP if segments else HEAD, group[structure : selector.end()]))
        segments.extend(_segments(group[selector.end() : close - 1], plural))
        structure, pos = close - 1, close
    if not segments or group[pos:-1].strip():
        return None
    segments.append((END, group[structure:]))
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
            segments.append((TEXT, text[plain:i]))
        group = text[i:end]
        icu = _icu(group, in_plural) if group[0] == "{" else None
        segments.extend(icu or [(ATOM, group)])
        plain = i = end
    if plain < len(text):
        segments.append((TEXT, text[plain:]))
    return segments


@lru_cache(maxsize=1024)
def _term_pattern(term: str) -> re.Pattern[str]:
    words = r"\s+".join(re.escape(word) for word in term.split())
    return re.compile(rf"(?<![^\W_])(?:{words})(?![^\W_])", re.IGNORECASE)


def _mask_terms(text: str, segments: list[Segment], terms: Sequence[str]) -> list[Segment]:
    """Split plain segments around do-not-translate terms, longest terms first."""
    plain: list[tuple[int, int]] = []  # (start, end) of plain segments in ``text``
    offset = 0
    for kind, span in segments:
        if kind == TEXT:
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
    for kind, span in segments:
        cut = 0
        for start, end in sorted(found) if kind == TEXT else ():
            if offset <= start and end <= offset + len(span):
                if start > offset + cut:
                    result.append((TEXT, span[cut : start - offset]))
                result.append((ATOM, span[start - offset : end - offset]))
                cut = end - offset
        if cut < len(span):
            result.append((kind, span[cut:]))
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
    kinds: list[int] = []
    for kind, span in segments:
        if kind == TEXT:
            parts.append(span)
        else:
            parts.append(TOKEN_FORMAT.format(len(spans)))
            spans.append(span)
            kinds.append(kind)
    return Masked(
        text="".join(parts),
        spans=tuple(spans),
        lead=lead,
        trail=trail,
        structure=_structure(kinds, spans),
    )


def _tag(span: str) -> tuple[str, bool] | None:
    """(name, closing) of an HTML tag that may be paired; None for anything else (void and
    self-closing tags, comments, entities, placeholders...)."""
    if not span.startswith("<"):
        return None
    match = _TAG.match(span)
    if match is None:
        return None
    name = match[2].lower()
    if name in _VOID or (match[3] and not match[1]):
        return None
    return name, bool(match[1])


def _structure(kinds: list[int], spans: list[str]) -> tuple[Role, ...]:
    """The role of every token, in one pass. Tags pair like an HTML parser within their
    branch: a close tag closes the nearest open tag of its name, the tags opened after that
    one stay unpaired (free), and so does a close tag with nothing to close."""
    if HEAD not in kinds and not any(span[0] == "<" for span in spans):
        return ((ATOM, 0, -1),) * len(kinds)  # the common case: free tokens, one branch
    roles = [[kind, 0, -1] for kind in kinds]
    branch = branches = 0
    opened: list[tuple[str, int]] = []  # open tags of the current branch, innermost last
    counts: dict[str, int] = {}  # of ``opened``, by name
    messages: list[tuple[int, int, list[tuple[str, int]], dict[str, int]]] = []
    for n, kind in enumerate(kinds):
        role = roles[n]
        if kind == HEAD:
            messages.append((n, branch, opened, counts))
            branches += 1
            role[1], role[2] = branch, branches
            branch, opened, counts = branches, [], {}
        elif kind == SEP:
            last, parent, outer, outer_counts = messages[-1]
            messages[-1] = (n, parent, outer, outer_counts)
            branches += 1
            role[1], role[2] = branches, last
            branch, opened, counts = branches, [], {}
        elif kind == END:
            last, branch, opened, counts = messages.pop()
            role[1], role[2] = branch, last
        else:
            role[1] = branch
            tag = _tag(spans[n])
            if tag is None:
                continue
            name, closing = tag
            if not closing:
                opened.append((name, n))
                counts[name] = counts.get(name, 0) + 1
            elif counts.get(name):
                while True:  # amortized: each open tag is popped once
                    inner, m = opened.pop()
                    counts[inner] -= 1
                    if inner == name:
                        break
                roles[m][0] = OPEN
                role[0], role[2] = CLOSE, m
    return tuple((role, where, mate) for role, where, mate in roles)


def _token_number(inner: str, masked: Masked) -> int | None:
    number = _NUMBER.fullmatch(inner)
    if number is None or int(number[1]) >= len(masked.spans):
        return None
    return int(number[1])


def token_problems(translated: str, masked: Masked) -> list[str]:
    """What is wrong with the tokens of ``translated``; empty when each appears once and
    the structure holds (see the module's docstring). Messages name tokens, not text."""
    if not masked.spans and "⟦" not in translated and "⟧" not in translated:
        return []  # the common case of plain text, without a scan
    seen = [0] * len(masked.spans)
    order: list[int] = []
    unknown: list[str] = []
    for match in _TOKEN.finditer(translated):
        n = _token_number(match[1], masked)
        if n is None:
            unknown.append(f"unknown {match[0]}")
        else:
            seen[n] += 1
            order.append(n)
    problems = []
    for n, span in enumerate(masked.spans):
        if not seen[n]:
            problems.append(f"missing {TOKEN_FORMAT.format(n)} ({span})")
        elif seen[n] > 1:
            problems.append(f"{TOKEN_FORMAT.format(n)} repeated")
    rest = _TOKEN.sub("", translated)
    stray = [f"stray {ch}" for ch in "⟦⟧" if ch in rest]
    problems += unknown + stray
    if not problems and len(masked.structure) == len(masked.spans):
        broken = _structure_problem(order, masked.structure)
        if broken:
            problems.append(broken)
    return problems


def _structure_problem(order: list[int], structure: tuple[Role, ...]) -> str | None:
    """The first structure problem of tokens seen in ``order`` (each exactly once)."""
    token = TOKEN_FORMAT.format
    stack: list[int] = []  # open tags and the ICU message structure tokens enclosing
    branch = 0
    for n in order:
        kind, where, mate = structure[n]
        if kind in (SEP, END):
            if not stack or stack[-1] != mate:
                top = stack[-1] if stack else -1
                if top >= 0 and structure[top][0] == OPEN:
                    return f"{token(top)} not closed in its ICU branch"
                return f"ICU structure {token(n)} out of order"
            if kind == SEP:
                stack[-1] = n
            else:
                stack.pop()
            branch = where
            continue
        if where != branch:
            return f"{token(n)} not in its ICU branch"
        if kind == OPEN:
            stack.append(n)
        elif kind == CLOSE:
            if not stack or stack[-1] != mate:
                if mate not in stack:
                    return f"{token(n)} closes before {token(mate)} opens"
                return f"{token(mate)}...{token(n)} not properly nested"
            stack.pop()
        elif kind == HEAD:
            stack.append(n)
            branch = mate
    return None


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


def remask(translated: str, masked: Masked) -> str:
    """``translated`` (an unmasked translation of ``masked``'s source) with the source's
    spans turned back into its tokens, for a reviewer to judge against ``masked.text``.
    Spans are matched longest first at each position; a span written twice takes the
    tokens of its occurrences in order, then repeats the last. What the translation broke
    stays text, so ``token_problems`` of the result names it."""
    if not masked.spans:
        return translated.strip()
    numbers: dict[str, list[int]] = {}
    for n, span in enumerate(masked.spans):
        numbers.setdefault(span, []).append(n)
    alternatives = "|".join(re.escape(span) for span in sorted(numbers, key=len, reverse=True))
    used: dict[str, int] = {}

    def token(match: re.Match[str]) -> str:
        choices = numbers[match[0]]
        index = used.get(match[0], 0)
        used[match[0]] = index + 1
        return TOKEN_FORMAT.format(choices[min(index, len(choices) - 1)])

    return re.sub(alternatives, token, translated.strip())


def tokens_in(text: str) -> list[str]:
    """Every token-like ``⟦...⟧`` of ``text``, in order."""
    return [match[0] for match in _TOKEN.finditer(text)]
