"""``lockedKeys`` patterns: which key paths are copied verbatim instead of translated.

- A single-segment pattern (``id``, ``*_url``) matches that segment at any depth
  (``id``, ``author.id``, ``steps.3.id``).
- A dotted pattern is matched from the root: ``*`` is exactly one segment, ``**`` any number
  of segments (``metadata.**``, ``steps.*.slug``); a segment may use ``*`` as a wildcard
  inside it (``title_*``).
- A match locks the whole subtree below it.
"""

from __future__ import annotations

from fnmatch import fnmatchcase

from localization.payload import Path


def _segment_matches(pattern: str, segment: str) -> bool:
    return fnmatchcase(segment, pattern) if "*" in pattern else pattern == segment


def _prefix_matches(pattern: tuple[str, ...], path: Path) -> bool:
    """True when ``pattern`` matches some prefix of ``path`` (so its subtree is locked)."""
    if not pattern:
        return True
    head, rest = pattern[0], pattern[1:]
    if head == "**":
        return any(_prefix_matches(rest, path[i:]) for i in range(len(path) + 1))
    if not path:
        return False
    return _segment_matches(head, path[0]) and _prefix_matches(rest, path[1:])


class LockedKeys:
    def __init__(self, patterns: list[str] | None) -> None:
        self._anywhere: list[str] = []
        self._rooted: list[tuple[str, ...]] = []
        for pattern in patterns or []:
            parts = tuple(pattern.split("."))
            if len(parts) == 1 and parts[0] != "**":
                self._anywhere.append(parts[0])
            else:
                self._rooted.append(parts)

    def __bool__(self) -> bool:
        return bool(self._anywhere or self._rooted)

    def is_locked(self, path: Path) -> bool:
        for name in self._anywhere:
            if any(_segment_matches(name, segment) for segment in path):
                return True
        return any(_prefix_matches(pattern, path) for pattern in self._rooted)
