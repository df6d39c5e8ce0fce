"""Locale tags and offline language identification: a tag in canonical case, which language a
text is in, with its display name.

py3langid ships its model (97 languages), so nothing is downloaded; it is loaded on first
use, so processes that never identify a language do not pay for it.
"""

from __future__ import annotations

from typing import Any

import langcodes

# Languages written right to left (ISO 639 codes py3langid can return, and a few more).
RTL = frozenset({"ar", "arc", "ckb", "dv", "fa", "he", "ku", "ps", "sd", "syr", "ug", "ur", "yi"})
MAX_SAMPLE_CHARS = 10_000


def normalize_locale(tag: str) -> str:
    """Validate a BCP-47 tag and return it in canonical case (``pt-br`` -> ``pt-BR``): the one
    spelling of a locale for the API and the file client alike."""
    if "_" in tag or not langcodes.tag_is_valid(tag):
        raise ValueError(f"'{tag}' is not a valid BCP-47 tag")
    normalised = langcodes.standardize_tag(tag)
    if langcodes.Language.get(normalised).language in (None, "und"):
        raise ValueError(f"'{tag}' names no language (undetermined)")
    return normalised


def identify(text: str) -> str:
    """The language code of ``text`` (ISO 639-1 where one exists)."""
    import py3langid  # loads the model on first call

    code, _score = py3langid.classify(text[:MAX_SAMPLE_CHARS])
    return str(code)


def describe(code: str, label_locale: str = "en") -> dict[str, Any]:
    """The recognize answer for a language code, labelled in ``label_locale``."""
    language = langcodes.Language.get(code)
    return {
        "locale": language.to_tag(),
        "language": language.language,
        "region": language.territory,
        "script": language.script,
        "label": language.display_name(label_locale),
        "direction": "rtl" if language.language in RTL else "ltr",
    }
