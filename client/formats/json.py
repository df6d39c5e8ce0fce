"""Nested JSON locale files (i18next, vue-i18n, react-intl and most web stacks).

Keys: the path of object keys from the root joined with ``.`` (``home.title``); an array item
adds its index (``steps.0``). A flat file whose keys already contain dots reads the same way; a
file where a nested path and a dotted key give the same key (``{"a.b": .., "a": {"b": ..}}``)
is refused.

Plurals follow i18next v4: string siblings ``x_one``, ``x_other`` (any of ``_zero _one _two
_few _many _other``, ``_other`` present) are one entry ``x`` with ``plurals``. A lone ``x_other``
is a plural only in a locale whose sole category is ``other`` (Japanese); ``x_ordinal_*`` keys
and groups whose base ``x`` is itself a sibling key stay plain strings. A target gets exactly
``plural_categories(target)`` suffixes, at the place of the source's group (the source locale's
own file keeps the suffixes it has, ``_zero`` in English say).

Strings are translatable, except the empty string; numbers, booleans and null are entries that
are not translatable, and a target keeps them from the source. A target follows the source's
shape: its key order, indentation (two or four spaces, a tab, or none), separators, escaping of
non-ASCII, line endings and final newline (a layout ``json.dumps`` does not produce, such as an
array on one line in an indented file, is written in the file's indentation). A source key the
catalog lacks is left out (an array keeps its length: the item becomes null, which i18next
treats as missing), and an object or array that loses all its strings goes with them. When the
target file already holds exactly what would be written, its text is kept as it is.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from client.formats.model import Catalog, Entry, FileFormat, FormatError, refuse_duplicate_keys
from localization.plurals import CATEGORIES, plural_categories

BOM = "\ufeff"


# --- text <-> data, keeping the source's style ------------------------------------------------


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise FormatError(f"duplicate key {key!r} in a JSON object")
        out[key] = value
    return out


def parse(text: str, what: str = "JSON") -> Any:
    """The data of a JSON text (an optional BOM allowed); ``FormatError`` if it is not JSON or
    an object repeats a key."""
    try:
        return json.loads(text.removeprefix(BOM), object_pairs_hook=_unique_pairs)
    except json.JSONDecodeError as exc:
        raise FormatError(
            f"invalid {what}: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from None
    except RecursionError:
        raise FormatError(f"invalid {what}: nested too deeply") from None


@dataclass(frozen=True)
class JsonStyle:
    """How a JSON file is laid out, so that a file written after it looks the same."""

    indent: str | None = "  "
    separators: tuple[str, str] = (",", ": ")
    ensure_ascii: bool = False
    newline: str = "\n"
    final_newline: bool = True
    bom: bool = False

    def dump(self, data: Any) -> str:
        text = json.dumps(
            data, indent=self.indent, separators=self.separators, ensure_ascii=self.ensure_ascii
        )
        if self.final_newline:
            text += "\n"
        if self.newline != "\n":
            text = text.replace("\n", self.newline)
        return (BOM if self.bom else "") + text


def detect_style(text: str, data: Any) -> JsonStyle:
    """The layout of ``text`` (which holds ``data``): the one ``json.dumps`` reproduces exactly
    if there is one, else the closest (its first indentation, escaping if it escapes)."""
    bom = text.startswith(BOM)
    body = text.removeprefix(BOM)
    newline = "\r\n" if "\r\n" in body else "\n"
    body = body.replace("\r\n", "\n")
    final_newline = body.endswith("\n")
    core = body.rstrip("\n") if final_newline else body
    indent: str | None = None
    for line in core.split("\n")[1:]:
        stripped = line.lstrip(" \t")
        if stripped and stripped != line:
            indent = line[: len(line) - len(stripped)]
            break
    candidates: list[tuple[str | None, tuple[str, str]]] = (
        [(indent, (",", ": "))] if indent else [(None, (",", ":")), (None, (", ", ": "))]
    )
    for ensure_ascii in (False, True):
        for ind, seps in candidates:
            style = JsonStyle(ind, seps, ensure_ascii, newline, final_newline, bom)
            if json.dumps(data, indent=ind, separators=seps, ensure_ascii=ensure_ascii) == core:
                return style
    escapes = "\\u" in core and all(ord(c) < 128 for c in core)
    return JsonStyle(indent, candidates[0][1], escapes, newline, final_newline, bom)


def same_data(a: Any, b: Any) -> bool:
    """Whether two JSON values are equal, key order included."""
    return json.dumps(a, ensure_ascii=False) == json.dumps(b, ensure_ascii=False)


def unchanged_text(existing: str | None, data: Any) -> str | None:
    """``existing`` if it already holds exactly ``data`` (so it is kept byte for byte)."""
    if not existing:
        return None
    try:
        return existing if same_data(parse(existing), data) else None
    except FormatError:
        return None


# --- the format -------------------------------------------------------------------------------


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def plural_groups(node: dict[str, Any], locale: str) -> dict[str, dict[str, str]]:
    """The i18next plural groups among an object's keys: base -> {category: member key}."""
    found: dict[str, dict[str, str]] = {}
    for key, value in node.items():
        base, sep, cat = key.rpartition("_")
        if sep and base and cat in CATEGORIES and isinstance(value, str):
            found.setdefault(base, {})[cat] = key
    lone_other = plural_categories(locale) == ("other",)
    return {
        base: members
        for base, members in found.items()
        if "other" in members
        and base not in node
        and not base.endswith("_ordinal")
        and (len(members) > 1 or lone_other)
    }


class JsonFormat(FileFormat):
    name = "json"

    def read(self, text: str, locale: str) -> Catalog:
        data = parse(text)
        if not isinstance(data, dict):
            raise FormatError("a JSON locale file must hold an object at its root")
        catalog = Catalog(locale)
        add = catalog.entries.append

        def walk(node: Any, prefix: str) -> None:
            if isinstance(node, dict):
                groups = plural_groups(node, locale)
                members = {m: base for base, ms in groups.items() for m in ms.values()}
                for key, value in node.items():
                    if key in members:
                        base = members[key]
                        if next(iter(groups[base].values())) == key:
                            group = groups[base]
                            forms = {c: node[group[c]] for c in CATEGORIES if c in group}
                            add(Entry(_join(prefix, base), plurals=forms))
                        continue
                    walk(value, _join(prefix, key))
            elif isinstance(node, list):
                for index, value in enumerate(node):
                    walk(value, _join(prefix, str(index)))
            elif isinstance(node, str):
                add(Entry(prefix, value=node, translatable=node != ""))
            else:
                add(Entry(prefix, value=json.dumps(node), translatable=False))

        walk(data, "")
        refuse_duplicate_keys(catalog.entries, "JSON")
        return catalog

    def write(
        self,
        catalog: Catalog,
        *,
        locale: str,
        source_locale: str,
        source_text: str,
        existing: str | None,
    ) -> str:
        self.read(source_text, source_locale)  # refuses what a reader refuses
        source = parse(source_text, "JSON source")
        entries = {e.key: e for e in catalog.entries if e.translatable}
        # the source locale's own file keeps each group's categories as they are
        categories = plural_categories(locale) if locale != source_locale else None
        drop = object()

        def build(node: Any, prefix: str) -> Any:
            if isinstance(node, dict):
                if not node:
                    return {}
                groups = plural_groups(node, source_locale)
                members = {m: base for base, ms in groups.items() for m in ms.values()}
                out: dict[str, Any] = {}
                done: set[str] = set()
                for key, value in node.items():
                    if key in members:
                        base = members[key]
                        entry = entries.get(_join(prefix, base))
                        if base not in done and entry is not None:
                            cats = categories or tuple(groups[base])
                            for cat, text in entry.forms(cats).items():
                                out[f"{base}_{cat}"] = text
                        done.add(base)
                        continue
                    child = build(value, _join(prefix, key))
                    if child is not drop:
                        out[key] = child
                return out or drop
            if isinstance(node, list):
                if not node:
                    return []
                items = [build(value, _join(prefix, str(i))) for i, value in enumerate(node)]
                if all(item is drop for item in items):
                    return drop
                return [None if item is drop else item for item in items]
            if isinstance(node, str) and node:
                entry = entries.get(prefix)
                return drop if entry is None else entry.single()
            return node

        data = build(source, "")
        if data is drop:
            data = {}
        kept = unchanged_text(existing, data)
        if kept is not None:
            return kept
        return detect_style(source_text, source).dump(data)


FORMAT = JsonFormat()
