"""Locale validation and normalisation (BCP-47 through langcodes)."""

from __future__ import annotations

import pytest

from localization.language import normalize_locale


@pytest.mark.parametrize(
    ("tag", "expected"),
    [
        ("en", "en"),
        ("pt-br", "pt-BR"),
        ("zh-hant", "zh-Hant"),
        ("sr-latn", "sr-Latn"),
        ("EN-us", "en-US"),
        ("de-DE-1996", "de-DE-1996"),
        ("iw", "he"),
    ],
)
def test_valid_tags_are_normalised(tag: str, expected: str) -> None:
    assert normalize_locale(tag) == expected


@pytest.mark.parametrize(
    "tag", ["pt_br", "xx-??", "", "x", "en-a", "und", "root", "und-Latn", "zz", "en--US"]
)
def test_invalid_or_undetermined_tags_are_refused(tag: str) -> None:
    with pytest.raises(ValueError):
        normalize_locale(tag)
