"""Walk nested JSON: collect its strings by key path and rebuild it with new strings.

A key path joins object keys and array indexes with ``.`` (``steps.1.body``). Internally a
path is a tuple of segments so keys that themselves contain dots stay unambiguous.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

Path = tuple[str, ...]


def path_str(path: Path) -> str:
    return ".".join(path)


def iter_strings(data: Any, path: Path = ()) -> Iterator[tuple[Path, str]]:
    """Yield (path, string) for every string value, in document order."""
    if isinstance(data, str):
        yield path, data
    elif isinstance(data, dict):
        for key, value in data.items():
            yield from iter_strings(value, (*path, str(key)))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield from iter_strings(value, (*path, str(index)))


def map_strings(data: Any, fn: Callable[[Path, str], str], path: Path = ()) -> Any:
    """Return a copy of ``data`` with every string replaced by ``fn(path, string)``.

    Objects keep their key order, arrays their order; numbers, booleans and null pass through.
    """
    if isinstance(data, str):
        return fn(path, data)
    if isinstance(data, dict):
        return {key: map_strings(value, fn, (*path, str(key))) for key, value in data.items()}
    if isinstance(data, list):
        return [map_strings(value, fn, (*path, str(i))) for i, value in enumerate(data)]
    return data


def depth(data: Any) -> int:
    """Nesting depth: a scalar is 0, ``{}`` or ``[]`` is 1, ``{"a": []}`` is 2."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(data, 0)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, dict):
            stack.extend((v, level + 1) for v in node.values())
            deepest = max(deepest, level + 1)
        elif isinstance(node, list):
            stack.extend((v, level + 1) for v in node)
            deepest = max(deepest, level + 1)
    return deepest
