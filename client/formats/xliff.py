"""XLIFF 1.2 and 2.0, read and written with lxml; also the safe XML helpers of the XML formats.

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

Byte for byte: the text before and after the root element (XML declaration, comments) and
the root's start tag are kept verbatim (an attribute set by the write, such as ``trgLang``,
is edited into that tag); the rest is serialized by lxml, so a file in lxml's spelling
(double-quoted attributes, ``&lt;``/``&gt;``/``&amp;`` escapes, ``<empty/>``) round-trips
unchanged. The same holds for Android files.

Safety: documents are parsed with ``resolve_entities=False, no_network=True``, no DTD loading,
and refused (``FormatError``) when they declare entities: an external entity or a
billion-laughs DTD is never expanded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from lxml import etree

from client.formats.model import Catalog, Entry, FileFormat, FormatError

NS12 = "urn:oasis:names:tc:xliff:document:1.2"
NS20 = "urn:oasis:names:tc:xliff:document:2.0"
_NS1X = {NS12, "urn:oasis:names:tc:xliff:document:1.1", "urn:oasis:names:tc:xliff:document:1.0"}

# --- safe XML, shared by the XML formats ------------------------------------------------------

_MISC = r"(?:\s+|<!--(?:(?!-->).)*-->|<\?(?:(?!\?>).)*\?>)"
_PROLOG = re.compile(
    r"\A\ufeff?(?:<\?xml\s(?:(?!\?>).)*\?>)?"
    rf"(?:{_MISC}|<!DOCTYPE\s[^\[>]*(?:\[(?:(?!\]\s*>).)*\])?\s*>)*",
    re.S,
)
_EPILOG = re.compile(rf"{_MISC}*\Z", re.S)
_XML_DECL = re.compile(r"\A\ufeff?<\?xml\s(?:(?!\?>).)*\?>", re.S)


def one_line(message: object) -> str:
    """A message on one line, as ``FormatError`` wants it."""
    return " ".join(str(message).split())


def _parser() -> Any:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        strip_cdata=False,
        remove_blank_text=False,
        remove_comments=False,
        remove_pis=False,
    )


def _refuse_entities(tree: Any, what: str) -> None:
    dtd = tree.docinfo.internalDTD
    if dtd is not None and any(True for _ in dtd.iterentities()):
        raise FormatError(f"{what}: entity declarations are not allowed")
    if any(True for _ in tree.getroot().iter(etree.Entity)):
        raise FormatError(f"{what}: entity references are not allowed")


_NAME = r"[^\s=/<>\"']+"
_START_TAG = re.compile(rf"<{_NAME}(?:\s+{_NAME}\s*=\s*(?:\"[^\"]*\"|'[^']*'))*\s*/?>")


def _attribute_pattern(qname: str) -> re.Pattern[str]:
    return re.compile(rf"(\s{re.escape(qname)}\s*=\s*)(?:\"[^\"]*\"|'[^']*')")


def _quote(value: str) -> str:
    escaped = value.replace("&", "&amp;").replace("<", "&lt;").replace('"', "&quot;")
    return '"' + escaped.replace("\n", "&#10;").replace("\t", "&#9;") + '"'


@dataclass
class XmlDocument:
    """A parsed document, with the text around its root element kept verbatim, and the
    root's start tag too (lxml would put namespace declarations first): attributes set
    since parsing are edited into it."""

    prolog: str
    root: Any
    epilog: str
    start_tag: str = ""
    attributes: tuple[tuple[str, str], ...] = ()

    def text(self) -> str:
        body = etree.tostring(self.root, encoding="unicode")
        serialized = _START_TAG.match(body)
        start = self._start_tag()
        if serialized and start and start.endswith("/>") == serialized.group().endswith("/>"):
            body = start + body[serialized.end() :]
        return self.prolog + body + self.epilog

    def _start_tag(self) -> str | None:
        """The original start tag with the root's current attributes; None when an
        attribute was removed (then lxml's spelling is used)."""
        if not self.start_tag:
            return None
        before = dict(self.attributes)
        now = list(self.root.attrib.items())
        if any(name not in self.root.attrib for name in before):
            return None
        prefixes = {uri: prefix for prefix, uri in self.root.nsmap.items() if prefix}
        tag = self.start_tag
        previous: str | None = None
        for name, value in now:
            qname = name
            if name.startswith("{"):
                uri, local = name[1:].split("}", 1)
                prefix = "xml" if uri == "http://www.w3.org/XML/1998/namespace" else None
                prefix = prefix or prefixes.get(uri)
                if prefix is None:
                    return None
                qname = f"{prefix}:{local}"
            if name in before:
                if before[name] != value:
                    found = _attribute_pattern(qname).search(tag)
                    if found is None:
                        return None
                    value_at = found.end(1)
                    tag = f"{tag[:value_at]}{_quote(value)}{tag[found.end() :]}"
            else:
                anchor = _attribute_pattern(previous).search(tag) if previous else None
                if anchor is not None:
                    at = anchor.end()
                else:
                    name_end = re.match(rf"<{_NAME}", tag)
                    assert name_end is not None
                    at = name_end.end()
                tag = f"{tag[:at]} {qname}={_quote(value)}{tag[at:]}"
            previous = qname
        return tag


def parse_xml(text: str, what: str) -> XmlDocument:
    """Parse untrusted XML safely; ``FormatError`` with a one-line message on any problem."""
    if not isinstance(text, str):
        raise FormatError(f"{what}: expected text, got {type(text).__name__}")
    declaration = _XML_DECL.match(text)
    # lxml refuses str input with an encoding declaration: blank it, keeping line numbers.
    body = text
    if declaration:
        body = re.sub(r"[^\n]", " ", declaration.group()) + text[declaration.end() :]
    body = body.lstrip("\ufeff")
    try:
        root = etree.fromstring(body, _parser())
    except (etree.XMLSyntaxError, ValueError) as error:
        raise FormatError(f"{what}: not well-formed XML: {one_line(error)}") from None
    _refuse_entities(root.getroottree(), what)
    prolog = _PROLOG.match(text)
    epilog = _EPILOG.search(text)
    if prolog is None or epilog is None:  # pragma: no cover - both patterns match any text
        raise FormatError(f"{what}: cannot find the root element")
    start_tag = _START_TAG.match(text, prolog.end())
    return XmlDocument(
        text[: prolog.end()],
        root,
        text[epilog.start() :],
        start_tag.group() if start_tag else "",
        tuple(root.attrib.items()),
    )


def inner_xml(element: Any) -> str:
    """The serialized content of ``element`` (text and child elements, not its own tags)."""
    serialized = etree.tostring(element, encoding="unicode", with_tail=False)
    start = serialized.index(">") + 1
    if serialized[start - 2] == "/":  # <empty/>
        return ""
    return serialized[start : serialized.rindex("</")]


def set_inner_xml(element: Any, fragment: str, what: str) -> None:
    """Replace the content of ``element`` by the parsed XML ``fragment`` (text and elements,
    in the namespaces in scope at ``element``)."""
    declarations = "".join(
        f' xmlns="{uri}"' if prefix is None else f' xmlns:{prefix}="{uri}"'
        for prefix, uri in element.nsmap.items()
    )
    try:
        wrapper = etree.fromstring(f"<w{declarations}>{fragment}</w>", _parser())
    except (etree.XMLSyntaxError, ValueError) as error:
        raise FormatError(f"{what}: not well-formed markup: {one_line(error)}") from None
    _refuse_entities(wrapper.getroottree(), what)
    for child in list(element):
        element.remove(child)
    element.text = wrapper.text
    for child in list(wrapper):
        element.append(child)


def set_text(element: Any, text: str, what: str) -> None:
    """Replace the content of ``element`` by plain ``text``."""
    for child in list(element):
        element.remove(child)
    try:
        element.text = text
    except ValueError as error:  # control characters XML cannot hold
        raise FormatError(f"{what}: {one_line(error)}") from None


def remove_element(element: Any) -> None:
    """Remove ``element`` with one of the two whitespace runs around it: the one after it
    when it is the last child (that one leads to the parent's closing tag), the one before
    it when it is the first, else the one with more line breaks (a blank line between
    groups survives)."""
    parent = element.getparent()
    previous = element.getprevious()
    before = parent.text if previous is None else previous.tail
    after = element.tail
    if element.getnext() is None:
        kept = after
    elif previous is None:
        kept = before
    else:
        kept = after if (after or "").count("\n") > (before or "").count("\n") else before
    if previous is not None:
        previous.tail = kept
    else:
        parent.text = kept
    parent.remove(element)


def set_attribute_after(element: Any, name: str, value: str, after: str) -> None:
    """Set an attribute; a new one goes right after ``after`` (where people expect it)."""
    if name in element.attrib or after not in element.attrib:
        element.set(name, value)
        return
    items = list(element.attrib.items())
    element.attrib.clear()
    for key, current in items:
        element.set(key, current)
        if key == after:
            element.set(name, value)


def same_locale(a: str | None, b: str | None) -> bool:
    if a is None or b is None:
        return False
    return a.replace("_", "-").lower() == b.replace("_", "-").lower()


# --- XLIFF -----------------------------------------------------------------------------------


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


def _units12(file: Any, ns: str | None, prefix: str) -> list[_Unit]:
    units = []
    for tu in file.iter(_q(ns, "trans-unit")):
        uid = tu.get("id")
        if not uid:
            raise FormatError("XLIFF 1.2: a <trans-unit> has no id")
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
    for unit in file.iter(_q(ns, "unit")):
        uid = unit.get("id")
        if not uid:
            raise FormatError("XLIFF 2.0: a <unit> has no id")
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
