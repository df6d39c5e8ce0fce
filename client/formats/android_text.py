"""How Android spells the text of a resource (``client.formats.android``): aapt2's escapes,
quotes and whitespace collapsing, read and written, in plain text, inline markup (text node
by text node) and CDATA alike."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from typing import Any

from lxml import etree

from client.formats.xml import inner_xml, set_inner_xml, set_text

_WHITESPACE = " \t\n\r"


def unescape(raw: str, *, trim_start: bool = True, trim_end: bool = True) -> str:
    """Android's reading of a resource text node: escapes, quotes, whitespace collapsing."""
    chars: list[tuple[str, bool]] = []  # (character, literal: kept whatever whitespace rules)
    quoted = False
    i = 0
    while i < len(raw):
        c = raw[i]
        if c == "\\" and i + 1 < len(raw):
            n = raw[i + 1]
            i += 2
            if n == "n":
                chars.append(("\n", True))
            elif n == "t":
                chars.append(("\t", True))
            elif n == "u" and re.fullmatch(r"[0-9A-Fa-f]{4}", raw[i : i + 4]):
                chars.append((chr(int(raw[i : i + 4], 16)), True))
                i += 4
            else:  # \' \" \\ \@ \? and any other escaped character stand for themselves
                chars.append((n, True))
            continue
        i += 1
        if c == "\\":  # a lone trailing backslash
            continue
        if c == '"':
            quoted = not quoted
            continue
        chars.append((c, quoted))
    out: list[str] = []
    pending_space = False
    for c, literal in chars:
        if not literal and c in _WHITESPACE:
            pending_space = True
            continue
        if pending_space and (out or not trim_start):
            out.append(" ")
        pending_space = False
        out.append(c)
    if pending_space and not trim_end:
        out.append(" ")
    return "".join(out)


# What a written text escapes: what aapt2 would read otherwise, by name, and control
# characters, surrogates and non-characters as ``\uXXXX``.
_CODED = (*range(0x20), *range(0x7F, 0xA0), *range(0xD800, 0xE000), 0xFFFE, 0xFFFF)
_ESCAPES = {code: f"\\u{code:04x}" for code in _CODED} | str.maketrans(
    {"\\": "\\\\", '"': '\\"', "'": "\\'", "\n": "\\n", "\t": "\\t"}
)


def escape(text: str, *, first: bool = True, last: bool = True) -> str:
    """The Android spelling of ``text`` (inverse of :func:`unescape`)."""
    escaped = text.translate(_ESCAPES)
    if first and escaped[:1] in ("@", "?"):
        escaped = "\\" + escaped
    keep_space = "  " in escaped
    keep_space |= first and escaped[:1] == " "
    keep_space |= last and escaped[-1:] == " "
    return f'"{escaped}"' if keep_space else escaped


def _has_cdata(element: Any) -> bool:
    return len(element) == 0 and "<![CDATA[" in etree.tostring(element, encoding="unicode")


def _text_slots(element: Any) -> list[tuple[Any, str]]:
    """The text nodes of ``element``'s content in document order, as (node, attribute)."""
    slots: list[tuple[Any, str]] = [(element, "text")]
    for child in element:
        slots.extend(_text_slots(child))
        slots.append((child, "tail"))
    return slots


def _respell(element: Any, spell: Callable[[str, bool, bool], str]) -> None:
    """Replace each text node of ``element``'s content (not its own tail) by
    ``spell(text, first, last)``: the first and the last one of a markup string are where
    aapt2's whitespace rules differ."""
    slots = [(node, attr) for node, attr in _text_slots(element) if getattr(node, attr)]
    for index, (node, attr) in enumerate(slots):
        setattr(node, attr, spell(getattr(node, attr), index == 0, index == len(slots) - 1))


def read_text(element: Any) -> tuple[str, dict[str, Any]]:
    """The display text of an element, and how it is spelled (markup, CDATA)."""
    if len(element) == 0:
        meta = {"cdata": True} if _has_cdata(element) else {}
        return unescape(element.text or ""), meta
    clone = copy.deepcopy(element)
    clone.tail = None
    etree.strip_elements(clone, etree.Comment, etree.ProcessingInstruction, with_tail=False)
    _respell(clone, lambda raw, first, last: unescape(raw, trim_start=first, trim_end=last))
    return inner_xml(clone), {"markup": True}


def write_text(element: Any, text: str, meta: dict[str, Any], what: str) -> None:
    """Put ``text`` into ``element`` spelled as its source was (markup, CDATA)."""
    if meta.get("markup"):
        set_inner_xml(element, text, what)
        _respell(element, lambda plain, first, last: escape(plain, first=first, last=last))
        return
    set_text(element, escape(text), what, cdata=bool(meta.get("cdata")))
