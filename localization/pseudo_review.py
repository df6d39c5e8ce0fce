"""The offline reviewer of the ``pseudo`` provider: deterministic verdicts from what can be
checked without a language model, so the review stages run (and are tested) offline.

A translation scores 100 unless a token of its source is missing, repeated or invented
(``TOKEN_SCORE``) or a glossary term of its source is not translated as the glossary says
(``GLOSSARY_SCORE``); the reason names the first fault. A back-translation drifts
``critical`` when it is empty or its tokens are not the source's, ``minor`` when the
forward translation misses a glossary term, and ``none`` otherwise.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from localization.masking import tokens_in, without_tokens
from localization.segments import term_pattern

TOKEN_SCORE = 20
GLOSSARY_SCORE = 60


def _token_fault(source: str, text: str) -> str | None:
    want, got = Counter(tokens_in(source)), Counter(tokens_in(text))
    if want == got:
        return None
    missing = sorted((want - got).elements())
    extra = sorted((got - want).elements())
    if missing:
        return f"placeholder or markup {missing[0]} missing or altered"
    return f"placeholder or markup {extra[0]} repeated or invented"


def _glossary_fault(
    source: str, translation: str, glossary: Sequence[tuple[str, str]]
) -> str | None:
    outside = without_tokens(translation).casefold()
    for term, wanted in glossary:
        if term_pattern(term).search(without_tokens(source)) and wanted.casefold() not in outside:
            return f"glossary term {term!r} not translated as {wanted!r}"
    return None


def score(source: str, translation: str, glossary: Sequence[tuple[str, str]]) -> tuple[int, str]:
    """(score, reason) of a masked translation of a masked source."""
    fault = _token_fault(source, translation)
    if fault:
        return TOKEN_SCORE, fault
    fault = _glossary_fault(source, translation, glossary)
    if fault:
        return GLOSSARY_SCORE, fault
    return 100, "tokens and glossary terms intact"


def drift(
    source: str, translation: str, back: str, glossary: Sequence[tuple[str, str]]
) -> tuple[str, str]:
    """(grade, reason) of a masked back-translation against its masked source."""
    if not back.strip():
        return "critical", "the back-translation is empty"
    fault = _token_fault(source, back)
    if fault:
        return "critical", fault
    fault = _glossary_fault(source, translation, glossary)
    if fault:
        return "minor", fault
    return "none", "tokens and glossary terms intact"
