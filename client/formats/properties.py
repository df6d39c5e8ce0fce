"""Java ``.properties`` resource bundles, read as ``java.util.Properties.load`` reads them.

Syntax: ``key=value``, ``key: value`` or ``key value``; ``#`` and ``!`` start a comment line; a
line ending in an odd number of backslashes continues on the next one (whose leading
whitespace is skipped); escapes ``\\t \\n \\r \\f \\uXXXX``, and a backslash before any other
character stands for that character (``\\=``, ``\\:``, ``\\ ``...). ``\\uXXXX`` pairs that
form a UTF-16 surrogate pair read as one character. Keys: the decoded property keys (a key
given twice is refused, though Java would keep the last). The comment lines directly above a
key (no blank line between) become ``Entry.comment``. An empty value is not translatable.

A target is written in UTF-8 (resource bundles since Java 9) with the source's lines: its
comments, blank lines and key order, each key and separator as the source spells them, a value
the catalog does not change kept byte for byte. A new value is escaped as little as Java needs
(backslashes, a leading space, control characters), plus the source's habits: ``\\uXXXX`` for
all non-ASCII text when the source (or else the existing target) writes its non-ASCII so, in
the same hex case; escaped ``= : # !`` when the source's values always escape them;
continuation lines after each ``\\n`` when the source breaks its multi-line values so. A source
key the catalog lacks is left out with its comment.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from client.formats.model import Catalog, Entry, FileFormat, FormatError

WHITESPACE = " \t\f"
ESCAPES = {"t": "\t", "n": "\n", "r": "\r", "f": "\f"}
UNESCAPES = {"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\f": "\\f"}
U_ESCAPE = re.compile(r"(?<!\\)((?:\\\\)*)\\u([0-9A-Fa-f]{4})")


def _odd_backslashes(text: str) -> bool:
    return (len(text) - len(text.rstrip("\\"))) % 2 == 1


def decode(raw: str, line: int) -> str:
    """The text of an escaped key or value (Java's ``loadConvert``)."""
    out: list[str] = []
    i, n = 0, len(raw)
    while i < n:
        ch = raw[i]
        i += 1
        if ch != "\\" or i >= n:
            out.append(ch)
            continue
        ch = raw[i]
        i += 1
        if ch == "u":
            digits = raw[i : i + 4]
            if len(digits) < 4 or any(d not in "0123456789abcdefABCDEF" for d in digits):
                raise FormatError(f"malformed \\uXXXX escape on line {line}")
            out.append(chr(int(digits, 16)))
            i += 4
        else:
            out.append(ESCAPES.get(ch, ch))
    text = "".join(out)
    # join UTF-16 surrogate pairs; a lone surrogate stays as it is
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")


@dataclass(frozen=True)
class Style:
    """How a file escapes what it writes."""

    ascii_only: bool = False
    upper_hex: bool = True
    escape_separators: bool = False
    newline: str = "\n"

    def _unicode(self, ch: str) -> str:
        units = ch.encode("utf-16-be", "surrogatepass")
        out = []
        for k in range(0, len(units), 2):
            code = f"{units[k] << 8 | units[k + 1]:04x}"
            out.append("\\u" + (code.upper() if self.upper_hex else code))
        return "".join(out)

    def escape(self, text: str, *, key: bool = False) -> str:
        """``text`` escaped so that Java reads it back (as a key, or as a value)."""
        out = []
        for index, ch in enumerate(text):
            if ch in UNESCAPES:
                out.append(UNESCAPES[ch])
            elif ch in WHITESPACE and (key or index == 0):
                out.append("\\" + ch)
            elif ch in "=:" and (key or self.escape_separators):
                out.append("\\" + ch)
            elif ch in "#!" and ((key and index == 0) or self.escape_separators):
                out.append("\\" + ch)
            elif ord(ch) < 0x20 or ord(ch) == 0x7F or (self.ascii_only and ord(ch) > 0x7E):
                out.append(self._unicode(ch))
            elif 0xD800 <= ord(ch) <= 0xDFFF:
                out.append(self._unicode(ch))
            else:
                out.append(ch)
        return "".join(out)


@dataclass
class Line:
    text: str  # without its terminator
    end: str  # "\n", "\r\n", "\r" or "" at the end of the file


@dataclass
class Item:
    """A blank line, a comment line, or a property with its natural lines."""

    kind: str  # "blank" | "comment" | "property"
    lines: list[Line]
    number: int  # 1-based number of the first line
    key: str = ""
    value: str = ""
    prefix: str | None = None  # leading space, raw key and separator, if on the first line
    value_parts: list[str] = field(default_factory=list)  # raw value, per natural line
    comment: list[str] = field(default_factory=list)
    bare: bool = False  # a key without separator or value


def _split_lines(text: str) -> list[Line]:
    lines = []
    for match in re.finditer(r"([^\r\n]*)(\r\n|\r|\n|$)", text):
        if match.group(0) == "" and match.start() == len(text):
            break
        lines.append(Line(match.group(1), match.group(2)))
    return lines


def _key_end(logical: str) -> tuple[int, int]:
    """Where the key of a logical line ends and its value starts (Java's ``load0``)."""
    key_len, value_start, has_sep, backslash = 0, len(logical), False, False
    while key_len < len(logical):
        ch = logical[key_len]
        if ch in "=:" and not backslash:
            value_start, has_sep = key_len + 1, True
            break
        if ch in WHITESPACE and not backslash:
            value_start = key_len + 1
            break
        backslash = not backslash if ch == "\\" else False
        key_len += 1
    while value_start < len(logical):
        ch = logical[value_start]
        if ch not in WHITESPACE:
            if not has_sep and ch in "=:":
                has_sep = True
            else:
                break
        value_start += 1
    return key_len, value_start


def parse(text: str) -> list[Item]:
    """The items of a properties text, in order."""
    lines = _split_lines(text)
    items: list[Item] = []
    i = 0
    while i < len(lines):
        first = lines[i]
        stripped = first.text.lstrip(WHITESPACE)
        if not stripped or (stripped == "\\" and i + 1 < len(lines)):
            # a lone backslash continues an empty line: Java reads the next as a new line
            items.append(Item("blank", [first], i + 1))
            i += 1
            continue
        if stripped[0] in "#!":
            items.append(Item("comment", [first], i + 1))
            i += 1
            continue
        start = i
        parts = [stripped]
        while _odd_backslashes(parts[-1]):
            parts[-1] = parts[-1][:-1]
            if i + 1 >= len(lines):
                break
            i += 1
            parts.append(lines[i].text.lstrip(WHITESPACE))
            if not parts[-1]:
                break
        i += 1
        logical = "".join(parts)
        key_len, value_start = _key_end(logical)
        item = Item("property", lines[start:i], start + 1)
        item.key = decode(logical[:key_len], start + 1)
        item.value = decode(logical[value_start:], start + 1)
        item.bare = value_start == key_len
        lead = len(first.text) - len(stripped)
        if value_start <= len(parts[0]):
            item.prefix = first.text[: lead + value_start]
            item.value_parts = [parts[0][value_start:], *parts[1:]]
        items.append(item)
    return items


def _attach_comments(items: list[Item]) -> None:
    block: list[str] = []
    for item in items:
        if item.kind == "comment":
            block.append(item.lines[0].text.lstrip(WHITESPACE)[1:])
        elif item.kind == "property":
            item.comment = [c[1:] if c.startswith(" ") else c for c in block]
            block = []
        else:
            block = []


def detect_style(text: str, items: list[Item], existing: str | None) -> Style:
    def ascii_only(sample: str) -> bool | None:
        if any(ord(c) > 0x7F for c in sample):
            return False
        if any(int(m.group(2), 16) > 0x7F for m in U_ESCAPE.finditer(sample)):
            return True
        return None

    escapes = ascii_only(text)
    if escapes is None and existing:
        escapes = ascii_only(existing)
    hexes = "".join(m.group(2) for m in U_ESCAPE.finditer(text))
    upper_hex = not re.search("[a-f]", hexes) or bool(re.search("[A-F]", hexes))
    values = "".join("".join(item.value_parts) for item in items)
    marks = re.findall(r"\\.|[=:#!]", values)  # escapes pair up, so a bare mark is unescaped
    escaped = sum(1 for m in marks if m[0] == "\\" and m[1:] in "=:#!")
    bare = sum(1 for m in marks if m in "=:#!")
    escape_separators = escaped > 0 and bare == 0
    newline = next((line.end for item in items for line in item.lines if line.end), "\n")
    return Style(bool(escapes), upper_hex, escape_separators, newline)


class PropertiesFormat(FileFormat):
    name = "properties"

    def path_locale(self, locale: str) -> str:
        return locale.replace("-", "_")

    def _items(self, text: str) -> list[Item]:
        items = parse(text)
        _attach_comments(items)
        seen: dict[str, int] = {}
        for item in items:
            if item.kind != "property":
                continue
            if item.key in seen:
                raise FormatError(
                    f"key {item.key!r} is given twice (lines {seen[item.key]} and {item.number})"
                )
            seen[item.key] = item.number
        return items

    def read(self, text: str, locale: str) -> Catalog:
        catalog = Catalog(locale)
        for item in self._items(text):
            if item.kind == "property":
                catalog.entries.append(
                    Entry(
                        item.key,
                        value=item.value,
                        comment="\n".join(item.comment) or None,
                        translatable=item.value != "",
                    )
                )
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
        items = self._items(source_text)
        style = detect_style(source_text, items, existing)
        entries = {e.key: e for e in catalog.entries if e.translatable}
        out: list[str] = []
        pending: list[Item] = []  # comment lines waiting for the property they describe
        for item in items:
            if item.kind == "comment":
                pending.append(item)
                continue
            if item.kind == "blank":
                out.extend(line.text + line.end for p in pending for line in p.lines)
                pending = []
                out.append(item.lines[0].text + item.lines[0].end)
                continue
            entry = entries.get(item.key)
            if entry is None and item.value != "":
                pending = []  # the removed key's comment goes with it
                continue
            out.extend(line.text + line.end for p in pending for line in p.lines)
            pending = []
            text = item.value if entry is None else entry.single()
            if text == item.value:
                out.extend(line.text + line.end for line in item.lines)
            else:
                out.append(self._render(item, text, style))
        out.extend(line.text + line.end for p in pending for line in p.lines)
        return "".join(out)

    def _render(self, item: Item, text: str, style: Style) -> str:
        end = item.lines[-1].end
        prefix = item.prefix
        if prefix is None:
            prefix = style.escape(item.key, key=True) + "="
        elif item.bare:
            prefix += "="  # a key alone on its line: the new value needs a separator
        parts = item.value_parts
        broken = len(parts) > 1 and all(part.endswith("\\n") for part in parts[:-1])
        lines = text.split("\n")
        pieces = [line + "\n" for line in lines[:-1]] + ([lines[-1]] if lines[-1] else [])
        if not broken or len(pieces) < 2:
            return prefix + style.escape(text) + end
        # continuation lines skip leading whitespace: each piece escapes its own
        second = item.lines[1].text
        indent = second[: len(second) - len(second.lstrip(WHITESPACE))]
        joined = ("\\" + style.newline + indent).join(style.escape(p) for p in pieces)
        return prefix + joined + end


FORMAT = PropertiesFormat()
