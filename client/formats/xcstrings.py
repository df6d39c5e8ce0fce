"""Xcode String Catalogs (``.xcstrings``): one JSON file holding every locale.

``read(text, locale)`` gives that locale's strings. Per key of ``strings``: a ``stringUnit``
gives ``Entry.value``; ``variations.plural`` gives ``Entry.plurals`` (one per category);
``substitutions`` (``%#@name@`` in the value) give one more entry each, ``key#name``, with
the substitution's plural forms. ``comment`` is ``Entry.comment``; ``shouldTranslate: false``
makes the entry untranslatable. In the source language a key without a source localization
reads as the key itself, as Xcode does; in another locale a key without a localization is
absent. Localizations with other variations (``device``...) read as untranslatable entries
(their source text) and are never rewritten.

``write`` merges one locale into ``existing`` (the whole catalog; the source text when there
is none) and keeps every other locale untouched: each translated entry becomes
``{"stringUnit": {"state": "translated", "value": ...}}`` or plural variations with exactly
the target's CLDR categories (``localization.plurals``; a missing one takes ``other``'s
text), substitutions keeping the source's ``argNum`` and ``formatSpecifier``. A translatable
key the catalog lacks loses that locale's localization; a key the source no longer has is
removed from the file. Writing the source language changes only values that differ.

Layout: Xcode's JSON exactly: two-space indent, ``" : "``, non-ASCII and ``/`` unescaped, an
empty object as ``{`` blank line ``}``, no newline at the end (a file that has one keeps it).
Key order: existing keys keep their order (Xcode's), so an unchanged file round-trips byte
for byte; a new key is inserted where Xcode's ordering puts it. Xcode sorts like Finder
(``localizedStandardCompare``: case-insensitive, digits by value, punctuation before digits
before letters); this module approximates it with the CLDR root order of ASCII punctuation,
accents ignored first, lowercase before uppercase on ties: exact for locale codes and plural
categories, close for other keys.
"""

from __future__ import annotations

import copy
import json
import re
import unicodedata
from typing import Any

from client.formats.model import Catalog, Entry, FileFormat, FormatError, one_line, same_locale
from localization.plurals import CATEGORIES, plural_categories

# CLDR root collation order of ASCII punctuation and symbols (all before digits and letters)
_PUNCTUATION = "_-,;:!?.'\"()[]{}@*/\\&#%`^+<=>|~$"
_PUNCTUATION_RANK = {c: i for i, c in enumerate(_PUNCTUATION)}


def xcode_sort_key(text: str) -> tuple[Any, ...]:
    """An approximation of Xcode's (Finder's) order of catalog keys."""
    primary: list[tuple[int, Any]] = []
    for run in re.findall(r"\d+|\D", text):
        if run.isdigit():
            primary.append((2, int(run)))
            continue
        base = unicodedata.normalize("NFKD", run)
        base = "".join(c for c in base if not unicodedata.combining(c)).casefold() or run
        for c in base:
            if c.isspace() or unicodedata.category(c).startswith("C"):
                primary.append((0, 0))
            elif c in _PUNCTUATION_RANK:
                primary.append((1, _PUNCTUATION_RANK[c]))
            elif not c.isalnum():
                primary.append((1, len(_PUNCTUATION) + ord(c)))
            else:
                primary.append((3, c))
    secondary = unicodedata.normalize("NFD", text).casefold()  # accents, case ignored
    tertiary = tuple(c.isupper() for c in text)  # lowercase first
    return tuple(primary), secondary, tertiary, text


def _insert_sorted(mapping: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    """``mapping`` with ``key`` set: in place if present, else where Xcode's order puts it."""
    if key in mapping:
        mapping[key] = value
        return mapping
    items = list(mapping.items())
    position = len(items)
    for index, (current, _) in enumerate(items):
        if xcode_sort_key(current) > xcode_sort_key(key):
            position = index
            break
    items.insert(position, (key, value))
    return dict(items)


def dumps(value: Any, indent: int = 0) -> str:
    """JSON in Xcode's style."""
    pad = "  " * (indent + 1)
    if isinstance(value, dict):
        if not value:
            return "{\n\n" + "  " * indent + "}"
        items = (f"{pad}{_string(k)} : {dumps(v, indent + 1)}" for k, v in value.items())
        return "{\n" + ",\n".join(items) + "\n" + "  " * indent + "}"
    if isinstance(value, list):
        if not value:
            return "[\n\n" + "  " * indent + "]"
        return (
            "[\n"
            + ",\n".join(pad + dumps(v, indent + 1) for v in value)
            + "\n"
            + "  " * indent
            + "]"
        )
    if isinstance(value, str):
        return _string(value)
    return json.dumps(value)


def _string(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _unit(value: str) -> dict[str, Any]:
    return {"stringUnit": {"state": "translated", "value": value}}


def _plural_forms(variations: Any) -> dict[str, str] | None:
    """The plural forms of ``variations`` in CLDR order, None when it holds anything else."""
    if not isinstance(variations, dict) or set(variations) != {"plural"}:
        return None
    plural = variations["plural"]
    if not isinstance(plural, dict):
        return None
    forms = {}
    for category, unit in plural.items():
        value = unit.get("stringUnit", {}).get("value") if isinstance(unit, dict) else None
        if category not in CATEGORIES or not isinstance(value, str):
            return None
        forms[category] = value
    return {category: forms[category] for category in CATEGORIES if category in forms}


def _plural_variations(forms: dict[str, str], locale: str) -> dict[str, Any]:
    fallback = forms.get("other", next(iter(forms.values()), ""))
    categories = sorted(plural_categories(locale))
    return {"plural": {c: _unit(forms.get(c, fallback)) for c in categories}}


class XcStrings(FileFormat):
    name = "xcstrings"
    multi_locale = True

    def read(self, text: str, locale: str) -> Catalog:
        data = _load(text)
        source_language = data["sourceLanguage"]
        is_source = same_locale(locale, source_language)
        entries: list[Entry] = []
        for key, item in data["strings"].items():
            entries.extend(_entries(key, item, locale, source_language, is_source))
        meta = {"sourceLanguage": source_language, "version": data.get("version")}
        return Catalog(locale=locale, entries=entries, meta=meta)

    def write(
        self,
        catalog: Catalog,
        *,
        locale: str,
        source_locale: str,
        source_text: str,
        existing: str | None,
    ) -> str:
        source = _load(source_text)
        data = _load(existing) if existing is not None else copy.deepcopy(source)
        source_language = source["sourceLanguage"]
        is_source = same_locale(locale, source_language)
        strings: dict[str, Any] = {}
        for key, item in data["strings"].items():
            if key in source["strings"]:
                strings[key] = item
        for key, item in source["strings"].items():
            if key not in strings:
                strings = _insert_sorted(strings, key, copy.deepcopy(item))
        by_key = catalog.by_key()
        for key, item in strings.items():
            source_item = source["strings"][key]
            shape = _entries(key, source_item, source_language, source_language, True)
            if any(not entry.translatable for entry in shape):
                continue
            wanted = {entry.key: by_key.get(entry.key) for entry in shape}
            if is_source:
                _write_source(key, item, locale, shape, wanted)
                continue
            localizations = item.get("localizations")
            if not isinstance(localizations, dict):
                localizations = {}
            if any(entry is None for entry in wanted.values()):
                if locale in localizations:
                    del localizations[locale]
                    if not localizations:
                        del item["localizations"]
                continue
            built = _build(key, source_item, source_language, locale, wanted)
            if localizations.get(locale) != built:
                item["localizations"] = _insert_sorted(localizations, locale, built)
        data["strings"] = strings
        base = existing if existing is not None else source_text
        return dumps(data) + base[len(base.rstrip()) :]  # Xcode ends at "}"; keep any newline


def _load(text: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, TypeError) as error:
        raise FormatError(f"xcstrings: not valid JSON: {one_line(error)}") from None
    if not isinstance(data, dict):
        raise FormatError("xcstrings: the top level is not an object")
    if not isinstance(data.get("sourceLanguage"), str):
        raise FormatError("xcstrings: no sourceLanguage")
    strings = data.get("strings")
    if not isinstance(strings, dict):
        raise FormatError("xcstrings: no strings object")
    for key, item in strings.items():
        if not isinstance(item, dict):
            raise FormatError(f"xcstrings: the string {key!r} is not an object")
        localizations = item.get("localizations", {})
        if not isinstance(localizations, dict) or not all(
            isinstance(value, dict) for value in localizations.values()
        ):
            raise FormatError(f"xcstrings: the localizations of {key!r} are not objects")
    return data


def _entries(
    key: str, item: dict[str, Any], locale: str, source_language: str, is_source: bool
) -> list[Entry]:
    comment = item.get("comment") if isinstance(item.get("comment"), str) else None
    translatable = item.get("shouldTranslate", True) is not False
    localizations = item.get("localizations") or {}
    localization = next(
        (value for name, value in localizations.items() if same_locale(name, locale)), None
    )
    if localization is None:
        if is_source:
            return [Entry(key, value=key, comment=comment, translatable=translatable)]
        # another locale: absent, unless the key is untranslatable (then its source text)
        in_source = _entries(key, item, source_language, source_language, True)
        return in_source if any(not entry.translatable for entry in in_source) else []
    entries: list[Entry] = []
    unit = localization.get("stringUnit")
    variations = localization.get("variations")
    extra = set(localization) - {"stringUnit", "variations", "substitutions"}
    if isinstance(unit, dict) and isinstance(unit.get("value"), str) and not extra:
        entries.append(Entry(key, value=unit["value"], comment=comment, translatable=translatable))
    elif variations is not None and _plural_forms(variations) is not None and not extra:
        forms = _plural_forms(variations)
        entries.append(Entry(key, plurals=forms, comment=comment, translatable=translatable))
    else:
        return [_unsupported(key, item, comment, source_language)]
    substitutions = localization.get("substitutions") or {}
    if not isinstance(substitutions, dict):
        return [_unsupported(key, item, comment, source_language)]
    for name, substitution in substitutions.items():
        forms = _plural_forms(substitution.get("variations"))
        if forms is None:
            return [_unsupported(key, item, comment, source_language)]
        entries.append(Entry(f"{key}#{name}", plurals=forms, translatable=translatable))
    return entries


def _unsupported(key: str, item: dict[str, Any], comment: str | None, source: str) -> Entry:
    unit = (item.get("localizations") or {}).get(source, {}).get("stringUnit", {})
    value = unit.get("value") if isinstance(unit, dict) else None
    return Entry(
        key,
        value=value if isinstance(value, str) else key,
        comment=comment,
        translatable=False,
        meta={"unsupported": True},
    )


def _build(
    key: str,
    source_item: dict[str, Any],
    source_language: str,
    locale: str,
    wanted: dict[str, Entry | None],
) -> dict[str, Any]:
    entry = wanted[key]
    assert entry is not None
    built: dict[str, Any] = {}
    source_localization = (source_item.get("localizations") or {}).get(source_language) or {}
    substitutions = {}
    for name, substitution in (source_localization.get("substitutions") or {}).items():
        sub_entry = wanted.get(f"{key}#{name}")
        if sub_entry is None:
            continue
        kept = {k: v for k, v in substitution.items() if k != "variations"}
        forms = sub_entry.plurals or {"other": sub_entry.value or ""}
        kept["variations"] = _plural_variations(forms, locale)
        substitutions[name] = dict(sorted(kept.items()))
    if entry.plurals is not None:
        built["variations"] = _plural_variations(entry.plurals, locale)
    else:
        built.update(_unit(entry.value or ""))
    if substitutions:
        built["substitutions"] = substitutions
    return dict(sorted(built.items()))


def _write_source(
    key: str,
    item: dict[str, Any],
    locale: str,
    current: list[Entry],
    wanted: dict[str, Entry | None],
) -> None:
    """The source language: change only the values that differ."""
    localizations = item.get("localizations") or {}
    name = next((n for n in localizations if same_locale(n, locale)), None)
    for entry in current:
        new = wanted.get(entry.key)
        if new is None or new.text() == entry.text():
            continue
        if name is None:
            localizations = item["localizations"] = _insert_sorted(localizations, locale, {})
            name = locale
        localization = localizations[name]
        if entry.key == key:
            if new.plurals is not None:
                localization.pop("stringUnit", None)
                localization["variations"] = {
                    "plural": {c: _unit(v) for c, v in sorted(new.plurals.items())}
                }
            else:
                localization.pop("variations", None)
                unit = localization.setdefault("stringUnit", {"state": "translated"})
                unit["value"] = new.value or ""
                localizations[name] = dict(sorted(localization.items()))
        else:
            substitution = localization["substitutions"][entry.key[len(key) + 1 :]]
            substitution["variations"] = {
                "plural": {c: _unit(v) for c, v in sorted((new.plurals or {}).items())}
            }


FORMAT = XcStrings()
