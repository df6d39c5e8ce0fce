"""Steps 1 and 2 of the pipeline (``localization/pipeline.py``), and the check of step 5: a
document's strings become segments, masked, each with its glossary terms and memory key; an
answer is checked against its segment. Pure functions of their arguments: no provider, no
memory, no clock.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from localization.batch import estimate_tokens
from localization.engine_plan import EnginePlan
from localization.icu_plurals import adapt_plurals
from localization.locked import LockedKeys
from localization.masking import Masked, TokenError, mask, unmask, without_tokens
from localization.payload import Path, iter_strings, path_str


@dataclass
class Segment:
    sid: str
    source: str
    hints: tuple[str, ...]
    masked: Masked
    paths: list[Path]
    glossary: tuple[tuple[str, str], ...] = ()
    memory_key: str = ""

    @property
    def tokens(self) -> int:
        """The estimated tokens of its batch item (without the item's JSON around it)."""
        return estimate_tokens(self.masked.text) + sum(estimate_tokens(h) for h in self.hints)


def short_id(index: int) -> str:
    """Short opaque ids: 0-9a-z, then two characters, ..."""
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        index, rest = divmod(index, 36)
        out = digits[rest] + out
        if index == 0:
            return out


def term_pattern(term: str) -> re.Pattern[str]:
    return re.compile(r"(?<!\w)" + re.escape(term) + r"(?!\w)", re.IGNORECASE)


@dataclass
class Prepared:
    segments: list[Segment]
    by_path: dict[Path, Segment]
    strings: int
    locked: int


def prepare(
    data: Any,
    plan: EnginePlan,
    locked_keys: Sequence[str] | None,
    hints: dict[str, list[str]] | None,
    memory_scope: Sequence[Any] | None,
    target_locale: str | None = None,
) -> Prepared:
    """Steps 1-2: segments by (text, hints), masked, with their glossary and memory key.
    The source of a segment is its text with the ICU plurals in the categories of
    ``target_locale`` (``localization.icu_plurals``): what is masked, checked, kept when
    no translation is usable, and the text in the memory key."""
    locked = LockedKeys(list(locked_keys or []))
    hints = hints or {}
    patterns = [(term, tr, term_pattern(term)) for term, tr in plan.glossary]
    segments: dict[tuple[str, tuple[str, ...]], Segment] = {}
    by_path: dict[Path, Segment] = {}
    strings = locked_count = 0
    for path, text in iter_strings(data):
        if locked and locked.is_locked(path):
            locked_count += 1
            continue
        strings += 1
        seg_hints = tuple(hints.get(path_str(path), ()))
        seg = segments.get((text, seg_hints))
        if seg is None:
            source = adapt_plurals(text, target_locale) if target_locale else text
            masked = mask(source, plan.do_not_translate)
            seg = Segment(
                sid=short_id(len(segments)),
                source=source,
                hints=seg_hints,
                masked=masked,
                paths=[],
                # Terms inside placeholders or markup (tokens now) are not text to translate.
                glossary=tuple((t, tr) for t, tr, p in patterns if p.search(masked.text)),
            )
            if memory_scope is not None:
                key = json.dumps([*memory_scope, source, seg_hints], ensure_ascii=False)
                seg.memory_key = hashlib.sha256(key.encode()).hexdigest()
            segments[(text, seg_hints)] = seg
        seg.paths.append(path)
        by_path[path] = seg
    return Prepared(list(segments.values()), by_path, strings, locked_count)


T = TypeVar("T")


@dataclass
class Check(Generic[T]):
    """An answer checked against its segment. ``text`` is what is usable of it: for a
    translation the unmasked text, for a review stage the checked verdict."""

    text: T | None = None
    code: str | None = None  # problem code when not perfect
    message: str | None = None


def check(seg: Segment, answer: Any) -> Check[str]:
    """One answer against its segment: tokens, then glossary."""
    if not isinstance(answer, str) or not answer.strip():
        return Check(code="missing_translation", message="no translation came back")
    try:
        text = unmask(answer, seg.masked)
    except TokenError as err:
        return Check(
            code="placeholder_mismatch",
            message=f"the translation broke placeholders or markup: {str(err)[:300]}",
        )
    outside_tokens = without_tokens(answer).casefold()
    missing = [tr for term, tr in seg.glossary if tr.casefold() not in outside_tokens]
    if missing:
        return Check(
            text=text,
            code="glossary_term_missing",
            message="glossary translation not used: " + ", ".join(missing[:5]),
        )
    return Check(text=text)
