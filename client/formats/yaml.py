"""YAML locale files, Rails style (``en: {...}``) or plain, through ruamel.yaml's round trip.

A file whose root is a single key naming its locale (``en:``, ``pt-BR:``, ``en_US:``) is Rails
style: that key is the locale marker, not part of the keys, and a target is written under its
own locale (``de:``, spelled with the source's separator). Any other root mapping is plain YAML.

Keys: the path of mapping keys below the root (or the locale key) joined with ``.``, sequence
items by index (``date.day_names.0``); a file where two paths give the same key is refused. A
mapping whose keys are all CLDR categories (``one``, ``other``...), ``other`` among them, and
whose values are strings, is one plural entry (a lone ``other:`` only in a locale that has no
other category, Japanese); a target gets exactly ``plural_categories(target)`` (the source
locale's own file keeps the categories it has, ``zero`` in English say). Strings are
translatable except the empty string and Ruby symbols (``:year`` in ``date.order``); numbers,
booleans, null and dates are entries that are not translatable and that a target keeps. The
comment lines directly above a key (no blank line between, not indented deeper than the key)
become ``Entry.comment``. An ``*alias`` of a mapping or sequence has no keys of its own (they are
its ``&anchor``'s, as are those a ``<<`` merge brings) and is written as it is.

A target is the source document, edited in place: its comments, key order, quoting style of
each value, indentation and null spelling stay. A source key the catalog lacks goes with the
comment lines directly above it (other comments stay where they are); a mapping that loses all
its keys goes too; a sequence keeps its length, with null for an item the catalog lacks. New
plural categories come before ``other``, quoted as it is; a new plain text that YAML 1.1 readers
(Rails, PyYAML) would take for another type (``No``, ``yes``, ``1:20``) is quoted.
"""

from __future__ import annotations

import io
import re
import warnings
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError, YAMLWarning
from ruamel.yaml.representer import RoundTripRepresenter
from ruamel.yaml.scalarstring import (
    DoubleQuotedScalarString,
    ScalarString,
    SingleQuotedScalarString,
)
from yaml.nodes import ScalarNode
from yaml.resolver import Resolver

from client.formats.model import Catalog, Entry, FileFormat, FormatError
from localization.plurals import CATEGORIES, plural_categories

SYMBOL = re.compile(r":[A-Za-z_][A-Za-z0-9_]*[?!]?")
# YAML 1.1, as Rails (Psych) and PyYAML read: ``yes``, ``No``, ``on``, ``1:20`` are not strings
YAML_11 = Resolver()
STR_TAG = "tag:yaml.org,2002:str"
# what only a double-quoted scalar can hold: control characters, \r, the BOM, and the line
# breaks of YAML 1.1 (NEL, LS, PS) that ruamel writes raw in other styles
RAW_UNSAFE = re.compile(
    "[^\t\n\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff]"
)


class _TildeRepresenter(RoundTripRepresenter):
    pass


class _NullRepresenter(RoundTripRepresenter):
    pass


def _null_as(spelling: str) -> Any:
    def represent(representer: RoundTripRepresenter, _data: None) -> Any:
        return representer.represent_scalar("tag:yaml.org,2002:null", spelling)

    return represent


_TildeRepresenter.add_representer(type(None), _null_as("~"))
_NullRepresenter.add_representer(type(None), _null_as("null"))


def _yaml() -> YAML:
    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.width = 4096  # never fold a long line the source wrote on one line
    return yaml


def _load(text: str, what: str = "YAML") -> Any:
    try:
        with warnings.catch_warnings():  # a reused anchor is the file's business, not stderr's
            warnings.simplefilter("ignore", YAMLWarning)
            return _yaml().load(text)
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


def _root(data: Any, locale: str) -> tuple[Any, Any]:
    """The Rails root key (or None) and the mapping that holds the keys."""
    if isinstance(data, CommentedMap) and len(data) == 1:
        (key,) = data.keys()
        if isinstance(key, str) and _norm(key) == _norm(locale):
            return key, data[key]
    return None, data


def _join(prefix: str, key: Any) -> str:
    return f"{prefix}.{key}" if prefix else str(key)


def _translatable(value: Any) -> bool:
    return isinstance(value, str) and value != "" and not SYMBOL.fullmatch(value)


def _is_plural(node: Any, locale: str) -> bool:
    if not isinstance(node, CommentedMap) or "other" not in node:
        return False
    if not all(k in CATEGORIES and isinstance(v, str) for k, v in node.items()):
        return False
    return len(node) > 1 or plural_categories(locale) == ("other",)


def _own(node: Any) -> list[tuple[Any, Any]]:
    """The keys and values of a mapping (not those a ``<<`` merge brings), or the items of a
    sequence with their indexes."""
    if isinstance(node, CommentedMap):
        return list(node.non_merged_items())
    return list(enumerate(node))


def _alias(value: Any, seen: set[int]) -> bool:
    """Whether ``value`` is a collection met before in the document (an ``*alias`` of it):
    its keys are those of the anchor, and it is written as it is."""
    if not isinstance(value, (CommentedMap, CommentedSeq)):
        return False
    if id(value) in seen:
        return True
    seen.add(id(value))
    return False


def _flow(node: Any) -> bool:
    return bool(node.fa.flow_style())


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _comment_lines(lines: list[str], line: int, col: int) -> range:
    """The comment lines directly above line ``line``, not indented deeper than ``col``."""
    top = line
    while top > 0:
        text = lines[top - 1]
        stripped = text.lstrip(" ")
        if not stripped.startswith("#") or len(text) - len(stripped) > col:
            break
        top -= 1
    return range(top, line)


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
    return range(_comment_lines(lines, line, col).start, end)


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
class _Plan:
    """What a target does to the source: the plural entries' keys, and the block mapping
    keys to drop with their lines."""

    plurals: set[str] = field(default_factory=set)
    lines: set[int] = field(default_factory=set)
    dropped: set[str] = field(default_factory=set)


def _indents(data: Any, lines: list[str]) -> tuple[int, int, int]:
    """The mapping indent, sequence indent and dash offset the file uses (ruamel's terms)."""
    mapping: int | None = None
    sequence: tuple[int, int] | None = None
    stack = [data]
    while stack and (mapping is None or sequence is None):
        node = stack.pop()
        if isinstance(node, CommentedMap) and not _flow(node):
            for key, value in _own(node):
                col = node.lc.key(key)[1]
                if isinstance(value, CommentedMap) and _own(value) and not _flow(value):
                    if mapping is None:
                        mapping = value.lc.key(_own(value)[0][0])[1] - col
                elif isinstance(value, CommentedSeq) and value and not _flow(value):
                    line, item_col = value.lc.item(0)
                    text = lines[line]
                    dash = len(text) - len(text.lstrip(" "))
                    if sequence is None and text.lstrip(" ").startswith("-"):
                        sequence = (item_col - col, dash - col)
                stack.append(value)
        elif isinstance(node, CommentedSeq):
            stack.extend(node)
    mapping = mapping if mapping and mapping > 0 else 2
    seq, offset = sequence if sequence and sequence[0] > 0 and sequence[1] >= 0 else (mapping, 0)
    return mapping, seq, offset


class YamlFormat(FileFormat):
    name = "yaml"

    def read(self, text: str, locale: str) -> Catalog:
        data = _load(text)
        catalog = Catalog(locale)
        if data is None:
            return catalog
        if not isinstance(data, CommentedMap):
            raise FormatError("a YAML locale file must hold a mapping at its root")
        _, base = _root(data, locale)
        lines = text.splitlines()
        seen: set[str] = set()

        def add(entry: Entry) -> None:
            if entry.key in seen:
                raise FormatError(f"two YAML values have the same key {entry.key!r}")
            seen.add(entry.key)
            catalog.entries.append(entry)

        def comment(node: CommentedMap, key: Any) -> str | None:
            if _flow(node):
                return None
            line, col = node.lc.key(key)
            found = [lines[n].strip()[1:] for n in _comment_lines(lines, line, col)]
            return "\n".join(c[1:] if c.startswith(" ") else c for c in found) or None

        met: set[int] = set()

        def walk(node: Any, prefix: str) -> None:
            for key, value in _own(node):
                if _alias(value, met):
                    continue
                path = _join(prefix, key)
                note = comment(node, key) if isinstance(node, CommentedMap) else None
                if _is_plural(value, locale):
                    forms = {c: str(value[c]) for c in CATEGORIES if c in value}
                    add(Entry(path, plurals=forms, comment=note))
                elif isinstance(value, (CommentedMap, CommentedSeq)):
                    walk(value, path)
                elif isinstance(value, str):
                    add(
                        Entry(
                            path, value=str(value), comment=note, translatable=_translatable(value)
                        )
                    )
                else:
                    add(Entry(path, value=_scalar(value), comment=note, translatable=False))

        if isinstance(base, (CommentedMap, CommentedSeq)):
            walk(base, "")
        return catalog

    def write(
        self,
        catalog: Catalog,
        *,
        locale: str,
        source_locale: str,
        source_text: str,
        existing: str | None,
    ) -> str:
        self.read(source_text, source_locale)  # refuses what a reader refuses
        text = source_text.replace("\r\n", "\n")
        source = _load(text, "YAML source")
        if source is None:
            return source_text
        if not isinstance(source, CommentedMap):
            raise FormatError("a YAML locale file must hold a mapping at its root")
        entries = {e.key: e for e in catalog.entries if e.translatable}
        # the source locale's own file keeps each plural's categories as they are
        categories = plural_categories(locale) if locale != source_locale else None
        lines = text.split("\n")
        root_key, base = _root(source, source_locale)
        indents = _indents(source, lines)
        plan = _Plan()
        self._plan(base, "", entries, categories, source_locale, lines, plan, set())

        document = source
        if plan.lines:
            dropped = _tidy(lines, plan.lines)
            pruned = "\n".join(line for n, line in enumerate(lines) if n not in dropped)
            try:
                candidate = _load(pruned)
            except FormatError:
                candidate = None
            if candidate is not None and self._same_leaves(
                _root(candidate, source_locale)[1], base, plan.dropped
            ):
                document = candidate
            # else the line surgery went wrong: the keys are dropped in the document instead
        _, body = _root(document, source_locale)
        if isinstance(body, (CommentedMap, CommentedSeq)):
            self._apply(body, "", entries, categories, plan.plurals, set())
        if root_key is not None and locale != source_locale:
            new_key = _plain(
                locale.replace("-", "_") if "_" in root_key else locale.replace("_", "-")
            )
            value = document[root_key]
            comments = document.ca.items.pop(root_key, None)
            if not value:  # nothing left under the root: its comments describe nothing
                value, comments = CommentedMap(), None
            del document[root_key]
            document.insert(0, new_key, value if value is not None else CommentedMap())
            if comments is not None:
                document.ca.items[new_key] = comments
        return self._dump(document, indents, text, "\r\n" in source_text)

    # --- planning and applying ----------------------------------------------------------------

    def _plan(
        self,
        node: Any,
        prefix: str,
        entries: dict[str, Entry],
        categories: tuple[str, ...] | None,
        source_locale: str,
        lines: list[str],
        plan: _Plan,
        seen: set[int],
    ) -> bool:
        """Record what the target drops below ``node``; whether anything of it stays."""
        if not isinstance(node, (CommentedMap, CommentedSeq)):
            return True
        if not node:
            return True
        block = isinstance(node, CommentedMap) and not _flow(node)
        kept = False
        for key, value in _own(node):
            path = _join(prefix, key)
            if _alias(value, seen):
                stays = True
            elif _is_plural(value, source_locale):
                plan.plurals.add(path)
                stays = path in entries
                if stays and categories is not None and not _flow(value):
                    for cat in value:
                        if cat not in categories:
                            self._drop(value, cat, lines, plan, f"{path}.{cat}")
            elif isinstance(value, (CommentedMap, CommentedSeq)):
                stays = self._plan(
                    value, path, entries, categories, source_locale, lines, plan, seen
                )
            else:
                stays = not _translatable(value) or path in entries
            kept = kept or stays
            if not stays and block and isinstance(node, CommentedMap):
                self._drop(node, key, lines, plan, path)
        return kept

    @staticmethod
    def _drop(node: CommentedMap, key: Any, lines: list[str], plan: _Plan, path: str) -> None:
        line, col = node.lc.key(key)
        if lines[line][:col].strip():
            return  # shares its line (a sequence item's first key): dropped in the document
        plan.lines.update(_key_lines(lines, line, col))
        plan.dropped.add(path)

    @staticmethod
    def _same_leaves(pruned: Any, base: Any, dropped: set[str]) -> bool:
        """Whether the pruned document is the source minus the dropped keys."""

        def leaves(node: Any, prefix: str, out: dict[str, Any], seen: set[int]) -> dict[str, Any]:
            if isinstance(node, (CommentedMap, CommentedSeq)):
                for key, value in _own(node):
                    if not _alias(value, seen):
                        leaves(value, _join(prefix, key), out, seen)
            else:
                out[prefix] = node
            return out

        expected = {
            path: value
            for path, value in leaves(base, "", {}, set()).items()
            if not any(path == d or path.startswith(d + ".") for d in dropped)
        }
        return leaves(pruned, "", {}, set()) == expected

    def _apply(
        self,
        node: Any,
        prefix: str,
        entries: dict[str, Entry],
        categories: tuple[str, ...] | None,
        plurals: set[str],
        seen: set[int],
    ) -> bool:
        """Put the catalog's texts into ``node``, dropping what it lacks; whether anything
        of ``node`` stays."""
        if not node:
            return True
        kept = False
        in_map = isinstance(node, CommentedMap)
        for key, value in _own(node):
            path = _join(prefix, key)
            stays = True
            if _alias(value, seen):
                pass
            elif path in plurals and isinstance(value, CommentedMap):
                entry = entries.get(path)
                if entry is None:
                    stays = False
                else:
                    self._set_plural(value, entry, categories)
            elif isinstance(value, (CommentedMap, CommentedSeq)):
                stays = self._apply(value, path, entries, categories, plurals, seen)
            elif _translatable(value):
                entry = entries.get(path)
                if entry is None:
                    stays = False
                else:
                    node[key] = _styled(value, entry.single())
            if stays:
                kept = True
            elif in_map:
                del node[key]
            else:
                node[key] = None
        return kept

    @staticmethod
    def _set_plural(node: CommentedMap, entry: Entry, categories: tuple[str, ...] | None) -> None:
        if categories is None:
            categories = tuple(node)
        forms = entry.forms(categories)
        for cat in list(node):
            if cat not in forms:
                del node[cat]
        like = node.get("other")
        for cat, text in forms.items():
            if cat in node:
                node[cat] = _styled(node[cat], text)
            else:
                place = list(node).index("other") if "other" in node else len(node)
                node.insert(place, cat, _styled(like, text))

    @staticmethod
    def _dump(document: Any, indents: tuple[int, int, int], text: str, crlf: bool) -> str:
        yaml = _yaml()
        lines = text.split("\n")
        mapping, sequence, offset = indents
        yaml.indent(mapping=mapping, sequence=sequence, offset=offset)
        first = next((line for line in lines if line.strip() and not line.startswith("#")), "")
        yaml.explicit_start = first.startswith("---")
        if re.search(r"(?m)(:|^\s*-)\s+~\s*(#.*)?$", text):
            yaml.Representer = _TildeRepresenter
        elif re.search(r"(?m)(:|^\s*-)\s+null\s*(#.*)?$", text):
            yaml.Representer = _NullRepresenter
        out = io.StringIO()
        yaml.dump(document, out)
        result = out.getvalue()
        return result.replace("\n", "\r\n") if crlf else result


def _styled(old: Any, text: str) -> Any:
    """``text`` written in the style of the value it replaces (quoted, literal...)."""
    if isinstance(old, str) and text == str(old):
        return old
    if RAW_UNSAFE.search(text):
        return DoubleQuotedScalarString(text)  # the one style that escapes them
    if isinstance(old, ScalarString):
        return type(old)(text)
    return _plain(text)


def _plain(text: str) -> Any:
    """``text`` for a plain value: quoted if a YAML 1.1 reader would take it for another type."""
    if YAML_11.resolve(ScalarNode, text, (True, False)) != STR_TAG:
        return SingleQuotedScalarString(text)
    return text


FORMAT = YamlFormat()
