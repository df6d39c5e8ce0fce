"""Plural categories a language needs, from CLDR (through babel): the one rule used by ICU
messages on the server and by every file format of the client.

A target gets exactly its language's categories (Polish ``one few many other``, Japanese
``other``); ICU exact matches such as ``=0`` are not categories and are kept by callers.
Ordinals (ICU ``selectordinal``) have categories of their own: :func:`ordinal_categories`.
Gettext has numbered forms instead of names: :func:`gettext_plurals` gives the ``Plural-Forms``
header babel derives from CLDR and which category each ``msgstr[n]`` holds.
"""

from __future__ import annotations

import functools
import gettext
from collections import Counter
from dataclasses import dataclass

from babel import Locale, UnknownLocaleError
from babel.messages.plurals import get_plural

# CLDR's order of plural categories; every list this module returns follows it.
CATEGORIES = ("zero", "one", "two", "few", "many", "other")
# A language CLDR does not know gets the commonest shape.
FALLBACK = ("one", "other")
# Integers sampled to tell which CLDR category a gettext form index stands for.
SAMPLES = (*range(0, 1_200), *(k * 1_000_000 for k in range(1, 30)))


def _locale(tag: str) -> Locale | None:
    for candidate in (tag.replace("_", "-"), tag.replace("_", "-").split("-")[0]):
        try:
            return Locale.parse(candidate, sep="-")
        except (UnknownLocaleError, ValueError, TypeError):
            continue
    return None


@functools.cache
def plural_categories(tag: str) -> tuple[str, ...]:
    """The CLDR plural categories of a BCP-47 locale, in CLDR order (``other`` always last)."""
    locale = _locale(tag)
    if locale is None:
        return FALLBACK
    tags = set(locale.plural_form.tags) | {"other"}
    return tuple(c for c in CATEGORIES if c in tags)


def plural_category(tag: str, n: float) -> str:
    """The CLDR category of the number ``n`` in this locale."""
    locale = _locale(tag)
    if locale is None:
        return "one" if n == 1 else "other"
    return str(locale.plural_form(n))


@dataclass(frozen=True)
class GettextPlurals:
    nplurals: int
    expression: str  # C expression over n, as in the header
    categories: tuple[str, ...]  # the CLDR category each msgstr[index] holds

    @property
    def header(self) -> str:
        """The value of a ``Plural-Forms`` header."""
        return f"nplurals={self.nplurals}; plural={self.expression};"


@functools.cache
def gettext_plurals(tag: str) -> GettextPlurals:
    """Gettext's plural forms for a locale, and the CLDR category behind each index (the
    category most integers of that index fall in)."""
    locale = _locale(tag)
    if locale is None:
        return GettextPlurals(2, "(n != 1)", FALLBACK)
    rule = get_plural(locale)
    nplurals, expression = rule.num_plurals, rule.plural_expr
    pick = gettext.c2py(expression)
    votes: dict[int, Counter[str]] = {i: Counter() for i in range(nplurals)}
    for n in SAMPLES:
        votes[pick(n)][plural_category(tag, n)] += 1
    categories = []
    for index in range(nplurals):
        common = votes[index].most_common(1)
        categories.append(common[0][0] if common else "other")
    return GettextPlurals(nplurals, expression, tuple(categories))


# A language CLDR does not know: most languages have no ordinal categories but ``other``.
ORDINAL_FALLBACK = ("other",)


@functools.cache
def ordinal_categories(tag: str) -> tuple[str, ...]:
    """The CLDR ordinal categories of a BCP-47 locale (``selectordinal``: English ``one two
    few other`` for 1st, 2nd, 3rd, 4th), in CLDR order (``other`` always last)."""
    locale = _locale(tag)
    if locale is None:
        return ORDINAL_FALLBACK
    tags = set(locale.ordinal_form.tags) | {"other"}
    return tuple(c for c in CATEGORIES if c in tags)
