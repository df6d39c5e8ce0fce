"""Apple ``.stringsdict`` property lists, the plural half of the ``ios-strings`` format
(``client.formats.ios_strings``).

``.stringsdict``: read and written with ``plistlib`` (which refuses entity declarations).
Per top-level key: a ``NSStringLocalizedFormatKey`` and variables; each variable whose
``NSStringFormatSpecTypeKey`` is ``NSStringPluralRuleType`` gives one entry ``key#variable``
with its categories (``zero one two few many other``) as ``Entry.plurals``. The format key is
kept as it is when it is only variable references (``%#@items@``); when it has text of its
own (``%#@files@ in %#@folders@``) it is an entry too, keyed ``key``. A plain string value
is an entry. Other rule types (device or width variants) are untranslatable entries,
copied verbatim into targets. Targets get exactly the target's CLDR categories
(``localization.plurals``; a missing one takes ``other``'s text), after the variable's type
keys; a key with any entry missing from the catalog is left out whole. Key order follows
the source; plistlib writes Xcode's layout (tabs), so a file in Xcode's style round-trips
byte for byte. XML comments inside a ``.stringsdict`` are not kept (plistlib drops them).
"""

from __future__ import annotations

import copy
import plistlib
import re
from typing import Any

from client.formats.model import Catalog, Entry, FormatError
from localization.plurals import CATEGORIES, plural_categories

PLURAL_RULE = "NSStringPluralRuleType"
FORMAT_KEY = "NSStringLocalizedFormatKey"
SPEC_TYPE = "NSStringFormatSpecTypeKey"
_VARIANT_RULES = {"NSStringDeviceSpecificRuleType", "NSStringVariableWidthRuleType"}
_VARIABLE_REF = re.compile(r"%(?:\d+\$)?#@([^@]+)@")


def load_plist(text: str) -> dict[str, Any]:
    try:
        data = plistlib.loads(text.lstrip("\ufeff").encode("utf-8"), fmt=plistlib.FMT_XML)
    except Exception as error:  # plistlib raises several types for bad input
        raise FormatError(f".stringsdict: not a valid property list: {error}") from None
    if not isinstance(data, dict):
        raise FormatError(".stringsdict: the top level is not a <dict>")
    return data


def _plural_variables(value: dict[str, Any]) -> list[str]:
    names = []
    for name, variable in value.items():
        if name == FORMAT_KEY:
            continue
        if isinstance(variable, dict) and variable.get(SPEC_TYPE) == PLURAL_RULE:
            names.append(name)
    return names


def stringsdict_entries(data: dict[str, Any]) -> list[Entry]:
    entries: list[Entry] = []
    for key, value in data.items():
        if isinstance(value, str):
            entries.append(Entry(key, value=value))
            continue
        if isinstance(value, dict) and FORMAT_KEY not in value and set(value) & _VARIANT_RULES:
            # NSStringDeviceSpecificRuleType / NSStringVariableWidthRuleType: kept verbatim
            entries.append(Entry(key, value=key, translatable=False, meta={"raw": True}))
            continue
        if not isinstance(value, dict) or not isinstance(value.get(FORMAT_KEY), str):
            raise FormatError(f".stringsdict: {key!r} has no {FORMAT_KEY} string")
        format_key: str = value[FORMAT_KEY]
        others = [
            name
            for name, variable in value.items()
            if name != FORMAT_KEY and isinstance(variable, dict)
            if variable.get(SPEC_TYPE) != PLURAL_RULE
        ]
        if others:  # device or width variants: kept verbatim
            entries.append(Entry(key, value=format_key, translatable=False, meta={"raw": True}))
            continue
        if _VARIABLE_REF.sub("", format_key).strip():
            entries.append(Entry(key, value=format_key, meta={"format": True}))
        for name in _plural_variables(value):
            variable = value[name]
            plurals = {c: variable[c] for c in CATEGORIES if isinstance(variable.get(c), str)}
            if "other" not in plurals:
                raise FormatError(f".stringsdict: {key!r} variable {name!r} has no 'other'")
            entries.append(Entry(f"{key}#{name}", plurals=plurals))
    return entries


def write_stringsdict(catalog: Catalog, locale: str, source_text: str) -> str:
    data = load_plist(source_text)
    entries = {entry.key: entry for entry in stringsdict_entries(data)}
    by_key = catalog.by_key()
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key in entries and not entries[key].translatable:
            out[key] = copy.deepcopy(value)
            continue
        if isinstance(value, str):
            entry = by_key.get(key)
            if entry is not None and entry.value is not None:
                out[key] = entry.value
            continue
        names = (key, *(f"{key}#{v}" for v in _plural_variables(value)))
        wanted = [name for name in names if name in entries]
        if any(by_key.get(name) is None for name in wanted):
            continue
        written: dict[str, Any] = {}
        for name, variable in value.items():
            if name == FORMAT_KEY:
                format_entry = by_key.get(key) if key in entries else None
                written[name] = format_entry.value if format_entry else variable
                continue
            if not (isinstance(variable, dict) and variable.get(SPEC_TYPE) == PLURAL_RULE):
                written[name] = copy.deepcopy(variable)
                continue
            forms = by_key[f"{key}#{name}"].plurals or {}
            if forms == {c: variable[c] for c in CATEGORIES if c in variable}:
                written[name] = copy.deepcopy(variable)
                continue
            rebuilt = {k: v for k, v in variable.items() if k not in CATEGORIES}
            fallback = forms.get("other", "")
            for category in plural_categories(locale):
                rebuilt[category] = forms.get(category, fallback)
            written[name] = rebuilt
        out[key] = written
    try:
        return plistlib.dumps(out, fmt=plistlib.FMT_XML, sort_keys=False).decode("utf-8")
    except (TypeError, ValueError) as error:
        raise FormatError(f".stringsdict: cannot write: {error}") from None
