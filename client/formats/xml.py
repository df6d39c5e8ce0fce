"""Safe XML for the XML formats (XLIFF, Android strings), read and written with lxml.

Byte for byte: the text before and after the root element (XML declaration, comments) and
the root's start tag are kept verbatim (an attribute set by the write, such as XLIFF's
``trgLang``, is edited into that tag); the rest is serialized by lxml, so a file in lxml's
spelling (double-quoted attributes, ``&lt;``/``&gt;``/``&amp;`` escapes, ``<empty/>``)
round-trips unchanged.

Safety: documents are parsed with ``resolve_entities=False, no_network=True``, no DTD loading,
and refused (``FormatError``) when they declare entities: an external entity or a
billion-laughs DTD is never expanded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from lxml import etree

from client.formats.model import FormatError, one_line

_MISC = r"(?:\s+|<!--(?:(?!-->).)*-->|<\?(?:(?!\?>).)*\?>)"
_PROLOG = re.compile(
    r"\A\ufeff?(?:<\?xml\s(?:(?!\?>).)*\?>)?"
    rf"(?:{_MISC}|<!DOCTYPE\s[^\[>]*(?:\[(?:(?!\]\s*>).)*\])?\s*>)*",
    re.S,
)
_EPILOG = re.compile(rf"{_MISC}*\Z", re.S)
_XML_DECL = re.compile(r"\A\ufeff?<\?xml\s(?:(?!\?>).)*\?>", re.S)


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


def set_text(element: Any, text: str, what: str, *, cdata: bool = False) -> None:
    """Replace the content of ``element`` by plain ``text`` (as a CDATA section with
    ``cdata``)."""
    for child in list(element):
        element.remove(child)
    try:
        element.text = etree.CDATA(text) if cdata else text
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
