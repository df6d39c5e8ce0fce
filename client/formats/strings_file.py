"""Apple ``.strings`` files, the text half of the ``ios-strings`` format
(``client.formats.ios_strings``).

``.strings``: ``/* comment */ "key" = "value";``, also ``//`` comments and unquoted keys and
values (OpenStep characters). A comment right above an entry (no blank line between) is its
``Entry.comment``; a comment on the line of an entry, after its ``;``, belongs to that entry.
Escapes read: ``\\" \\' \\\\ \\n \\t \\r \\0`` and other octal, ``\\Uxxxx``/``\\uxxxx``
(surrogate pairs joined); any other escaped character stands for itself. A key on its own
(``"key";``) has the key as its value. A key given twice is a ``FormatError`` (Apple would keep
the last). Writing splices the source text: comments, spacing, key order and the spelling of
every unchanged value stay byte for byte; a changed value is written quoted with ``\\" \\\\
\\n \\t \\r`` and ``\\Uxxxx`` for other control characters; an entry the catalog lacks goes
with its comment.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from client.formats.model import Catalog, Entry, FormatError

_UNQUOTED = re.compile(r"[A-Za-z0-9_$+/:.\-]+")
_SIMPLE_ESCAPES = {
    "n": "\n",
    "t": "\t",
    "r": "\r",
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "v": "\v",
    '"': '"',
    "'": "'",
    "\\": "\\",
}


def unescape_strings(raw: str) -> str:
    """The value of a quoted ``.strings`` token's inside."""
    out: list[str] = []
    i = 0
    while i < len(raw):
        c = raw[i]
        if c != "\\" or i + 1 == len(raw):
            out.append(c)
            i += 1
            continue
        n = raw[i + 1]
        i += 2
        if n in "Uu":
            digits = re.match(r"[0-9A-Fa-f]{1,4}", raw[i : i + 4])
            if digits is None:
                out.append(n)
                continue
            i += digits.end()
            code = int(digits.group(), 16)
            low = re.match(r"\\[Uu]([0-9A-Fa-f]{4})", raw[i : i + 6])
            if 0xD800 <= code < 0xDC00 and low and 0xDC00 <= int(low.group(1), 16) < 0xE000:
                code = 0x10000 + ((code - 0xD800) << 10) + (int(low.group(1), 16) - 0xDC00)
                i += 6
            out.append(chr(code))
        elif n in "01234567":
            digits = re.match(r"[0-7]{1,3}", raw[i - 1 : i + 2])
            assert digits is not None
            i += digits.end() - 1
            out.append(chr(int(digits.group(), 8)))
        else:
            out.append(_SIMPLE_ESCAPES.get(n, n))
    return "".join(out)


# What a changed value escapes: quotes, backslashes, line breaks and tabs by name, other
# control characters as ``\Uxxxx``.
_WRITE_ESCAPES = {code: f"\\U{code:04X}" for code in (*range(0x20), 0x7F)} | str.maketrans(
    {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r"}
)


def escape_strings(text: str) -> str:
    """A quoted ``.strings`` token holding ``text``."""
    return '"' + text.translate(_WRITE_ESCAPES) + '"'


@dataclass
class _Pair:
    key: str
    value: str
    comment: str | None
    start: int  # where the entry's text (with its comment) begins
    end: int  # past its line
    value_span: tuple[int, int] | None  # the value token, None for "key";


def _line_of(text: str, pos: int) -> int:
    return text.count("\n", 0, pos)


class _StringsParser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 1 if text.startswith("\ufeff") else 0

    def fail(self, message: str) -> FormatError:
        line = _line_of(self.text, self.pos) + 1
        return FormatError(f".strings: {message} (line {line})")

    def skip_space(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def comment(self) -> tuple[int, int, str] | None:
        """A comment at the position, as (start, end, its text); None if there is none."""
        text, start = self.text, self.pos
        if text.startswith("/*", start):
            end = text.find("*/", start + 2)
            if end < 0:
                raise self.fail("unterminated /* comment")
            self.pos = end + 2
            return start, end + 2, text[start + 2 : end]
        if text.startswith("//", start):
            end = text.find("\n", start)
            end = len(text) if end < 0 else end
            self.pos = end
            return start, end, text[start + 2 : end]
        return None

    def token(self) -> tuple[str, int, int]:
        """A quoted or unquoted string at the position: (value, start, end)."""
        text, start = self.text, self.pos
        if start < len(text) and text[start] == '"':
            i = start + 1
            while i < len(text) and text[i] != '"':
                i += 2 if text[i] == "\\" else 1
            if i >= len(text):
                raise self.fail("unterminated string")
            self.pos = i + 1
            return unescape_strings(text[start + 1 : i]), start, i + 1
        match = _UNQUOTED.match(text, start)
        if match is None:
            found = text[start : start + 1] or "the end of the file"
            raise self.fail(f"expected a string, found {found!r}")
        self.pos = match.end()
        return match.group(), start, match.end()

    def skip_space_and_comments(self) -> None:
        while True:
            self.skip_space()
            if self.comment() is None:
                return

    def pairs(self) -> list[_Pair]:
        text = self.text
        pairs: list[_Pair] = []
        last_comment: tuple[int, int, str] | None = None
        while True:
            self.skip_space()
            if self.pos >= len(text):
                return pairs
            found = self.comment()
            if found is not None:
                if pairs and _line_of(text, found[0]) == _line_of(text, pairs[-1].end - 1):
                    pairs[-1].end = self._line_end(found[1])  # trailing comment of the entry
                    last_comment = None
                else:
                    last_comment = found
                continue
            key, key_start, _ = self.token()
            comment = None
            start = key_start
            if last_comment is not None:
                gap = text[last_comment[1] : key_start]
                if not gap.strip() and gap.count("\n") <= 1:
                    comment = " ".join(last_comment[2].split()) or None
                    start = last_comment[0]
            last_comment = None
            self.skip_space_and_comments()
            value_span: tuple[int, int] | None = None
            if text.startswith("=", self.pos):
                self.pos += 1
                self.skip_space_and_comments()
                value, value_start, value_end = self.token()
                value_span = (value_start, value_end)
                self.skip_space_and_comments()
            else:
                value = key
            if not text.startswith(";", self.pos):
                raise self.fail(f"expected ';' after the entry {key!r}")
            self.pos += 1
            line_start = text.rfind("\n", 0, start) + 1
            if not text[line_start:start].strip():
                start = line_start
            pairs.append(_Pair(key, value, comment, start, self._line_end(self.pos), value_span))

    def _line_end(self, pos: int) -> int:
        """Past the spaces and the newline that end the line at ``pos``, if only spaces do."""
        end = pos
        while end < len(self.text) and self.text[end] in " \t":
            end += 1
        if end < len(self.text) and self.text[end] == "\n":
            return end + 1
        if end == len(self.text):
            return end
        return pos


def _strings_pairs(text: str) -> list[_Pair]:
    pairs = _StringsParser(text).pairs()
    seen: set[str] = set()
    for pair in pairs:
        if pair.key in seen:
            raise FormatError(f".strings: the key {pair.key!r} is given twice")
        seen.add(pair.key)
    return pairs


def read_strings(text: str, locale: str) -> Catalog:
    entries = [
        Entry(pair.key, value=pair.value, comment=pair.comment) for pair in _strings_pairs(text)
    ]
    return Catalog(locale=locale, entries=entries, meta={"kind": "strings"})


def write_strings(catalog: Catalog, source_text: str) -> str:
    pairs = _strings_pairs(source_text)
    by_key = catalog.by_key()
    out: list[str] = []
    pos = 0
    for pair in pairs:
        entry = by_key.get(pair.key)
        if entry is None or entry.plurals is not None:
            out.append(source_text[pos : pair.start])
            pos = pair.end
            # do not leave two blank lines where the entry was
            before = "".join(out)[-2:]
            if source_text.startswith("\n", pos) and (before == "\n\n" or not "".join(out)):
                pos += 1
            continue
        value = entry.value or ""
        if value == pair.value:
            continue
        if pair.value_span is None:
            raise FormatError(f".strings: the key {pair.key!r} has no value to replace")
        start, end = pair.value_span
        out.append(source_text[pos:start])
        out.append(escape_strings(value))
        pos = end
    out.append(source_text[pos:])
    return "".join(out)
