"""The second half of writing a YAML target (``client.formats.yaml``): the catalog's texts go
into the source document, each in the style of the value it replaces, keys the catalog lacks
leave it, and the document is written in the source's layout (indents, null spelling,
document start, line endings)."""

from __future__ import annotations

import io
import re
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.representer import RoundTripRepresenter
from ruamel.yaml.scalarstring import (
    DoubleQuotedScalarString,
    ScalarString,
    SingleQuotedScalarString,
)
from yaml.nodes import ScalarNode
from yaml.resolver import Resolver

from client.formats.model import Entry
from client.formats.yaml_nodes import (
    is_alias,
    is_flow,
    is_translatable,
    join_key,
    own_items,
    round_trip,
)

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


def source_indents(data: Any, lines: list[str]) -> tuple[int, int, int]:
    """The mapping indent, sequence indent and dash offset the file uses (ruamel's terms)."""
    mapping: int | None = None
    sequence: tuple[int, int] | None = None
    stack = [data]
    while stack and (mapping is None or sequence is None):
        node = stack.pop()
        if isinstance(node, CommentedMap) and not is_flow(node):
            for key, value in own_items(node):
                col = node.lc.key(key)[1]
                if isinstance(value, CommentedMap) and own_items(value) and not is_flow(value):
                    if mapping is None:
                        mapping = value.lc.key(own_items(value)[0][0])[1] - col
                elif isinstance(value, CommentedSeq) and value and not is_flow(value):
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


def apply_texts(
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
    for key, value in own_items(node):
        path = join_key(prefix, key)
        stays = True
        if is_alias(value, seen):
            pass
        elif path in plurals and isinstance(value, CommentedMap):
            entry = entries.get(path)
            if entry is None:
                stays = False
            else:
                _set_plural(value, entry, categories)
        elif isinstance(value, (CommentedMap, CommentedSeq)):
            stays = apply_texts(value, path, entries, categories, plurals, seen)
        elif is_translatable(value):
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


def rename_root(document: CommentedMap, root_key: str, locale: str) -> None:
    """Put the Rails root key's value under ``locale``, spelled with the separator of the
    source's own root key."""
    new_key = _plain(locale.replace("-", "_") if "_" in root_key else locale.replace("_", "-"))
    value = document[root_key]
    comments = document.ca.items.pop(root_key, None)
    if not value:  # nothing left under the root: its comments describe nothing
        value, comments = CommentedMap(), None
    del document[root_key]
    document.insert(0, new_key, value if value is not None else CommentedMap())
    if comments is not None:
        document.ca.items[new_key] = comments


def dump(document: Any, indents: tuple[int, int, int], text: str, crlf: bool) -> str:
    """``document`` written in the layout of the source ``text``."""
    yaml = round_trip()
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
