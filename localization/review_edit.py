"""Checking a reviewer's edited output against the source (humanReview, API.md "Pipeline
stages"): the edit must have exactly the source's structure (the same keys, arrays of the
same length, the same non-string values) and keep, in every string, each placeholder and
tag of the source string once, their nesting intact (``masking.token_problems``).

Pure: the API checks an edit before storing it, and so does the activity that stores an
edit an operator sent through the workflow update."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import contract
from localization.masking import Masked, mask, remask, token_problems
from localization.payload import Path, iter_strings, path_str

_NUMBERED = re.compile(r"⟦(\d+)⟧")


def chip_segments(text: str, source: str | None = None) -> list[tuple[str, bool]]:
    """``text`` cut into ``(piece, is_token)``: the placeholders and tags an edit must keep
    (the tokens ``edit_problems`` checks), which the review console shows as chips that
    cannot be deleted, and the text between them. The pieces join back into ``text``.

    With ``source`` (the string ``text`` translates), only the source's tokens are, each
    as many times as the source has it: a token ``text`` repeats or adds is text, which a
    reviewer must be able to delete for the edit to pass."""
    masked = mask(text)
    left = Counter(mask(source).spans) if source is not None else None
    pieces: list[tuple[str, bool]] = [(masked.lead, False)]
    for index, part in enumerate(_NUMBERED.split(masked.text)):
        if index % 2:
            span = masked.spans[int(part)]
            kept = left is None or left[span] > 0
            if kept and left is not None:
                left[span] -= 1
            pieces.append((span, kept))
        else:
            pieces.append((part, False))
    pieces.append((masked.trail, False))
    return [(piece, token) for piece, token in pieces if piece]


_MISSING = re.compile(r"missing ⟦(\d+)⟧ \(.*\)", re.S)


def _in_source_terms(problem: str, masked: Masked) -> str:
    """A token problem as a reviewer reads it: the placeholder or tag itself (``{name}
    repeated``), not the number the check gave it (``⟦0⟧ repeated``)."""
    missing = _MISSING.fullmatch(problem)
    if missing:
        return f"missing {masked.spans[int(missing[1])]}"

    def span(found: re.Match[str]) -> str:
        n = int(found[1])
        return masked.spans[n] if n < len(masked.spans) else found[0]

    return _NUMBERED.sub(span, problem)


def edit_problems(source: Any, edited: Any) -> dict[str, str]:
    """What is wrong with ``edited`` as a translation of ``source``, by key path (``""``
    for the document itself); empty when it may be stored. The structure is
    ``contract.structure``'s (a missing or extra key is named where it starts, not for each
    key below it). Messages name placeholders and tags of the source, never the edited text."""
    before, after = contract.structure(source), contract.structure(edited)
    problems: dict[str, str] = {}

    def kept(parent: Path) -> bool:
        return parent in before and before[parent] == after.get(parent)

    for path in before.keys() - after.keys():
        if kept(path[:-1]):
            problems[path_str(path)] = "missing: the source has this key"
    for path in after.keys() - before.keys():
        if kept(path[:-1]):
            problems[path_str(path)] = "not in the source"
    for path in before.keys() & after.keys():
        was, now = before[path], after[path]
        if was == "{}" or was == "[]":
            if now != was:
                kind = "an object" if was == "{}" else "an array"
                problems[path_str(path)] = f"must be {kind}, as in the source"
        elif was == "str":
            if now != "str":
                problems[path_str(path)] = "must be a string"
        elif type(now) is not type(was) or now != was:
            problems[path_str(path)] = "must be as in the source"
    texts = dict(iter_strings(edited))
    for path, text in iter_strings(source):
        if path_str(path) in problems or path not in texts:
            continue
        masked = mask(text)
        broken = token_problems(remask(texts[path], masked), masked) if masked.spans else []
        if broken:
            problems[path_str(path)] = "; ".join(_in_source_terms(p, masked) for p in broken)
    if "" in problems:
        return {"": "the edited data must have the source's structure"}
    return dict(sorted(problems.items()))


def review_refusal(
    source: Any, data: Any | None, comment: str | None, *, rejecting: bool
) -> str | None:
    """Why a review (an approve, or a reject when ``rejecting``) may not be applied to a job
    with this source: ``"<field>: <why>"`` naming the keys; None when it may."""
    if rejecting and not (comment or "").strip():
        return "comment: a reject needs a comment (the instruction for the next round)"
    if rejecting and data is not None:
        return "data: only an approve carries edited data"
    if data is not None:
        problems = edit_problems(source, data)
        if problems:
            named = "; ".join(f"{key or '(document)'}: {why}" for key, why in problems.items())
            return f"data: {named}"
    return None
