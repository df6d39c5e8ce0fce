"""Flutter Application Resource Bundles (``app_en.arb``).

An ARB file is a JSON object of messages ``"key": "ICU message"``, each with an optional
``"@key"`` object of metadata, and global ``"@@x"`` attributes (``@@locale``). Keys: the message
keys. A message is one entry whatever ICU it holds (the server adapts plural and select
branches); ``@key.description`` becomes ``Entry.comment`` and ``@key.context`` its context, and
the whole ``@key`` object is kept in ``meta["attributes"]``. An empty message is not
translatable.

A target has ``@@locale`` set to its locale, spelled as Flutter names the files
(``pt_BR``, or with a hyphen if the source writes its own locale so), added first when the
source has none; the source's other ``@@`` attributes and its ``@key`` objects verbatim; the
messages in source order, minus those the catalog lacks (with their ``@key``); and the source's
JSON layout. When the target file already holds exactly what would be written, its text is kept.
"""

from __future__ import annotations

from typing import Any

from client.formats.json import detect_style, parse, unchanged_text
from client.formats.model import Catalog, Entry, FileFormat, FormatError

LOCALE = "@@locale"


def _object(text: str, what: str) -> dict[str, Any]:
    data = parse(text, what)
    if not isinstance(data, dict):
        raise FormatError(f"an {what} file must hold a JSON object")
    for key, value in data.items():
        if not key.startswith("@") and not isinstance(value, str):
            raise FormatError(f"ARB message {key!r} is not a string")
    return data


class ArbFormat(FileFormat):
    name = "arb"

    def path_locale(self, locale: str) -> str:
        return locale.replace("-", "_")

    def read(self, text: str, locale: str) -> Catalog:
        data = _object(text, "ARB")
        catalog = Catalog(
            locale, meta={"globals": {k: v for k, v in data.items() if k[:2] == "@@"}}
        )
        for key, value in data.items():
            if key.startswith("@"):
                continue
            attributes = data.get(f"@{key}")
            entry = Entry(key, value=value, translatable=value != "")
            if isinstance(attributes, dict):
                entry.meta["attributes"] = attributes
                if isinstance(attributes.get("description"), str):
                    entry.comment = attributes["description"]
                if isinstance(attributes.get("context"), str):
                    entry.context = attributes["context"]
            catalog.entries.append(entry)
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
        source = _object(source_text, "ARB source")
        entries = {e.key: e for e in catalog.entries if e.translatable}
        spelled = source.get(LOCALE)
        marker = locale if isinstance(spelled, str) and "-" in spelled else self.path_locale(locale)
        kept_messages = {
            k for k, v in source.items() if not k.startswith("@") and (v == "" or k in entries)
        }
        out: dict[str, Any] = {}
        if LOCALE not in source and locale != source_locale:
            out[LOCALE] = marker
        for key, value in source.items():
            if key == LOCALE:
                out[key] = marker if locale != source_locale else value
            elif key.startswith("@@"):
                out[key] = value
            elif key.startswith("@"):
                if key[1:] not in source or key[1:] in kept_messages:
                    out[key] = value
            elif key in kept_messages:
                out[key] = value if value == "" else entries[key].single()
        kept = unchanged_text(existing, out)
        if kept is not None:
            return kept
        return detect_style(source_text, source).dump(out)


FORMAT = ArbFormat()
