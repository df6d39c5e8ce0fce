"""``lockedKeys`` patterns: which key paths are copied verbatim instead of translated.

- A single-segment pattern (``id``, ``*_url``) matches that segment at any depth
  (``id``, ``author.id``, ``steps.3.id``): it is the same as ``**.id``.
- A dotted pattern is matched from the root: ``*`` is exactly one segment, ``**`` any number
  of segments (``metadata.**``, ``steps.*.slug``); a segment may use ``*`` as a wildcard
  inside it (``title_*``; with a ``*``, the segment is an ``fnmatch`` pattern, so ``?`` and
  ``[...]`` are wildcards too; without one it is compared literally).
- A match locks the whole subtree below it.

How: all patterns together are one automaton, nothing backtracks. Its states are the nodes
of a trie of the patterns (consecutive ``**`` collapsed, a bare ``name`` read as
``**.name``); a ``**`` node stays on any segment. Reading a path moves a set of nodes, in
which a node that a ``**`` node further down the same unbranched run subsumes is dropped
(``**.a.**.b`` keeps one node, not one per way to get there). Sets are interned and moves
remembered, a segment that matches nothing in a set costs one lookup, and ``is_locked``
resumes from the previous path's common prefix: asked in document order (as ``prepare()``
does), each object or array of a document is read once. Reading one segment costs one
dictionary lookup per node with literal children, plus one comparison per wildcard segment
(``title_*``) that may match it: wildcards with a literal start or end are only tried on
segments that have it. So a document costs at most (its objects, arrays and strings) x
(the live nodes of a set: at most the patterns' segments) steps, polynomial, and in
practice about one step per object or array. ``comparisons`` counts them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from fnmatch import translate

from localization.payload import Path

_DEAD = 0  # no pattern can match any more: nothing below is locked
_LOCKED = 1  # some pattern matched a prefix: everything below is locked
_ANY = "**"
_ONE = "*"

Match = Callable[[str], object]  # a compiled wildcard segment: not None when it matches
_Indexed = dict[int, dict[str, list[tuple[Match, int]]]]  # length -> literal end -> wildcards


def _is_wildcard(segment: str) -> bool:
    """With a ``*`` a segment is an ``fnmatch`` pattern; without one, a literal."""
    return "*" in segment


@dataclass(frozen=True)
class PatternLimits:
    """What a request's patterns may ask of the matcher. Its cost grows with the dotted
    patterns alive at once (each follows the path) and with the wildcard segments tried on
    every segment; bare names cost one lookup whatever their number. At these limits the
    worst document a request may send (20,000 strings, 32 levels deep, 640,000 objects)
    takes a few seconds (bench/locked_keys.py), not hours."""

    patterns: int = 1_000
    dotted: int = 20  # patterns with more than one segment
    segments: int = 16  # per pattern
    wildcards: int = 8  # segments with a wildcard inside (``title_*``), in all patterns


def pattern_problem(patterns: list[str], limits: PatternLimits) -> str | None:
    """Why ``patterns`` ask more than ``limits`` allow, or None."""
    if len(patterns) > limits.patterns:
        return f"more than {limits.patterns} patterns"
    dotted = wildcards = 0
    for pattern in patterns:
        segments = pattern.split(".")
        if len(segments) > limits.segments:
            return f"'{pattern[:40]}' has more than {limits.segments} segments"
        dotted += len(segments) > 1
        wildcards += sum(_is_wildcard(seg) and seg not in (_ANY, _ONE) for seg in segments)
    if dotted > limits.dotted:
        return f"more than {limits.dotted} patterns with a dot (bare names are not limited)"
    if wildcards > limits.wildcards:
        return (
            f"more than {limits.wildcards} segments with a wildcard inside them "
            "(such as title_*; a whole * or ** segment does not count)"
        )
    return None


def _literal_ends(pattern: str) -> tuple[str, str]:
    """The literal text a wildcard segment starts and ends with: a segment it matches
    starts and ends with them (``title_*``: ``title_``, ````; ``*_url``: ````, ``_url``)."""
    start = 0
    while start < len(pattern) and pattern[start] not in "*?[":
        start += 1
    end = len(pattern)
    while end > start and pattern[end - 1] not in "*?[]":
        end -= 1
    return pattern[:start], pattern[end:]


class _Node:
    """A node of the pattern trie: the patterns' segments read so far."""

    __slots__ = ("always", "end", "ends", "literal", "loop", "many", "one", "starts", "wild")

    def __init__(self, loop: bool = False) -> None:
        self.loop = loop  # reached by ``**``: stays on any segment
        self.end = False  # a whole pattern read: locked
        self.many: int | None = None  # the ``**`` child, reached without reading a segment
        self.one: int | None = None  # the ``*`` child
        self.literal: dict[str, int] = {}
        self.wild: dict[str, int] = {}  # fnmatch segments (with a ``*``)
        # The wildcard children, compiled (``_compile``): those with a literal start (or
        # end) are only tried on segments that start (or end) with it, the others on all.
        self.starts: _Indexed = {}
        self.ends: _Indexed = {}
        self.always: list[tuple[Match, int]] = []

    def children(self) -> list[int]:
        single = [child for child in (self.many, self.one) if child is not None]
        return single + list(self.literal.values()) + list(self.wild.values())


@dataclass
class _State:
    """A set of trie nodes, with what a move out of it needs: a dictionary lookup per node
    with literal children, a comparison per wildcard child that the segment may match."""

    nodes: frozenset[int]
    stay: list[int]  # ``**`` nodes
    any: list[int]  # children of ``*``
    literal: list[dict[str, int]]  # of the nodes with literal children
    wild: list[_Node]  # the nodes with wildcard children
    default: int = -1  # where a segment that matches no literal or wildcard leads, once known


# Sets of nodes remembered at most (then forgotten, but for the current path's): in the
# worst case every object of a document leads to a new set, each as large as the patterns.
MAX_STATES = 20_000


class LockedKeys:
    def __init__(self, patterns: list[str] | None) -> None:
        self._nodes = [_Node()]
        for pattern in patterns or []:
            self._add(pattern)
        self._any_pattern = bool(patterns)
        self._compile()
        nodes = self._nodes
        self._end = [node.end for node in nodes]
        self._many = [node.many for node in nodes]
        self._chain, self._position = self._chains()
        self._loop_at = [
            (self._chain[i], self._position[i]) if node.loop else None
            for i, node in enumerate(nodes)
        ]
        self.comparisons = 0  # moves computed plus wildcard comparisons: the matcher's cost
        self._ids: dict[frozenset[int], int] = {}
        self._states = [_State(frozenset(), [], [], [], []) for _ in (_DEAD, _LOCKED)]
        self._memo: dict[tuple[int, str], int] = {}
        # The previous path, and the state after each of its prefixes that was read.
        self._path: Path = ()
        self._trail: list[int] = [self._intern(self._closure({0}))]

    def __bool__(self) -> bool:
        return self._any_pattern

    def _add(self, pattern: str) -> None:
        parts = pattern.split(".")
        if len(parts) == 1 and parts[0] != _ANY:
            parts = [_ANY, parts[0]]
        nodes, at = self._nodes, 0
        for i, part in enumerate(parts):
            if part == _ANY and i and parts[i - 1] == _ANY:
                continue  # **.** is **
            node = nodes[at]
            if part == _ANY:
                child = node.many
            elif part == _ONE:
                child = node.one
            else:
                child = (node.wild if _is_wildcard(part) else node.literal).get(part)
            if child is None:
                child = len(nodes)
                nodes.append(_Node(loop=part == _ANY))
                if part == _ANY:
                    node.many = child
                elif part == _ONE:
                    node.one = child
                else:
                    (node.wild if _is_wildcard(part) else node.literal)[part] = child
            at = child
        nodes[at].end = True

    def _compile(self) -> None:
        compiled: dict[str, Match] = {}
        for node in self._nodes:
            for pattern, child in node.wild.items():
                match = compiled.get(pattern)
                if match is None:
                    match = compiled[pattern] = re.compile(translate(pattern)).match
                start, end = _literal_ends(pattern)
                if start or end:
                    table = node.starts if start else node.ends
                    fixed = start or end
                    table.setdefault(len(fixed), {}).setdefault(fixed, []).append((match, child))
                else:
                    node.always.append((match, child))

    def _chains(self) -> tuple[list[int], list[int]]:
        """The chain of every node and its position in it, where a chain is a run of nodes
        each the only child of the one before: in a chain, what a node matches is also
        matched by any ``**`` node further down. (A pattern's end on the way does not
        matter: the nodes below it are reached through it, and reaching it locks.)"""
        chain, position = [0] * len(self._nodes), [0] * len(self._nodes)
        for i, node in enumerate(self._nodes):  # parents come before their children
            children = node.children()
            for child in children:
                if len(children) == 1:
                    chain[child], position[child] = chain[i], position[i] + 1
                else:
                    chain[child], position[child] = child, 0
        return chain, position

    def _closure(self, states: set[int]) -> set[int]:
        """Add what ``**`` reaches without reading a segment (one step: no ``**.**``)."""
        many = self._many
        states.update([m for i in states if (m := many[i]) is not None])
        return states

    def _intern(self, states: set[int]) -> int:
        """The id of a set of nodes; _LOCKED if one ends a pattern, _DEAD if it is empty.

        Nodes that a ``**`` node further down their chain subsumes are dropped first, so
        ``**.a.**.b.**.c`` keeps one node per pattern, not one per way to get there."""
        if not states:
            return _DEAD
        end, loop_at = self._end, self._loop_at
        deepest: dict[int, int] = {}
        for i in states:
            if end[i]:
                return _LOCKED
            at = loop_at[i]
            if at is not None and at[1] > deepest.get(at[0], -1):
                deepest[at[0]] = at[1]
        if deepest:
            chain, position = self._chain, self._position
            states = {i for i in states if position[i] >= deepest.get(chain[i], -1)}
        key = frozenset(states)
        found = self._ids.get(key)
        if found is None:
            found = self._ids[key] = len(self._states)
            nodes = [self._nodes[i] for i in key]
            self._states.append(
                _State(
                    nodes=key,
                    stay=[i for i in key if loop_at[i] is not None],
                    any=[node.one for node in nodes if node.one is not None],
                    literal=[node.literal for node in nodes if node.literal],
                    wild=[node for node in nodes if node.wild],
                )
            )
        return found

    def _forget(self) -> None:
        """Forget the remembered sets and moves, but for those of the current path."""
        states = self._states
        self._ids, self._memo, self._states = {}, {}, states[:2]
        self._trail = [
            state if state in (_DEAD, _LOCKED) else self._intern(set(states[state].nodes))
            for state in self._trail
        ]

    def _default(self, state: int) -> int:
        """Where ``state`` goes on a segment that no literal or wildcard of it matches."""
        moves = self._states[state]
        if moves.default < 0:
            moves.default = self._intern(self._closure({*moves.stay, *moves.any}))
        return moves.default

    def _step(self, state: int, segment: str) -> int:
        known = self._memo.get((state, segment))
        if known is not None:
            return known
        moves = self._states[state]
        hits = [table[segment] for table in moves.literal if segment in table]
        tried = 0
        for node in moves.wild:
            candidates = list(node.always)
            for length, table in node.starts.items():
                candidates += table.get(segment[:length], ())
            for length, table in node.ends.items():
                candidates += table.get(segment[-length:], ())
            tried += len(candidates)
            hits += [child for match, child in candidates if match(segment) is not None]
        self.comparisons += 1 + tried
        if hits:
            result = self._intern(self._closure({*moves.stay, *moves.any, *hits}))
        else:
            result = self._default(state)
            if not tried:
                return result  # as cheap as a lookup: not worth remembering
        self._memo[(state, segment)] = result
        return result

    def is_locked(self, path: Path) -> bool:
        if len(self._states) > MAX_STATES:
            self._forget()
        trail, previous = self._trail, self._path
        common, limit = 0, min(len(trail) - 1, len(path))  # len(trail) - 1: segments read
        while common < limit and previous[common] == path[common]:
            common += 1
        del trail[common + 1 :]
        state = trail[-1]
        states = self._states
        for segment in path[common:]:
            if state == _DEAD or state == _LOCKED:
                break
            moves = states[state]
            if moves.wild or moves.default < 0:
                state = self._step(state, segment)
            else:
                for table in moves.literal:
                    if segment in table:
                        state = self._step(state, segment)
                        break
                else:  # the common case, inline: nothing matched
                    self.comparisons += 1
                    state = moves.default
            trail.append(state)
        self._path = path
        return state == _LOCKED
