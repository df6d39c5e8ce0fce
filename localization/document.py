"""Translate one JSON document into one locale: the engine-independent part of the pipeline.

Flatten to key paths, set aside locked keys, hand the remaining strings to a provider,
rebuild the document in source order. Providers translate lists of strings and never see
the document's structure.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from localization.locked import LockedKeys
from localization.payload import Path, iter_strings, map_strings
from localization.pseudo import pseudo_localize


class Provider(Protocol):
    name: str

    def translate(self, texts: list[str], source_locale: str, target_locale: str) -> list[str]: ...


class PseudoProvider:
    name = "pseudo"

    def translate(self, texts: list[str], source_locale: str, target_locale: str) -> list[str]:
        return [pseudo_localize(text) for text in texts]


@dataclass
class DocumentResult:
    output: Any
    strings: int = 0
    locked: int = 0
    warnings: list[dict[str, str]] = field(default_factory=list)


class Stopped(Exception):
    """The caller asked to stop (its job was cancelled) before translation finished."""


CHUNK = 200  # strings per provider call between checks of ``should_stop``


def translate_document(
    data: Any,
    source_locale: str,
    target_locale: str,
    provider: Provider,
    locked_keys: list[str] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> DocumentResult:
    locked = LockedKeys(locked_keys)
    to_translate: dict[Path, str] = {}
    locked_count = 0
    for path, text in iter_strings(data):
        if locked and locked.is_locked(path):
            locked_count += 1
        else:
            to_translate[path] = text
    # Identical source strings are translated once.
    unique = list(dict.fromkeys(to_translate.values()))
    translated: dict[str, str] = {}
    for start in range(0, len(unique), CHUNK):
        if should_stop():
            raise Stopped
        chunk = unique[start : start + CHUNK]
        translated.update(
            zip(chunk, provider.translate(chunk, source_locale, target_locale), strict=True)
        )
    output = map_strings(
        data, lambda path, text: translated[text] if path in to_translate else text
    )
    return DocumentResult(output=output, strings=len(to_translate), locked=locked_count)
