"""File formats of the client, by the name a bucket gives in ``tolk.yaml``."""

from __future__ import annotations

import importlib

from client.formats.model import Catalog, Entry, FileFormat, FormatError

# bucket format name -> module defining ``FORMAT``, a FileFormat instance
MODULES = {
    "json": "client.formats.json",
    "yaml": "client.formats.yaml",
    "po": "client.formats.po",
    "properties": "client.formats.properties",
    "csv": "client.formats.csv",
    "arb": "client.formats.arb",
    "xliff": "client.formats.xliff",
    "android": "client.formats.android",
    "ios-strings": "client.formats.ios_strings",
    "xcstrings": "client.formats.xcstrings",
}


def get_format(name: str) -> FileFormat:
    """The format named in a bucket; ``KeyError`` for a name that is not one."""
    module = importlib.import_module(MODULES[name])
    fmt: FileFormat = module.FORMAT
    return fmt


__all__ = ["MODULES", "Catalog", "Entry", "FileFormat", "FormatError", "get_format"]
