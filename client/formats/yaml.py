"""YAML locale files, Rails style (``en: {...}``) or plain, through ruamel.yaml's round trip.

A file whose root is a single key naming its locale (``en:``, ``pt-BR:``, ``en_US:``) is Rails
style: that key is the locale marker, not part of the keys, and a target is written under its
own locale (``de:``, spelled with the source's separator). Any other root mapping is plain YAML.

Keys: the path of mapping keys below the root (or the locale key) joined with ``.``, sequence
items by index (``date.day_names.0``); a file where two paths give the same key is refused. A
mapping whose keys are all CLDR categories (``one``, ``other``...), ``other`` among them, and
whose values are strings, is one plural entry (a lone ``other:`` only in a locale that has no
other category, Japanese); a target gets exactly ``plural_categories(target)`` (the source
locale's own file keeps the categories it has, ``zero`` in English say). Strings are
translatable except the empty string and Ruby symbols (``:year`` in ``date.order``); numbers,
booleans, null and dates are entries that are not translatable and that a target keeps. The
comment lines directly above a key (no blank line between, not indented deeper than the key)
become ``Entry.comment``. An ``*alias`` of a mapping or sequence has no keys of its own (they are
its ``&anchor``'s, as are those a ``<<`` merge brings) and is written as it is.

A target is the source document, edited in place: its comments, key order, quoting style of
each value, indentation and null spelling stay. A source key the catalog lacks goes with the
comment lines directly above it (other comments stay where they are); a mapping that loses all
its keys goes too; a sequence keeps its length, with null for an item the catalog lacks. New
plural categories come before ``other``, quoted as it is; a new plain text that YAML 1.1 readers
(Rails, PyYAML) would take for another type (``No``, ``yes``, ``1:20``) is quoted.

Reader and writer share what a node means (``client.formats.yaml_nodes``); a target first cuts
the lines of the keys it drops out of the source text (``client.formats.yaml_pruning``), then
puts the texts into the document and writes it out (``client.formats.yaml_output``).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from client.formats.model import Catalog, Entry, FileFormat, FormatError, refuse_duplicate_keys
from client.formats.yaml_nodes import (
    comment_lines,
    is_alias,
    is_flow,
    is_plural,
    is_translatable,
    join_key,
    load_yaml,
    locale_root,
    own_items,
)
from client.formats.yaml_output import apply_texts, dump, rename_root, source_indents
from client.formats.yaml_pruning import Plan, plan_drops, pruned
from localization.plurals import CATEGORIES, plural_categories


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


class YamlFormat(FileFormat):
    name = "yaml"

    def read(self, text: str, locale: str) -> Catalog:
        data = load_yaml(text)
        catalog = Catalog(locale)
        if data is None:
            return catalog
        if not isinstance(data, CommentedMap):
            raise FormatError("a YAML locale file must hold a mapping at its root")
        _, base = locale_root(data, locale)
        lines = text.splitlines()
        add = catalog.entries.append

        def comment(node: CommentedMap, key: Any) -> str | None:
            if is_flow(node):
                return None
            line, col = node.lc.key(key)
            found = [lines[n].strip()[1:] for n in comment_lines(lines, line, col)]
            return "\n".join(c[1:] if c.startswith(" ") else c for c in found) or None

        met: set[int] = set()

        def walk(node: Any, prefix: str) -> None:
            for key, value in own_items(node):
                if is_alias(value, met):
                    continue
                path = join_key(prefix, key)
                note = comment(node, key) if isinstance(node, CommentedMap) else None
                if is_plural(value, locale):
                    forms = {c: str(value[c]) for c in CATEGORIES if c in value}
                    add(Entry(path, plurals=forms, comment=note))
                elif isinstance(value, (CommentedMap, CommentedSeq)):
                    walk(value, path)
                elif isinstance(value, str):
                    translatable = is_translatable(value)
                    add(Entry(path, value=str(value), comment=note, translatable=translatable))
                else:
                    add(Entry(path, value=_scalar(value), comment=note, translatable=False))

        if isinstance(base, (CommentedMap, CommentedSeq)):
            walk(base, "")
        refuse_duplicate_keys(catalog.entries, "YAML")
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
        text = source_text.replace("\r\n", "\n")
        source = load_yaml(text, "YAML source")
        if source is None:
            return source_text
        if not isinstance(source, CommentedMap):
            raise FormatError("a YAML locale file must hold a mapping at its root")
        entries = {e.key: e for e in catalog.entries if e.translatable}
        # the source locale's own file keeps each plural's categories as they are
        categories = plural_categories(locale) if locale != source_locale else None
        lines = text.split("\n")
        root_key, base = locale_root(source, source_locale)
        indents = source_indents(source, lines)
        plan = Plan()
        plan_drops(base, "", entries, categories, source_locale, lines, plan, set())
        document = pruned(source, lines, plan, source_locale)
        _, body = locale_root(document, source_locale)
        if isinstance(body, (CommentedMap, CommentedSeq)):
            apply_texts(body, "", entries, categories, plan.plurals, set())
        if root_key is not None and locale != source_locale:
            rename_root(document, root_key, locale)
        return dump(document, indents, text, "\r\n" in source_text)


FORMAT = YamlFormat()
