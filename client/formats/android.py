"""Android string resources (``res/values/strings.xml``), read and written with lxml.

Keys: ``<string name>`` and ``<plurals name>`` give their name (with ``#<product>`` when a
``product`` attribute tells variants apart); each ``<item>`` of a ``<string-array name>``
gives ``name[0]``, ``name[1]``... ``<plurals>`` items become ``Entry.plurals`` by
``quantity``.

Untranslatable: ``translatable="false"`` (on ``<string>``, ``<plurals>`` or
``<string-array>``) and a ``<string>`` that is a bare resource reference (``@string/x``,
``?attr/y``) read as ``translatable=False``. Following the Android convention they live only
in the default resources: a target (any locale but the source's) leaves them out. A reference
item of a translated ``<string-array>`` is kept as it is, since an array is replaced whole.
A ``<string-array>`` is written only when the catalog has all of its translatable items (a
partial array would shift the others); ``<plurals>`` get exactly the target's CLDR categories
(``localization.plurals``), a missing one taking the text of ``other``.

Comments: a ``<!-- ... -->`` right above an element (no blank line between) is its
``Entry.comment``; comments stay in targets, except those of elements a target leaves out.

Text (``client.formats.android_text``): the entry text is the display text. Reading undoes
Android's escaping (``\\'``, ``\\"``, ``\\n``, ``\\t``, ``\\@``, ``\\?``, ``\\\\``,
``\\uXXXX``), double quotes that keep whitespace, and the whitespace collapsing of unquoted
text, as aapt2 does. Inline markup (``<b>``, ``<xliff:g>``...) is kept as tags: such a string's
text is its inner XML (text XML-escaped, so ``&amp;`` stays ``&amp;``), unescaped text node by
text node. A CDATA string's text is the CDATA content (HTML), unescaped likewise, and is
written back as CDATA. Writing escapes backslashes, both quotes, newlines, tabs and other
control characters (``\\uXXXX``), a leading ``@`` or ``?``, and wraps text in double quotes
where whitespace would be collapsed. A string whose text did not change keeps its original
spelling.

``path_locale``: Android resource qualifiers: ``de``, ``pt-BR`` -> ``pt-rBR``; any tag with a
script, a three-letter language or a numeric region uses the BCP 47 form
(``zh-Hant`` -> ``b+zh+Hant``). ``tools:locale`` on ``<resources>``, when the source has
it, is set to the target's locale. ``existing`` is not needed: a target is always shaped
after the source. Parsing is safe as in every XML format (``client.formats.xml``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from lxml import etree

from client.formats.android_text import read_text, write_text
from client.formats.model import Catalog, Entry, FileFormat, FormatError, same_locale
from client.formats.xml import parse_xml, remove_element
from localization.plurals import CATEGORIES, plural_categories

TOOLS_NS = "http://schemas.android.com/tools"
_REFERENCE = re.compile(r"\A[@?](?:[\w.]+:)?[\w.]+/[\w.]+\Z")

# --- reading --------------------------------------------------------------------------------


@dataclass
class _Node:
    """One entry-bearing element of the file."""

    kind: str  # string | plurals | array-item
    key: str
    element: Any  # the <string>, <plurals> or array <item>
    container: Any  # the top-level element (<string>, <plurals>, <string-array>)
    translatable: bool
    comment: str | None


def _comment_node(element: Any) -> Any | None:
    """The comment right above ``element`` (no blank line between): the one describing it."""
    previous = element.getprevious()
    if previous is not None and previous.tag is etree.Comment:
        if (previous.tail or "").count("\n") <= 1:
            return previous
    return None


def _comment_above(element: Any) -> str | None:
    node = _comment_node(element)
    return None if node is None else " ".join((node.text or "").split()) or None


def _is_reference(element: Any) -> bool:
    """Whether ``element`` holds only a resource reference (``@string/x``, ``?attr/y``)."""
    return len(element) == 0 and bool(_REFERENCE.match((element.text or "").strip()))


def _nodes(root: Any) -> list[_Node]:
    if root.tag != "resources":
        raise FormatError(f"Android: the root element is <{root.tag}>, not <resources>")
    nodes: list[_Node] = []
    seen: set[str] = set()

    def add(node: _Node) -> None:
        if node.key in seen:
            raise FormatError(f"Android: duplicate resource {node.key!r}")
        seen.add(node.key)
        nodes.append(node)

    for element in root:
        if not isinstance(element.tag, str) or element.tag not in (
            "string",
            "plurals",
            "string-array",
        ):
            continue
        name = element.get("name")
        if not name:
            raise FormatError(f"Android: a <{element.tag}> has no name")
        key = name if element.get("product") is None else f"{name}#{element.get('product')}"
        translatable = element.get("translatable", "true") != "false"
        comment = _comment_above(element)
        if element.tag == "string":
            if _is_reference(element):
                translatable = False
            add(_Node("string", key, element, element, translatable, comment))
        elif element.tag == "plurals":
            for item in element:
                if not isinstance(item.tag, str):
                    continue
                quantity = item.get("quantity")
                if item.tag != "item" or quantity not in CATEGORIES:
                    raise FormatError(
                        f"Android: <plurals name={name!r}> has an item with quantity {quantity!r}"
                    )
            add(_Node("plurals", key, element, element, translatable, comment))
        else:
            items = [item for item in element if item.tag == "item"]
            for index, item in enumerate(items):
                item_key = f"{key}[{index}]"
                reference = _is_reference(item)
                add(
                    _Node(
                        "array-item",
                        item_key,
                        item,
                        element,
                        translatable and not reference,
                        comment,
                    )
                )
    return nodes


def _entry(node: _Node) -> Entry:
    if node.kind == "plurals":
        plurals: dict[str, str] = {}
        meta: dict[str, Any] = {}
        for item in node.element:
            if isinstance(item.tag, str):
                plurals[item.get("quantity")], item_meta = read_text(item)
                meta.update(item_meta)
        return Entry(
            node.key,
            plurals=plurals,
            comment=node.comment,
            translatable=node.translatable,
            meta=meta,
        )
    value, meta = read_text(node.element)
    return Entry(
        node.key, value=value, comment=node.comment, translatable=node.translatable, meta=meta
    )


# --- writing --------------------------------------------------------------------------------


def _drop(element: Any) -> None:
    comment = _comment_node(element)
    if comment is not None:
        remove_element(comment)
    remove_element(element)


def _write_plurals(element: Any, forms: dict[str, str], locale: str, meta: dict[str, Any]) -> None:
    items = [item for item in element if isinstance(item.tag, str)]
    indent = element.text if element.text and not element.text.strip() else None
    closing = items[-1].tail if items else None
    for child in list(element):
        element.remove(child)
    element.text = indent
    fallback = forms.get("other", next(iter(forms.values()), ""))
    for category in plural_categories(locale):
        item = etree.SubElement(element, "item", quantity=category)
        write_text(item, forms.get(category, fallback), meta, f"Android plurals {category!r}")
        item.tail = indent
    if len(element):
        element[-1].tail = closing


class Android(FileFormat):
    name = "android"

    def path_locale(self, locale: str) -> str:
        parts = [part for part in re.split(r"[-_]", locale) if part]
        if not parts:
            return locale
        language, rest = parts[0].lower(), parts[1:]
        if not rest and len(language) == 2:
            return language
        if len(rest) == 1 and len(language) == 2 and re.fullmatch(r"[A-Za-z]{2}", rest[0]):
            return f"{language}-r{rest[0].upper()}"
        return "b+" + "+".join([language, *rest])

    def read(self, text: str, locale: str) -> Catalog:
        doc = parse_xml(text, "Android strings.xml")
        entries = [_entry(node) for node in _nodes(doc.root)]
        return Catalog(locale=locale, entries=entries)

    def write(
        self,
        catalog: Catalog,
        *,
        locale: str,
        source_locale: str,
        source_text: str,
        existing: str | None,
    ) -> str:
        doc = parse_xml(source_text, "Android source strings.xml")
        nodes = _nodes(doc.root)
        is_target = not same_locale(locale, source_locale)
        by_key = catalog.by_key()
        if is_target and doc.root.get(f"{{{TOOLS_NS}}}locale") is not None:
            doc.root.set(f"{{{TOOLS_NS}}}locale", locale)
        dropped: set[int] = set()

        def drop(container: Any) -> None:
            if id(container) not in dropped:
                dropped.add(id(container))
                _drop(container)

        arrays: dict[int, list[_Node]] = {}
        for node in nodes:
            if node.kind == "array-item":
                arrays.setdefault(id(node.container), []).append(node)
                continue
            source_entry = _entry(node)
            if not node.translatable:
                if is_target:
                    drop(node.container)
                continue
            entry = by_key.get(node.key)
            if entry is None:
                drop(node.container)
                continue
            what = f"Android resource {node.key!r}"
            if node.kind == "plurals":
                forms = entry.plurals if entry.plurals is not None else {"other": entry.value or ""}
                if source_entry.plurals == forms and not is_target:
                    continue
                _write_plurals(node.element, forms, locale, source_entry.meta)
            else:
                text = entry.value if entry.value is not None else entry.text()
                if not isinstance(text, str):
                    raise FormatError(f"{what}: plural forms for a <string>")
                if text != source_entry.value:
                    write_text(node.element, text, source_entry.meta, what)
        for items in arrays.values():
            container = items[0].container
            if container.get("translatable", "true") == "false":
                if is_target:
                    drop(container)
                continue
            wanted = [node for node in items if node.translatable]
            if any(node.key not in by_key for node in wanted):
                drop(container)
                continue
            for node in wanted:
                source_entry = _entry(node)
                text = by_key[node.key].text()
                if not isinstance(text, str):
                    raise FormatError(f"Android array item {node.key!r}: plural forms")
                if text != source_entry.value:
                    write_text(node.element, text, source_entry.meta, f"item {node.key!r}")
        return doc.text()


FORMAT = Android()
