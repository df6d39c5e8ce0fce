"""The first half of writing a YAML target (``client.formats.yaml``): the source keys the
target drops are cut out of the source text with their lines, so that the comment lines
directly above a dropped key go with it and every other line stays as the source wrote it.
The cut text is loaded again and used only if it holds exactly the source minus those keys;
otherwise the keys are dropped in the document instead (``client.formats.yaml_output``)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from client.formats.model import Entry, FormatError
from client.formats.yaml_nodes import (
    comment_lines,
    is_alias,
    is_flow,
    is_plural,
    is_translatable,
    join_key,
    load_yaml,
    locale_root,
    own_items,
)


def _key_lines(lines: list[str], line: int, col: int) -> range:
    """The lines of the block mapping key at ``line``/``col`` and of its value, with the
    comment lines directly above it; blank lines and comments of the next key stay."""
    end = line + 1
    while end < len(lines):
        text = lines[end]
        stripped = text.lstrip(" ")
        indent = len(text) - len(stripped)
        if stripped and not stripped.startswith("#"):
            if indent < col or (indent == col and not re.match(r"-( |$)", stripped)):
                break
        end += 1
    while end > line + 1:
        text = lines[end - 1]
        stripped = text.lstrip(" ")
        if stripped and not (stripped.startswith("#") and len(text) - len(stripped) <= col):
            break
        end -= 1
    return range(comment_lines(lines, line, col).start, end)


def _tidy(lines: list[str], dropped: set[int]) -> set[int]:
    """``dropped`` and, where a run of dropped lines leaves two blank lines (or a blank line
    first under its parent key), the blank line after it."""
    out = set(dropped)
    for start in sorted(dropped):
        if start - 1 in dropped:
            continue
        end = start
        while end in dropped:
            end += 1
        if end >= len(lines) or lines[end].strip():
            continue
        before = lines[start - 1] if start > 0 else ""
        indent = len(lines[start]) - len(lines[start].lstrip(" "))
        if not before.strip() or len(before) - len(before.lstrip(" ")) < indent:
            out.add(end)
    return out


@dataclass
class Plan:
    """What a target does to the source: the plural entries' keys, and the block mapping
    keys to drop with their lines."""

    plurals: set[str] = field(default_factory=set)
    lines: set[int] = field(default_factory=set)
    dropped: set[str] = field(default_factory=set)


def plan_drops(
    node: Any,
    prefix: str,
    entries: dict[str, Entry],
    categories: tuple[str, ...] | None,
    source_locale: str,
    lines: list[str],
    plan: Plan,
    seen: set[int],
) -> bool:
    """Record what the target drops below ``node``; whether anything of it stays."""
    if not isinstance(node, (CommentedMap, CommentedSeq)):
        return True
    if not node:
        return True
    block = isinstance(node, CommentedMap) and not is_flow(node)
    kept = False
    for key, value in own_items(node):
        path = join_key(prefix, key)
        if is_alias(value, seen):
            stays = True
        elif is_plural(value, source_locale):
            plan.plurals.add(path)
            stays = path in entries
            if stays and categories is not None and not is_flow(value):
                for cat in value:
                    if cat not in categories:
                        _drop(value, cat, lines, plan, f"{path}.{cat}")
        elif isinstance(value, (CommentedMap, CommentedSeq)):
            stays = plan_drops(value, path, entries, categories, source_locale, lines, plan, seen)
        else:
            stays = not is_translatable(value) or path in entries
        kept = kept or stays
        if not stays and block and isinstance(node, CommentedMap):
            _drop(node, key, lines, plan, path)
    return kept


def _drop(node: CommentedMap, key: Any, lines: list[str], plan: Plan, path: str) -> None:
    line, col = node.lc.key(key)
    if lines[line][:col].strip():
        return  # shares its line (a sequence item's first key): dropped in the document
    plan.lines.update(_key_lines(lines, line, col))
    plan.dropped.add(path)


def _same_leaves(pruned: Any, base: Any, dropped: set[str]) -> bool:
    """Whether the pruned document is the source minus the dropped keys."""

    def leaves(node: Any, prefix: str, out: dict[str, Any], seen: set[int]) -> dict[str, Any]:
        if isinstance(node, (CommentedMap, CommentedSeq)):
            for key, value in own_items(node):
                if not is_alias(value, seen):
                    leaves(value, join_key(prefix, key), out, seen)
        else:
            out[prefix] = node
        return out

    expected = {
        path: value
        for path, value in leaves(base, "", {}, set()).items()
        if not any(path == d or path.startswith(d + ".") for d in dropped)
    }
    return leaves(pruned, "", {}, set()) == expected


def pruned(source: Any, lines: list[str], plan: Plan, source_locale: str) -> Any:
    """The document to write the target into: the source text without the lines ``plan``
    drops, loaded again, or ``source`` itself when nothing is cut or the cut went wrong."""
    if not plan.lines:
        return source
    dropped = _tidy(lines, plan.lines)
    text = "\n".join(line for n, line in enumerate(lines) if n not in dropped)
    try:
        candidate = load_yaml(text)
    except FormatError:
        candidate = None
    base = locale_root(source, source_locale)[1]
    if candidate is not None and _same_leaves(
        locale_root(candidate, source_locale)[1], base, plan.dropped
    ):
        return candidate
    return source  # the line surgery went wrong: the keys are dropped in the document instead
