"""How the client reads and writes a project file's text: decoded by its byte-order mark
(UTF-8 without one; UTF-8 and UTF-16 in either byte order with one), and written back the way
it came, mark and byte order included. The one rule for every format (Apple's ``.strings``
files are often UTF-16)."""

from __future__ import annotations

import codecs
from dataclasses import dataclass

BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


@dataclass(frozen=True)
class TextFile:
    text: str
    codec: str = "utf-8"
    bom: bytes = b""

    def encode(self, text: str) -> bytes:
        """``text`` encoded as this file is."""
        return self.bom + text.encode(self.codec)


def decode(data: bytes) -> TextFile:
    """The text of a file's bytes. Raises ``UnicodeDecodeError``."""
    for bom, codec in BOMS:
        if data.startswith(bom):
            return TextFile(data[len(bom) :].decode(codec), codec, bom)
    return TextFile(data.decode("utf-8"))
