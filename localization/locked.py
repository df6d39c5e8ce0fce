"""``lockedKeys`` patterns: which key paths are copied verbatim instead of translated.

- A single-segment pattern (``id``, ``*_url``) matches that segment at any depth
  (``id``, ``author.id``, ``steps.3.id``): it is the same as ``**.id``.
- A dotted pattern is matched from the root: ``*`` is exactly one segment, ``**`` any number
  of segments (``metadata.**``, ``steps.*.slug``); a segment may use ``*`` as a wildcard
  inside it (``title_*``; with a ``*``, the segment is an ``fnmatch`` pattern, so ``?`` and
  ``[...]`` are wildcards too; without one it is compared literally).
- A match locks the whole subtree below it.

How: all patterns together are one automaton. Its states are the nodes of a trie of the
patterns (consecutive ``**`` collapsed into one, a bare ``name`` read as ``**.name``), so
patterns that share a beginning share states; a ``**`` node stays on any segment. Reading a
path segment by segment moves a set of states; sets are interned and every (set, segment)
move is remembered, so a move costs one dictionary lookup for all literal segments plus one
comparison per distinct wildcard segment of the set, and is computed once per document
rather than once per path. ``is_locked`` also keeps the states of the previous path's
prefixes: the paths of a document, asked in document order, share their prefixes, so each
object or array of the document is read about once. Nothing backtracks: the cost is at most
(nodes of the document) x (wildcard segments of the patterns) comparisons.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fnmatch import fnmatchcase

from localization.payload import Path

_DEAD = 0  # no pattern can match any more: nothing below is locked
_LOCKED = 1  # some pattern matched a prefix: everything below is locked
_ANY = "**"
_ONE = "*"


def _segment_matches(pattern: str, segment: str) -> bool:
    return fnmatchcase(segment, pattern) if "*" in pattern else pattern == segment


@dataclass
class _Node:
    """A node of the pattern trie: the patterns' segments read so far."""

    loop: bool = False  # reached by ``**``: stays on any segment
    end: bool = False  # a whole pattern read: locked
    many: int | None = None  # the ``**`` child, reached without reading a segment
    one: int | None = None  # the ``*`` child
    literal: dict[str, int] = field(default_factory=dict)
    wild: dict[str, int] = field(default_factory=dict)  # fnmatch segments (with a ``*``)


@dataclass
class _Moves:
    """The moves out of one set of nodes: one dictionary lookup for every literal segment,
    one comparison per distinct wildcard segment."""

    stay: list[int] = field(default_factory=list)
    any: list[int] = field(default_factory=list)
    literal: dict[str, list[int]] = field(default_factory=dict)
    wild: dict[str, list[int]] = field(default_factory=dict)


class LockedKeys:
    def __init__(self, patterns: list[str] | None) -> None:
        self._nodes = [_Node()]
        for pattern in patterns or []:
            self._add(pattern)
        self._any_pattern = bool(patterns)
        self.comparisons = 0  # moves computed plus wildcard comparisons: the matcher's cost
        self._ids: dict[frozenset[int], int] = {}
        self._moves: list[_Moves] = [_Moves(), _Moves()]  # by state id; none out of the ends
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
                child = (node.wild if "*" in part else node.literal).get(part)
            if child is None:
                child = len(nodes)
                nodes.append(_Node(loop=part == _ANY))
                if part == _ANY:
                    node.many = child
                elif part == _ONE:
                    node.one = child
                else:
                    (node.wild if "*" in part else node.literal)[part] = child
            at = child
        nodes[at].end = True

    def _closure(self, states: set[int]) -> set[int]:
        """Add what ``**`` reaches without reading a segment (one step: no ``**.**``)."""
        nodes = self._nodes
        states.update([m for i in states if (m := nodes[i].many) is not None])
        return states

    def _intern(self, states: set[int]) -> int:
        nodes = self._nodes
        if not states:
            return _DEAD
        if any(nodes[i].end for i in states):
            return _LOCKED
        key = frozenset(states)
        found = self._ids.get(key)
        if found is not None:
            return found
        moves = _Moves()
        for i in states:
            node = nodes[i]
            if node.loop:
                moves.stay.append(i)
            if node.one is not None:
                moves.any.append(node.one)
            for segment, child in node.literal.items():
                moves.literal.setdefault(segment, []).append(child)
            for segment, child in node.wild.items():
                moves.wild.setdefault(segment, []).append(child)
        self._ids[key] = len(self._moves)
        self._moves.append(moves)
        return len(self._moves) - 1

    def _step(self, state: int, segment: str) -> int:
        if state in (_DEAD, _LOCKED):
            return state
        known = self._memo.get((state, segment))
        if known is not None:
            return known
        moves = self._moves[state]
        self.comparisons += 1 + len(moves.wild)
        following = set(moves.stay)
        following.update(moves.any)
        following.update(moves.literal.get(segment, ()))
        for pattern, targets in moves.wild.items():
            if _segment_matches(pattern, segment):
                following.update(targets)
        result = self._intern(self._closure(following))
        self._memo[(state, segment)] = result
        return result

    def is_locked(self, path: Path) -> bool:
        trail, previous = self._trail, self._path
        common, limit = 0, min(len(trail) - 1, len(path))  # len(trail) - 1: segments read
        while common < limit and previous[common] == path[common]:
            common += 1
        del trail[common + 1 :]
        state = trail[-1]
        for segment in path[common:]:
            if state in (_DEAD, _LOCKED):
                break
            state = self._step(state, segment)
            trail.append(state)
        self._path = path
        return state == _LOCKED
