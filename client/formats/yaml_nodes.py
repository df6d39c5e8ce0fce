"""What the nodes of a YAML locale file mean, for the reader and the writer alike
(``client.formats.yaml``): loading with one-line errors, the Rails locale root, the keys of a
node, aliases, plurals, translatable values and the comment lines above a key."""

from __future__ import annotations

import re
import warnings
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError, YAMLWarning

from client.formats.model import FormatError
from localization.plurals import CATEGORIES, plural_categories

SYMBOL = re.compile(r":[A-Za-z_][A-Za-z0-9_]*[?!]?")


def round_trip() -> YAML:
    """ruamel.yaml's round trip, keeping each value's quotes."""
    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.width = 4096  # never fold a long line the source wrote on one line
    return yaml


def load_yaml(text: str, what: str = "YAML") -> Any:
    """The document of ``text``; ``FormatError`` with a one-line message if it is not YAML."""
    try:
        with warnings.catch_warnings():  # a reused anchor is the file's business, not stderr's
            warnings.simplefilter("ignore", YAMLWarning)
            return round_trip().load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = (exc.problem or exc.context or "syntax error").splitlines()[0]
        raise FormatError(f"invalid {what}: {problem}{where}") from None
    except (YAMLError, ValueError, TypeError, RecursionError) as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise FormatError(f"invalid {what}: {message}") from None


def _norm(tag: str) -> str:
    return tag.strip().lower().replace("_", "-")


def locale_root(data: Any, locale: str) -> tuple[Any, Any]:
    """The Rails root key (or None) and the mapping that holds the keys."""
    if isinstance(data, CommentedMap) and len(data) == 1:
        (key,) = data.keys()
        if isinstance(key, str) and _norm(key) == _norm(locale):
            return key, data[key]
    return None, data


def join_key(prefix: str, key: Any) -> str:
    return f"{prefix}.{key}" if prefix else str(key)


def is_translatable(value: Any) -> bool:
    return isinstance(value, str) and value != "" and not SYMBOL.fullmatch(value)


def is_plural(node: Any, locale: str) -> bool:
    if not isinstance(node, CommentedMap) or "other" not in node:
        return False
    if not all(k in CATEGORIES and isinstance(v, str) for k, v in node.items()):
        return False
    return len(node) > 1 or plural_categories(locale) == ("other",)


def own_items(node: Any) -> list[tuple[Any, Any]]:
    """The keys and values of a mapping (not those a ``<<`` merge brings), or the items of a
    sequence with their indexes."""
    if isinstance(node, CommentedMap):
        return list(node.non_merged_items())
    return list(enumerate(node))


def is_alias(value: Any, seen: set[int]) -> bool:
    """Whether ``value`` is a collection met before in the document (an ``*alias`` of it):
    its keys are those of the anchor, and it is written as it is."""
    if not isinstance(value, (CommentedMap, CommentedSeq)):
        return False
    if id(value) in seen:
        return True
    seen.add(id(value))
    return False


def is_flow(node: Any) -> bool:
    return bool(node.fa.flow_style())


def comment_lines(lines: list[str], line: int, col: int) -> range:
    """The comment lines directly above line ``line``, not indented deeper than ``col``."""
    top = line
    while top > 0:
        text = lines[top - 1]
        stripped = text.lstrip(" ")
        if not stripped.startswith("#") or len(text) - len(stripped) > col:
            break
        top -= 1
    return range(top, line)
