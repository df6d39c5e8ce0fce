"""ICU plural messages in a target language's categories, and plural forms as ICU messages.

``adapt_plurals(text, target)`` rewrites every ``plural`` of a message for the target's
CLDR plural categories and every ``selectordinal`` for its ordinal categories
(``localization.plurals``), nested ones too (a plural inside a ``select`` branch or inside
another plural); ``select`` keeps its branches. For one message, in this order:

- branches whose selector is an exact match (``=0``, ``=1``) are kept, in source order;
- then one branch per category of the target, in CLDR order: the source's branch of that
  category if it has one, else a copy of the source's ``other`` branch (``#`` and all), for
  the translator to put in the target's grammar; categories the target lacks are dropped.
  ``other`` is always there (ICU requires it); an ``offset:`` stays in the head.

A message is left as it is when it is not one this module understands: unbalanced or
malformed, a plural without ``other``, with a selector that is no CLDR category or with a
selector twice. A message whose branches already fit the target is returned byte for byte.

The grammar is the one ``localization.masking`` splits (``ICU_HEAD``, ``SELECTOR``), and
text is scanned as it scans it (placeholders, tags and tokens are skipped whole), so the
rewritten message is masked with exactly the branches the target needs.

For the file client, ``icu_plural`` builds a plural message from forms (category or exact
match -> text) and ``icu_plural_forms`` reads them back from a message that is exactly one
plural; texts are verbatim both ways.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from localization.placeholders import balanced_end, protected_end
from localization.plurals import CATEGORIES, ordinal_categories, plural_categories

ICU_HEAD = re.compile(
    r"\{\s*(?P<argument>[^\s{},]+)\s*,\s*(?P<kind>plural|selectordinal|select)\s*,"
    r"\s*(?P<offset>offset\s*:\s*\d+\s*)?"
)
SELECTOR = re.compile(r"\s*(?:=\s*-?\d+(?:\.\d+)?|[^\s{},=]+)\s*\{")
_EXACT = re.compile(r"=-?\d+(?:\.\d+)?")
_ARGUMENT = re.compile(r"[^\s{},]+")
_SPACE = re.compile(r"\s+")

Branch = tuple[str, str]  # (selector without whitespace, branch text verbatim)
Branches = tuple[Branch, ...] | list[Branch]


@dataclass(frozen=True)
class Message:
    """One ICU ``plural``/``selectordinal``/``select`` message, as written."""

    head: str  # "{count, plural, " up to the first selector, an offset included
    argument: str
    kind: str  # "plural", "selectordinal" or "select"
    offset: bool
    branches: tuple[Branch, ...]


def parse_message(group: str) -> Message | None:
    """The message ``group`` (a balanced ``{...}``) is, or None if it is not one."""
    head = ICU_HEAD.match(group)
    if head is None:
        return None
    branches: list[Branch] = []
    pos = head.end()
    while selector := SELECTOR.match(group, pos):
        close = balanced_end(group, selector.end() - 1)
        if close is None or close >= len(group):
            return None
        name = _SPACE.sub("", selector[0][:-1])
        branches.append((name, group[selector.end() : close - 1]))
        pos = close
    if not branches or group[pos:-1].strip() or group[-1:] != "}":
        return None
    return Message(
        head=group[: head.end()],
        argument=head["argument"],
        kind=head["kind"],
        offset=head["offset"] is not None,
        branches=tuple(branches),
    )


def _categories(kind: str, target: str) -> tuple[str, ...] | None:
    if kind == "plural":
        return plural_categories(target)
    if kind == "selectordinal":
        return ordinal_categories(target)
    return None  # select: its branches are the message's own


def _well_formed(branches: Branches) -> bool:
    """Whether plural branches are each an exact match or a CLDR category, each once, with
    ``other``."""
    selectors = [selector for selector, _text in branches]
    return (
        "other" in selectors
        and len(set(selectors)) == len(selectors)
        and all(s in CATEGORIES or _EXACT.fullmatch(s) for s in selectors)
    )


def rebranch(branches: Branches, categories: tuple[str, ...]) -> list[Branch]:
    """Plural branches for a target with these categories (see the module's docstring);
    the branches unchanged when they are not well formed."""
    if not _well_formed(branches):
        return list(branches)
    exact = [(s, text) for s, text in branches if s.startswith("=")]
    texts = dict(branches)
    wanted = (*(c for c in categories if c != "other"), "other")
    return [*exact, *((c, texts.get(c, texts["other"])) for c in wanted)]


def _adapt_message(group: str, target: str) -> str:
    message = parse_message(group)
    if message is None:
        return group
    branches = [(s, _adapt(text, target)) for s, text in message.branches]
    categories = _categories(message.kind, target)
    if categories is not None:
        branches = rebranch(branches, categories)
    if branches == list(message.branches):
        return group
    return message.head + " ".join(f"{s} {{{text}}}" for s, text in branches) + "}"


def _adapt(text: str, target: str) -> str:
    parts: list[str] = []
    plain = i = 0
    while i < len(text):
        end = protected_end(text, i)
        if end is None:
            i += 1
            continue
        if text[i] == "{":
            group = text[i:end]
            adapted = _adapt_message(group, target)
            if adapted != group:
                parts += [text[plain:i], adapted]
                plain = end
        i = end
    if not parts:
        return text
    parts.append(text[plain:])
    return "".join(parts)


def adapt_plurals(text: str, target: str) -> str:
    """``text`` with every ICU plural and selectordinal in the categories of ``target``."""
    if "{" not in text or ("plural" not in text and "selectordinal" not in text):
        return text  # the common case, without a scan
    return _adapt(text, target)


def _order(selector: str) -> tuple[int, float, int, str]:
    if selector.startswith("="):
        return (0, float(selector[1:]), 0, selector)
    return (1, 0.0, CATEGORIES.index(selector), selector)


def icu_plural(forms: Mapping[str, str], argument: str = "count") -> str:
    """``{count, plural, =0 {...} one {...} other {...}}`` from forms: a CLDR category or
    an exact match (``=0``) to its text, inserted verbatim (``#``, ``{name}``, ``{{count}}``,
    ``%d`` stay as they are; a text with unbalanced braces makes a message that
    ``icu_plural_forms`` does not read back). Exact matches come first, by value, then the
    categories in CLDR order. ``ValueError`` without ``other`` (ICU requires it), for a key
    that is neither a category nor an exact match, or for an argument that is no name."""
    if not _ARGUMENT.fullmatch(argument):
        raise ValueError(f"not an ICU argument name: {argument!r}")
    unknown = [key for key in forms if key not in CATEGORIES and not _EXACT.fullmatch(key)]
    if unknown:
        raise ValueError(f"not a plural category or exact match: {unknown[0]!r}")
    if "other" not in forms:
        raise ValueError("an ICU plural needs an 'other' form")
    branches = " ".join(f"{key} {{{forms[key]}}}" for key in sorted(forms, key=_order))
    return f"{{{argument}, plural, {branches}}}"


def icu_plural_forms(message: str) -> tuple[str, dict[str, str]] | None:
    """The argument name and forms (category or exact match -> branch text, verbatim) of a
    message that is exactly one plural, without ``offset:``; None for anything else
    (text around it, a select, a malformed plural)."""
    if not message.startswith("{") or balanced_end(message, 0) != len(message):
        return None
    parsed = parse_message(message)
    if parsed is None or parsed.kind != "plural" or parsed.offset:
        return None
    if not _well_formed(parsed.branches):
        return None
    return parsed.argument, dict(parsed.branches)


def spread_plural_forms(text: str) -> tuple[str, dict[str, str]] | None:
    """Like ``icu_plural_forms``, for a translation that put words around the plural: text
    before and after one top-level plural belongs to every branch (``Only {n, plural, one
    {# left} other {# left}}!`` reads as ``one {Only # left!} other {Only # left!}``, which is
    what ICU means). None when there is no plural or more than one top-level message."""
    whole = icu_plural_forms(text)
    if whole is not None:
        return whole
    found: tuple[int, int] | None = None
    i = 0
    while i < len(text):
        end = protected_end(text, i)
        if end is None:
            i += 1
            continue
        if text[i] == "{" and ICU_HEAD.match(text, i):
            if found is not None:
                return None
            found = (i, end)
        i = end
    if found is None:
        return None
    start, end = found
    inner = icu_plural_forms(text[start:end])
    if inner is None:
        return None
    before, after = text[:start], text[end:]
    return inner[0], {key: before + branch + after for key, branch in inner[1].items()}
