"""``lockedKeys`` patterns: the documented semantics, pinned against the original recursive
matcher (copied here as the reference), and a cost that stays polynomial on patterns built
to make a backtracking matcher explode."""

from __future__ import annotations

import random
from fnmatch import fnmatchcase
from functools import cache

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from localization import locked
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


def memoized_reference(patterns: list[str], path: Path) -> bool:
    """The reference's recursion on indexes, memoized: polynomial, for deep inputs."""

    def one(parts: tuple[str, ...]) -> bool:
        @cache
        def prefix(p: int, s: int) -> bool:
            if p == len(parts):
                return True
            if parts[p] == "**":
                return any(prefix(p + 1, i) for i in range(s, len(path) + 1))
            return s < len(path) and _ref_segment(parts[p], path[s]) and prefix(p + 1, s + 1)

        return prefix(0, 0)

    return any(
        one(("**", *parts) if len(parts) == 1 and parts[0] != "**" else parts)
        for parts in (tuple(pattern.split(".")) for pattern in patterns)
    )


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
    # Patterns sharing a beginning, ends on the way, runs of ** (the matcher merges and
    # prunes these: the answers must not change).
    (["a.**.b", "a.**.b.**.c"], ("a", "x", "b"), True),
    (["a.**.b.**.c", "a.**.b.x"], ("a", "b", "y", "x"), False),
    (["a.**.b.**.c", "a.**.b.x"], ("a", "b", "x"), True),
    (["a.**.b.**.c", "a.**.b.x"], ("a", "b", "b", "x"), True),
    (["**.a.**.b.**.c"], ("a", "b", "a", "c"), True),
    (["**.a.**.b.**.c"], ("b", "a", "c", "b"), False),
    (["**.a.*.**.b"], ("a", "b"), False),
    (["**.a.*.**.b"], ("a", "x", "b"), True),
    (["**.a.a.a"], ("a", "a", "x", "a", "a", "a"), True),
    (["**.a.a.a"], ("a", "a", "x", "a", "a"), False),
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
paths = st.lists(st.sampled_from(SEGMENTS), max_size=8).map(tuple)
patterns = st.lists(st.sampled_from(PATTERN_SEGMENTS), min_size=1, max_size=7).map(".".join)
SAME = settings(
    derandomize=True,
    max_examples=300,
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
        expected = reference(pattern_list, path)
        assert keys.is_locked(path) is expected, (pattern_list, path)
        assert memoized_reference(pattern_list, path) is expected


@SAME
@given(
    st.lists(
        st.lists(st.sampled_from(["a", "b", "*", "**", "a*"]), min_size=1, max_size=8).map(
            ".".join
        ),
        min_size=1,
        max_size=3,
    ),
    st.lists(st.lists(st.sampled_from(["a", "b"]), max_size=10).map(tuple), max_size=10),
)
def test_same_answers_on_repetitive_paths(pattern_list: list[str], path_list: list[Path]) -> None:
    """Two letters, long paths: many ways to match, the cases the pruning of subsumed
    states is about."""
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


def test_forgetting_remembered_states_changes_no_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past ``MAX_STATES`` sets the matcher forgets them but for the current path's."""
    monkeypatch.setattr(locked, "MAX_STATES", 3)
    pattern_list = ["**.id*", "a.**.x", "*.b.**.title1", "title2", "**.0.**.x", "**.a.*.**.b"]
    doc = deep_document(12, 3, seed=5)
    keys = LockedKeys(pattern_list)
    answers = [keys.is_locked(path) for path, _text in iter_strings(doc)]
    assert answers == [reference(pattern_list, path) for path, _text in iter_strings(doc)]
    assert any(answers) and not all(answers)
    assert len(keys._states) <= 3 + 2 + 12  # forgotten at every call, less one path's worth


class Exploded(Exception):
    pass


def count_comparisons(monkeypatch: pytest.MonkeyPatch, budget: int) -> list[int]:
    """The original matcher made every segment comparison through
    ``locked._segment_matches``: counting those calls and giving up past ``budget`` turns
    its hang into a plain failure, with no clock involved. (The new matcher compiles its
    wildcards and counts its own work in ``LockedKeys.comparisons``.)"""
    original = getattr(locked, "_segment_matches", None)
    calls = [0]

    def counting(pattern_segment: str, segment: str) -> bool:
        calls[0] += 1
        if calls[0] > budget:
            raise Exploded(f"more than {budget} segment comparisons")
        assert original is not None
        return bool(original(pattern_segment, segment))

    monkeypatch.setattr(locked, "_segment_matches", counting, raising=False)
    return calls


_ANY = "**"
PATHOLOGICAL = [
    # (pattern, path): repeated ** that a backtracking matcher tries in every combination.
    ("**.**.**.**.**.**.**.x", ("a",) * 32),
    ("**.a*.**.a*.**.a*.**.a*.**.a*.**.a*.**.x", ("a",) * 32),
    ("**.a.**.a.**.a.**.a.**.a.**.a.**.x", ("a",) * 32),
    ("**.*.**.*.**.*.**.*.**.*.**.*.**.*.**.x", ("a",) * 32),
]


@pytest.mark.parametrize(("pattern", "path"), PATHOLOGICAL)
def test_repeated_double_stars_cost_a_polynomial_number_of_comparisons(
    pattern: str, path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    budget = len(path) * len(pattern.split("."))  # a comparison per (segment, state) at most
    calls = count_comparisons(monkeypatch, budget)
    keys = LockedKeys([pattern])
    assert keys.is_locked(path) is False
    assert keys.is_locked((*path[:-1], "x")) is True
    assert calls[0] <= budget
    assert keys.comparisons <= budget


def test_many_long_patterns_on_a_deep_document_cost_states_times_nodes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Many long ``**`` patterns with distinct wildcards, on a document 32 deep whose keys
    they keep matching: each object or array is read once, each read costs at most one
    comparison per wildcard state (and one for all literal ones)."""
    pattern_list = [".".join([_ANY, f"k{i}*"] * 12 + ["never"]) for i in range(40)]
    pattern_list += [".".join([_ANY, f"k{i}*"] * 3 + ["*_1"]) for i in range(40)]
    rng = random.Random(7)
    doc: dict[str, object] = {}
    node = doc
    for _level in range(31):
        for _ in range(6):
            node[f"k{rng.randrange(40)}_{rng.randrange(5)}"] = "text"
        child: dict[str, object] = {}
        node[f"k{rng.randrange(40)}"] = child
        node = child
    node["never"] = "leaf"
    paths = [path for path, _text in iter_strings(doc)]
    expected = [memoized_reference(pattern_list, path) for path in paths]
    prefixes = {path[:k] for path in paths for k in range(1, len(path) + 1)}
    wildcard_states = sum(1 for p in pattern_list for seg in p.split(".") if "*" in seg)
    budget = len(prefixes) * (1 + wildcard_states)
    calls = count_comparisons(monkeypatch, budget)
    keys = LockedKeys(pattern_list)
    assert [keys.is_locked(path) for path in paths] == expected
    assert calls[0] <= budget and keys.comparisons <= budget
    assert 0 < sum(expected) < len(expected) / 2  # some wildcard chains do match
