"""``lockedKeys`` patterns: the documented semantics, pinned against the original recursive
matcher (copied here as the reference)."""

from __future__ import annotations

import random
from fnmatch import fnmatchcase

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from localization.locked import LockedKeys
from localization.payload import iter_strings

Path = tuple[str, ...]


# The matcher as it was first written: exponential on repeated ``**``, fine on small inputs.
def _ref_segment(pattern: str, segment: str) -> bool:
    return fnmatchcase(segment, pattern) if "*" in pattern else pattern == segment


def _ref_prefix(pattern: tuple[str, ...], path: Path) -> bool:
    if not pattern:
        return True
    head, rest = pattern[0], pattern[1:]
    if head == "**":
        return any(_ref_prefix(rest, path[i:]) for i in range(len(path) + 1))
    if not path:
        return False
    return _ref_segment(head, path[0]) and _ref_prefix(rest, path[1:])


def reference(patterns: list[str], path: Path) -> bool:
    for pattern in patterns:
        parts = tuple(pattern.split("."))
        if len(parts) == 1 and parts[0] != "**":
            if any(_ref_segment(parts[0], segment) for segment in path):
                return True
        elif _ref_prefix(parts, path):
            return True
    return False


CASES: list[tuple[list[str], Path, bool]] = [
    # A bare name: that key as a whole segment at any depth, and its subtree.
    (["id"], ("id",), True),
    (["id"], ("author", "id"), True),
    (["id"], ("steps", "3", "id", "x"), True),
    (["id"], ("idea",), False),
    (["id"], (), False),  # a document that is a single string has the empty path
    (["*_url"], ("a", "home_url"), True),
    (["*"], ("a",), True),
    (["*"], (), False),
    (["3"], ("steps", "3", "body"), True),  # array indexes are segments too
    # Dotted: from the root; * is one segment, ** any number (zero included).
    (["steps.*.slug"], ("steps", "0", "slug"), True),
    (["steps.*.slug"], ("steps", "0", "slug", "deep"), True),
    (["steps.*.slug"], ("steps", "slug"), False),
    (["steps.*.slug"], ("x", "steps", "0", "slug"), False),
    (["metadata.**"], ("metadata",), True),
    (["metadata.**"], ("metadata", "a", "b"), True),
    (["metadata.**"], ("meta",), False),
    (["**"], (), True),
    (["**"], ("a", "b"), True),
    (["**.**"], ("a",), True),
    (["**.title"], ("title",), True),
    (["**.title"], ("a", "b", "title"), True),
    (["**.title"], ("a", "b", "titles"), False),
    (["a.**.b"], ("a", "b"), True),
    (["a.**.b"], ("a", "x", "y", "b", "z"), True),
    (["a.**.b"], ("a", "x", "y"), False),
    (["a.**.b.**.c"], ("a", "b", "x", "b", "c"), True),
    (["a.**.b.**.c"], ("a", "c", "b"), False),
    (["a.*"], ("a",), False),
    (["*.*"], ("a", "b"), True),
    (["*.*"], ("a",), False),
    # Wildcards inside a segment: fnmatch, only when the segment has a *.
    (["title_*"], ("title_en",), True),
    (["title_*"], ("title",), False),
    (["a.t*e.c"], ("a", "tile", "c"), True),
    (["a**b"], ("axyb",), True),  # ** inside a segment is a plain wildcard
    (["a**b"], ("ax", "yb"), False),
    (["x.a**b"], ("x", "ab"), True),
    (["a?"], ("ab",), False),  # no * in the segment: ? is a literal
    (["a?"], ("a?",), True),
    (["a?*"], ("ab",), True),  # with a *: fnmatch, ? is any character
    (["[ab]"], ("a",), False),
    (["[ab]*"], ("b1",), True),
    (["ID"], ("id",), False),  # case-sensitive
    # Odd but legal: empty segments (keys may be "" or contain dots).
    ([""], ("a", "", "b"), True),
    ([""], ("a",), False),
    (["a..b"], ("a", "", "b"), True),
    (["a.b"], ("a.b",), False),  # a key with a dot is one segment
    (["a.b"], ("a", "b"), True),
    # Several patterns: any one locks.
    (["x.y", "id"], ("p", "id"), True),
    (["x.y", "id"], ("x", "y", "z"), True),
    (["x.y", "id"], ("x", "z"), False),
    ([], ("id",), False),
]


@pytest.mark.parametrize(("patterns", "path", "expected"), CASES)
def test_documented_semantics(patterns: list[str], path: Path, expected: bool) -> None:
    assert reference(patterns, path) is expected  # the cases say what the original did
    assert LockedKeys(patterns).is_locked(path) is expected
    assert bool(LockedKeys(patterns)) is bool(patterns)


SEGMENTS = ["a", "b", "ab", "", "0", "a.b"]
PATTERN_SEGMENTS = ["a", "b", "ab", "", "0", "*", "**", "a*", "*b", "?", "[ab]*", "a**"]
paths = st.lists(st.sampled_from(SEGMENTS), max_size=6).map(tuple)
patterns = st.lists(st.sampled_from(PATTERN_SEGMENTS), min_size=1, max_size=5).map(".".join)
SAME = settings(
    derandomize=True,
    max_examples=400,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@SAME
@given(st.lists(patterns, max_size=4), st.lists(paths, max_size=12))
def test_same_answers_as_the_reference(pattern_list: list[str], path_list: list[Path]) -> None:
    """One matcher for many paths, asked in any order (it reuses work between paths)."""
    keys = LockedKeys(pattern_list)
    for path in path_list:
        assert keys.is_locked(path) is reference(pattern_list, path), (pattern_list, path)


def deep_document(depth: int, width: int, seed: int = 0) -> dict[str, object]:
    """Nested objects ``depth`` deep with ``width`` string leaves at each level."""
    rng = random.Random(seed)
    names = ["a", "b", "id", "title", "x", "0", "1"]
    node: dict[str, object] = {}
    root = node
    for _level in range(depth - 1):
        for _ in range(width):
            node[rng.choice(names) + str(rng.randrange(3))] = "text"
        child: dict[str, object] = {}
        node[rng.choice(names)] = child
        node = child
    node["x"] = "leaf"
    return root


def test_document_order_answers_match_a_fresh_matcher_per_path() -> None:
    pattern_list = ["**.id*", "a.**.x", "*.b.**.title1", "title2", "**.0.**.x"]
    doc = deep_document(12, 3)
    shared = LockedKeys(pattern_list)
    for path, _text in iter_strings(doc):
        expected = reference(pattern_list, path)
        assert shared.is_locked(path) is expected
        assert LockedKeys(pattern_list).is_locked(path) is expected
