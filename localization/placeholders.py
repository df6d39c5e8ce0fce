"""Split a string into translatable text and protected spans that must survive verbatim.

Protected: balanced ``{...}`` groups (``{name}``, ``{{name}}``, whole ICU messages),
``${name}``, printf forms (``%s``, ``%1$s``, ``%(name)s``, ``%.2f``), HTML tags and
HTML entities, and the opaque tokens of ``localization.masking`` (``⟦0⟧``).
"""

from __future__ import annotations

import re

_SIMPLE = re.compile(
    r"""
      <[A-Za-z/!][^<>]*>                                  # HTML tag or comment
    | &(?:\#\d+|\#[xX][0-9a-fA-F]+|[A-Za-z][A-Za-z0-9]*);  # HTML entity
    | %(?:\([^()\s]+\))?(?:\d+\$)?[-+0\#]*(?:\d+|\*)?(?:\.\d+)?[sdifFeEgGxXoucr@%]  # printf
    | ⟦[^⟦⟧]*⟧                                            # masking token (or a literal one)
    """,
    re.VERBOSE,
)


def balanced_end(text: str, start: int) -> int | None:
    """Index just past the ``}`` closing the ``{`` at ``start``, or None if unbalanced."""
    level = 0
    for i in range(start, len(text)):
        if text[i] == "{":
            level += 1
        elif text[i] == "}":
            level -= 1
            if level == 0:
                return i + 1
    return None


def protected_end(text: str, i: int) -> int | None:
    """Index just past the protected span starting at ``text[i]``, or None if none does."""
    if text[i] == "{" or (text[i] == "$" and text.startswith("${", i)):
        return balanced_end(text, i + (1 if text[i] == "$" else 0))
    if text[i] in "<&%⟦":
        match = _SIMPLE.match(text, i)
        return match.end() if match else None
    return None


def split_protected(text: str) -> list[tuple[bool, str]]:
    """Return ``[(protected, span), ...]`` whose spans concatenate back to ``text``."""
    spans: list[tuple[bool, str]] = []
    plain_start = i = 0
    while i < len(text):
        end = protected_end(text, i)
        if end is None:
            i += 1
            continue
        if plain_start < i:
            spans.append((False, text[plain_start:i]))
        spans.append((True, text[i:end]))
        plain_start = i = end
    if plain_start < len(text):
        spans.append((False, text[plain_start:]))
    return spans


def protected_spans(text: str) -> list[str]:
    return [span for protected, span in split_protected(text) if protected]
