"""The one model every file format reads into and writes from: an ordered catalog of entries,
each a key with a text or plural forms, a comment and a context.

A format is a reader and a writer over this model (``FileFormat``). The client never looks
inside a file: it compares catalogs, sends the entries' texts, and gives a format the source
file and the translated catalog to write a target.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

from localization.plurals import plural_categories


class FormatError(ValueError):
    """A file that its format cannot read (the message names the file's problem, one line)."""


def one_line(message: object) -> str:
    """A message on one line, as ``FormatError`` wants it."""
    return " ".join(str(message).split())


def same_locale(a: str | None, b: str | None) -> bool:
    """Whether two locale tags are the same, whatever their case and separator (``pt_BR``,
    ``pt-br``)."""
    if a is None or b is None:
        return False
    return a.replace("_", "-").lower() == b.replace("_", "-").lower()


@dataclass
class Entry:
    """One translatable unit.

    ``key`` is unique within a catalog and stable across locales (the JSON path, the
    ``msgctxt`` + ``msgid`` of a PO entry, the Android ``name``...). Exactly one of ``value``
    and ``plurals`` is set: ``plurals`` maps CLDR categories (``one``, ``few``, ``other``...)
    and ICU exact matches (``=0``) to texts. ``comment`` is what the file tells a translator
    (PO ``#.``, ARB ``description``, XLIFF ``note``); it reaches the model as a hint.
    ``context`` disambiguates (PO ``msgctxt``). ``translatable`` is false for entries kept
    verbatim (Android ``translatable="false"``). ``meta`` carries what the format needs to
    write the entry back and is never sent.
    """

    key: str
    value: str | None = None
    plurals: dict[str, str] | None = None
    comment: str | None = None
    context: str | None = None
    translatable: bool = True
    meta: dict[str, Any] = field(default_factory=dict)

    def text(self) -> str | dict[str, str]:
        """The translatable content: the text, or the plural forms."""
        if self.plurals is not None:
            return dict(self.plurals)
        return self.value or ""

    def single(self) -> str:
        """The entry as one text, for a place that holds no plural forms: the value, or the
        ``other`` form (else the first)."""
        if self.value is not None:
            return self.value
        forms = self.plurals or {}
        return forms.get("other", next(iter(forms.values()), ""))

    def forms(self, categories: tuple[str, ...]) -> dict[str, str]:
        """The entry's text for each of ``categories``; ``other`` stands in for a form the
        entry lacks (and a plain value for every form)."""
        if self.plurals is None:
            return dict.fromkeys(categories, self.value or "")
        fallback = self.single()
        return {category: self.plurals.get(category, fallback) for category in categories}


def refuse_duplicate_keys(entries: list[Entry], what: str) -> None:
    """``FormatError`` when two entries have the same key: a file in which two paths give
    one key (``{"a.b": .., "a": {"b": ..}}``), whose texts a catalog could not tell apart."""
    seen: set[str] = set()
    for entry in entries:
        if entry.key in seen:
            raise FormatError(f"two {what} values have the same key {entry.key!r}")
        seen.add(entry.key)


@dataclass
class Catalog:
    """The entries of one file (or of one locale's column of a multi-locale file), in file
    order. ``meta`` is format-wide (a PO header, the XLIFF version...)."""

    locale: str
    entries: list[Entry] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    def by_key(self) -> dict[str, Entry]:
        return {entry.key: entry for entry in self.entries}

    def translatable(self) -> Catalog:
        """The same catalog without its untranslatable entries."""
        return Catalog(self.locale, [e for e in self.entries if e.translatable], self.meta)


class FileFormat(ABC):
    """A reader and a writer for one file format.

    Laws every format keeps (the format tests check them):

    - ``write(read(src, s), locale=s, source_locale=s, source_text=src, existing=src) == src``
      for a file in the platform's usual style: an unchanged file round-trips byte for byte.
    - ``read(write(catalog, ...), locale)`` gives back the catalog's keys and texts.
    - A written target keeps the source's key order, comments and untranslatable entries,
      carries the platform's locale markers, and has exactly the plural forms of its locale
      (``localization.plurals``).
    """

    name: ClassVar[str]
    # Whether one file holds every locale (csv, xcstrings): then the path has no [locale] and
    # ``existing`` is the whole file, into which ``write`` merges one locale.
    multi_locale: ClassVar[bool] = False

    def path_locale(self, locale: str) -> str:
        """How this format's platform spells a BCP-47 locale in a file path (what ``[locale]``
        becomes): the tag itself unless the platform differs (Android ``pt-rBR``)."""
        return locale

    def plural_forms(self, locale: str) -> tuple[str, ...]:
        """The plural categories a file of this format holds for ``locale``: the language's
        CLDR categories, unless the format numbers its forms (gettext)."""
        return plural_categories(locale)

    def read_source(self, text: str, locale: str) -> Catalog:
        """The catalog of the source file: ``read`` unless the format keeps its source texts
        apart from translations (gettext: ``msgid``)."""
        return self.read(text, locale)

    @abstractmethod
    def read(self, text: str, locale: str) -> Catalog:
        """The catalog of ``locale`` in this file's text. Raises ``FormatError``."""

    @abstractmethod
    def write(
        self,
        catalog: Catalog,
        *,
        locale: str,
        source_locale: str,
        source_text: str,
        existing: str | None,
    ) -> str:
        """The text of ``locale``'s file holding ``catalog``, shaped after the source file's
        text (order, comments, untranslatable entries, metadata). ``existing`` is the current
        text of the file being written, if any. ``catalog`` holds only translatable entries
        with their final texts; entries the source has and the catalog lacks are left out."""
