"""XLIFF 1.2 and 2.0, read and written with lxml (``client.formats.xml``).

Version: detected on read from the root (namespace ``urn:oasis:names:tc:xliff:document:1.2``
or ``...:2.0``, else the ``version`` attribute); a target is written in the source's version.

Keys: the ``<trans-unit id>`` (1.2) or ``<unit id>`` (2.0); when a document has several
``<file>`` elements, the key is ``<file original>#<id>`` (2.0: ``original``, else the file
``id``), so that units of different files cannot collide. A 2.0 unit with several
``<segment>`` elements gives one entry per segment, ``<id>[0]``, ``<id>[1]``...; its
``<ignorable>`` parts stay as they are.

Which text: ``read(text, locale)`` reads ``<source>`` when ``locale`` is the document's source
language (``source-language`` of each ``<file>`` in 1.2, ``srcLang`` in 2.0) and ``<target>``
otherwise; a unit without a ``<target>`` is then absent (it is not translated yet).
``<note>`` elements (2.0: ``<notes><note>``) join, one per line, into ``Entry.comment``.
``translate="no"`` makes an entry untranslatable; such units stay in targets as the source
has them.

Inline markup (``<g>``, ``<x/>``, ``<bx/>``, ``<ph>``, ``<pc>``, ``<mrk>``...): a unit whose
``<source>`` has child elements is sent as the inner XML of ``<source>``: the tags read as
HTML-like tags (which the server keeps verbatim) and text is XML-escaped (``&amp;``,
``&lt;``). The translated inner XML is parsed back into ``<target>``; text that is not
well-formed there is a ``FormatError`` naming the key. A unit without child elements is
plain text both ways (``Tom & Jerry``, escaped by the serializer).

Targets: the source document with ``target-language`` (1.2, on each ``<file>``) or
``trgLang`` (2.0, on ``<xliff>``) set to the locale, and a ``<target>`` after each
``<source>`` (1.2: ``state="translated"`` on ``<target>``; 2.0: on ``<segment>``). Units the
catalog lacks are left out (with a 1.2 ``<group>`` left empty by that). ``existing`` is not
needed: a target is always shaped after the source.

Byte for byte and safety: as in every XML format (``client.formats.xml``); an attribute the
write sets, such as ``trgLang``, is edited into the root's verbatim start tag.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from lxml import etree

from client.formats.model import Catalog, Entry, FileFormat, FormatError, same_locale
from client.formats.xml import (
    inner_xml,
    parse_xml,
    remove_element,
    set_attribute_after,
    set_inner_xml,
    set_text,
)

NS12 = "urn:oasis:names:tc:xliff:document:1.2"
NS20 = "urn:oasis:names:tc:xliff:document:2.0"
_NS1X = {NS12, "urn:oasis:names:tc:xliff:document:1.1", "urn:oasis:names:tc:xliff:document:1.0"}


@dataclass
class _Unit:
    key: str
    unit: Any  # <trans-unit> (1.2) or <unit> (2.0)
    holder: Any  # what holds <source>/<target>: the trans-unit (1.2) or the <segment> (2.0)
    source: Any
    target: Any | None
    comment: str | None
    translatable: bool


class Xliff(FileFormat):
    name = "xliff"

    def read(self, text: str, locale: str) -> Catalog:
        doc = parse_xml(text, "XLIFF")
        version, ns = _version(doc.root)
        units, source_language = _units(doc.root, version, ns)
        use_target = not same_locale(locale, source_language)
        entries = []
        for unit in units:
            markup = len(unit.source) > 0
            meta: dict[str, Any] = {"markup": markup}
            if use_target and unit.translatable:
                if unit.target is None:
                    continue
                value = _content(unit.target, markup)
            else:
                value = _content(unit.source, markup)
            entries.append(
                Entry(
                    key=unit.key,
                    value=value,
                    comment=unit.comment,
                    translatable=unit.translatable,
                    meta=meta,
                )
            )
        meta = {"version": version, "source_language": source_language}
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
        doc = parse_xml(source_text, "XLIFF source")
        version, ns = _version(doc.root)
        units, source_language = _units(doc.root, version, ns)
        is_target = not same_locale(locale, source_language or source_locale)
        if is_target:
            if version == "2.0":
                set_attribute_after(doc.root, "trgLang", locale, after="srcLang")
            else:
                for file in doc.root.iter(_q(ns, "file")):
                    set_attribute_after(file, "target-language", locale, "source-language")
        by_key = catalog.by_key()
        removed_units: set[int] = set()
        for unit in units:
            if not unit.translatable:
                continue
            entry = by_key.get(unit.key)
            if entry is None or entry.plurals is not None:
                if id(unit.unit) not in removed_units and unit.unit.getparent() is not None:
                    removed_units.add(id(unit.unit))
                    remove_element(unit.unit)
                continue
            markup = len(unit.source) > 0
            text = entry.value or ""
            what = f"XLIFF unit {unit.key!r}"
            if not is_target:
                if _content(unit.source, markup) != text:
                    _fill(unit.source, text, markup, what)
                continue
            target = unit.target
            if target is None:
                target = etree.Element(_q(ns, "target"))
                anchor = unit.source
                following = anchor.getnext()
                if following is not None and following.tag == _q(ns, "seg-source"):
                    anchor = following
                before = anchor.getprevious()
                indent = anchor.getparent().text if before is None else before.tail
                anchor.addnext(target)
                target.tail, anchor.tail = anchor.tail, indent
            _fill(target, text, markup, what)
            state_holder = unit.holder if version == "2.0" else target
            state_holder.set("state", "translated")
        if version != "2.0":
            _drop_empty_groups(doc.root, ns)
        return doc.text()


def _q(ns: str | None, local: str) -> str:
    return f"{{{ns}}}{local}" if ns else local


def _version(root: Any) -> tuple[str, str | None]:
    qname = etree.QName(root)
    if qname.localname != "xliff":
        raise FormatError(f"XLIFF: the root element is <{qname.localname}>, not <xliff>")
    ns = qname.namespace
    declared = root.get("version") or ""
    if ns == NS20 or (ns is None and declared.startswith("2.")):
        return "2.0", ns
    if ns in _NS1X or (ns is None and declared.startswith("1.")):
        return "1.2", ns
    raise FormatError(f"XLIFF: unknown version {declared!r} (namespace {ns!r})")


def _notes(parent: Any, ns: str | None) -> str | None:
    texts = ["".join(note.itertext()).strip() for note in parent.findall(_q(ns, "note"))]
    texts = [text for text in texts if text]
    return "\n".join(texts) or None


def _units(root: Any, version: str, ns: str | None) -> tuple[list[_Unit], str | None]:
    files = root.findall(_q(ns, "file"))
    if not files:
        raise FormatError("XLIFF: no <file> element")
    several = len(files) > 1
    units: list[_Unit] = []
    seen: set[str] = set()
    if version == "2.0":
        source_language = root.get("srcLang")
        if not source_language:
            raise FormatError("XLIFF 2.0: <xliff> has no srcLang")
    else:
        source_language = files[0].get("source-language")
        for file in files:
            if not file.get("source-language"):
                raise FormatError("XLIFF 1.2: a <file> has no source-language")
    for file in files:
        prefix = ""
        if several:
            name = file.get("original") or file.get("id") or ""
            prefix = f"{name}#"
        if version == "2.0":
            found = _units20(file, ns, prefix)
        else:
            found = _units12(file, ns, prefix)
        for unit in found:
            if unit.key in seen:
                raise FormatError(f"XLIFF: duplicate unit id {unit.key!r}")
            seen.add(unit.key)
            units.append(unit)
    return units, source_language


def _with_ids(file: Any, ns: str | None, tag: str, version: str) -> Iterator[tuple[Any, str]]:
    """Each ``<tag>`` element of ``file`` with its id; ``FormatError`` for one without."""
    for element in file.iter(_q(ns, tag)):
        uid = element.get("id")
        if not uid:
            raise FormatError(f"XLIFF {version}: a <{tag}> has no id")
        yield element, uid


def _units12(file: Any, ns: str | None, prefix: str) -> list[_Unit]:
    units = []
    for tu, uid in _with_ids(file, ns, "trans-unit", "1.2"):
        source = tu.find(_q(ns, "source"))
        if source is None:
            raise FormatError(f"XLIFF 1.2: <trans-unit id={uid!r}> has no <source>")
        units.append(
            _Unit(
                key=prefix + uid,
                unit=tu,
                holder=tu,
                source=source,
                target=tu.find(_q(ns, "target")),
                comment=_notes(tu, ns),
                translatable=tu.get("translate", "yes") != "no",
            )
        )
    return units


def _units20(file: Any, ns: str | None, prefix: str) -> list[_Unit]:
    units = []
    for unit, uid in _with_ids(file, ns, "unit", "2.0"):
        notes = unit.find(_q(ns, "notes"))
        comment = _notes(notes, ns) if notes is not None else None
        segments = unit.findall(_q(ns, "segment"))
        if not segments:
            raise FormatError(f"XLIFF 2.0: <unit id={uid!r}> has no <segment>")
        for index, segment in enumerate(segments):
            source = segment.find(_q(ns, "source"))
            if source is None:
                raise FormatError(f"XLIFF 2.0: a segment of unit {uid!r} has no <source>")
            key = uid if len(segments) == 1 else f"{uid}[{index}]"
            units.append(
                _Unit(
                    key=prefix + key,
                    unit=unit,
                    holder=segment,
                    source=source,
                    target=segment.find(_q(ns, "target")),
                    comment=comment,
                    translatable=unit.get("translate", "yes") != "no",
                )
            )
    return units


def _content(element: Any, markup: bool) -> str:
    if markup or len(element) > 0:
        return inner_xml(element)
    return element.text or ""


def _fill(element: Any, text: str, markup: bool, what: str) -> None:
    if markup:
        set_inner_xml(element, text, what)
    else:
        set_text(element, text, what)


def _drop_empty_groups(root: Any, ns: str | None) -> None:
    """XLIFF 1.2 wants at least one unit in a <group>: remove groups emptied by the write."""
    group_tag = _q(ns, "group")
    content = {_q(ns, "trans-unit"), _q(ns, "bin-unit"), group_tag}
    for group in reversed(list(root.iter(group_tag))):
        if not any(child.tag in content for child in group):
            remove_element(group)


FORMAT = Xliff()
