"""Deterministic offline pseudo-localization.

Letters become accented look-alikes, the text grows by about 35% and is bracketed, so
untranslated strings, truncation and hard-coded concatenation are easy to spot in a UI.
Placeholders, HTML tags, entities and the opaque tokens of ``localization.masking``
(``⟦0⟧``) are left byte-for-byte intact, so ``pseudo_localize(masked.text)`` unmasks cleanly.
"""

from __future__ import annotations

import math

from localization.placeholders import split_protected

_ACCENTS = str.maketrans(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
    "àƀçđéƒĝĥíĵķĺɱñöþǫŕšţüṽŵẋýžÀƁÇĐÉƑĜĤÍĴĶĹṀÑÖÞǪŔŠŢÜṼŴẊÝŽ",
)
EXPANSION = 0.35


def pseudo_localize(text: str) -> str:
    if not text.strip():
        return text
    spans = split_protected(text)
    visible = sum(len(span) for protected, span in spans if not protected)
    if visible == 0:
        return text  # nothing but placeholders/markup: keep as is
    body = "".join(span if protected else span.translate(_ACCENTS) for protected, span in spans)
    padding = "~" * math.ceil(visible * EXPANSION)
    return f"[{body} {padding}]"
