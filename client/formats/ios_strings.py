"""Apple ``.strings`` and ``.stringsdict`` files (one format: ``ios-strings``).

Which one: chosen by the text. A ``.stringsdict`` is an XML property list (it starts, after
an optional BOM and whitespace, with ``<?xml``, ``<!DOCTYPE`` or ``<plist``); anything else is
a ``.strings`` file.

The ``.strings`` syntax and writer: ``client.formats.strings_file``; the ``.stringsdict``
property lists: ``client.formats.stringsdict``.

Encoding: ``read``/``write`` take and give text. The file client decodes every file by its
byte-order mark and writes a target the way its source came (``client.text``), so a UTF-16
source, as Xcode's older ``.strings`` files are, gives UTF-16 targets with the same BOM.

``path_locale``: Apple spells tags as they are (``pt-BR.lproj``, ``zh-Hans.lproj``).
"""

from __future__ import annotations

from client.formats.model import Catalog, FileFormat
from client.formats.strings_file import read_strings, write_strings
from client.formats.stringsdict import load_plist, stringsdict_entries, write_stringsdict


def is_stringsdict(text: str) -> bool:
    return text.lstrip("\ufeff \t\r\n").startswith(("<?xml", "<!DOCTYPE", "<plist"))


class IosStrings(FileFormat):
    name = "ios-strings"

    def read(self, text: str, locale: str) -> Catalog:
        if is_stringsdict(text):
            data = load_plist(text)
            return Catalog(locale, stringsdict_entries(data), meta={"kind": "stringsdict"})
        return read_strings(text, locale)

    def write(
        self,
        catalog: Catalog,
        *,
        locale: str,
        source_locale: str,
        source_text: str,
        existing: str | None,
    ) -> str:
        if is_stringsdict(source_text):
            return write_stringsdict(catalog, locale, source_text)
        return write_strings(catalog, source_text)


FORMAT = IosStrings()
