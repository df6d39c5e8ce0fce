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

from localization.masking import mask, remask, token_problems
from localization.payload import Path, path_str


def _leaves(data: Any, path: Path = ()) -> dict[Path, Any]:
    """Each leaf by its key path: strings as ``str`` (their text), other values as they
    are; an empty object or array is a leaf of its own (its type)."""
    if isinstance(data, dict) and data:
        return {
            p: v
            for key, value in data.items()
            for p, v in _leaves(value, (*path, str(key))).items()
        }
    if isinstance(data, list) and data:
        return {
            p: v for i, value in enumerate(data) for p, v in _leaves(value, (*path, str(i))).items()
        }
    if isinstance(data, (dict, list)):
        return {path: type(data).__name__}
    return {path: data}


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


def edit_problems(source: Any, edited: Any) -> dict[str, str]:
    """What is wrong with ``edited`` as a translation of ``source``, by key path (``""``
    for the document itself); empty when it may be stored. Messages name placeholders and
    tags of the source, never the edited text."""
    if isinstance(source, dict) != isinstance(edited, dict) or (
        isinstance(source, list) != isinstance(edited, list)
    ):
        return {"": "the edited data must have the source's structure"}
    before, after = _leaves(source), _leaves(edited)
    problems: dict[str, str] = {}
    for path in before.keys() - after.keys():
        problems[path_str(path)] = "missing: the source has this key"
    for path in after.keys() - before.keys():
        problems[path_str(path)] = "not in the source"
    for path in before.keys() & after.keys():
        was, now = before[path], after[path]
        if isinstance(was, str) != isinstance(now, str):
            problems[path_str(path)] = (
                "must be a string" if isinstance(was, str) else ("must be as in the source")
            )
        elif not isinstance(was, str):
            if was != now or type(was) is not type(now):
                problems[path_str(path)] = "must be as in the source"
        else:
            masked = mask(was)
            broken = token_problems(remask(now, masked), masked) if masked.spans else []
            if broken:
                problems[path_str(path)] = "; ".join(broken)
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
