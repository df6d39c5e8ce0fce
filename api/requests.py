"""Helpers every route uses: the app state, bounded JSON bodies and their validation.
Who the caller is, ``api/auth.py`` settles before a handler runs."""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse

from api.errors import (
    PayloadTooLargeError,
    ValidationError,
    format_loc,
    from_pydantic,
)
from api.state import AppState
from store import engines
from store.tables import Engine

M = TypeVar("M", bound=BaseModel)


def app_state(conn: HTTPConnection) -> AppState:
    state: AppState = conn.app.state.tolk
    return state


async def resolve_engine(state: AppState, organization_id: str, engine_id: str | None) -> Engine:
    """The engine a request names (``engineId``), or the organization's default; 400 when
    it names none of the organization's engines."""
    async with state.db.session() as session:
        if engine_id is None:
            found = await engines.default_engine(session, organization_id)
        else:
            found = await engines.get_engine(session, organization_id, engine_id)
    return found_engine(found, engine_id)


def found_engine(engine: Engine | None, engine_id: str | None) -> Engine:
    """The engine a lookup for ``engine_id`` (None: the default) found; 400 when none."""
    if engine is not None:
        return engine
    if engine_id is None:
        raise ValidationError("engineId: the organization has no default engine")
    raise ValidationError(
        f"engineId: unknown engine '{engine_id}'",
        [{"path": "engineId", "message": "unknown engine"}],
    )


async def read_body(request: Request, limit: int) -> bytes:
    """The raw body, refusing (413) anything over ``limit`` bytes before reading it all."""
    declared = request.headers.get("content-length")
    if declared and declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLargeError(f"request body exceeds the limit of {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLargeError(f"request body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_json(body: bytes) -> Any:
    """The body as JSON, refusing (400, with the path) what JSON cannot carry faithfully:
    bytes that are not UTF-8 (an encoded surrogate such as ``ED A0 80`` included), ``\\u``
    escapes of lone surrogates or of U+0000 in any string or key, ``NaN``/``Infinity``,
    numbers too large for a double (``1e999``) and integers with more digits than Python
    parses (``sys.get_int_max_str_digits()``).

    Light on the common path: one strict decode, one ``json.loads`` and one regex scan of
    the text for surrogate and NUL escapes; the document is walked (to name the path) only
    for a body that is refused."""
    try:
        text = body.decode("utf-8-sig")  # strict: no surrogates, no overlong forms
    except UnicodeDecodeError as err:
        problem = f"not valid UTF-8 (byte {err.start} of the body)"
        raise ValidationError(f"body: {problem}", [{"path": "body", "message": problem}]) from None
    try:
        value = json.loads(text, parse_constant=_refuse_number, parse_float=_finite_float)
    except RecursionError:
        problem = "JSON nested too deeply"
    except json.JSONDecodeError as err:
        problem = f"malformed JSON ({err})"
    except ValueError:  # a non-finite number, or an integer over the digit limit
        raise _number_error(text) from None
    else:
        if not _escapes_are_text(text):
            _refuse_text(value)
        return value
    raise ValidationError(f"body: {problem}", [{"path": "body", "message": problem}])


# Strictly decoded UTF-8 holds no surrogate, and the parser refuses raw control characters
# in strings: a lone surrogate or U+0000 can only come from a \u escape. A valid pair is one
# match, so that an emoji costs one step.
_SUSPECT_ESCAPE = re.compile(
    r"\\u(?:(?P<pair>[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2})"
    r"|[dD][89a-fA-F][0-9a-fA-F]{2}|0000)"
)
_BAD_CHAR = re.compile("[\ud800-\udfff\x00]")


def _escapes_are_text(text: str) -> bool:
    """Whether every surrogate escape in the JSON text is half of a pair and none is
    ``\\u0000``: a regex search at C speed, and a few steps per suspect escape found."""
    position, search = 0, _SUSPECT_ESCAPE.search
    while (match := search(text, position)) is not None:
        start = match.start()
        if start and text[start - 1] == "\\" and _escaped(text, start):
            position = start + 1  # JSON \\ud800: an escaped backslash, then text "ud800"
        elif match.group("pair") is not None:
            position = match.end()
        else:  # a lone surrogate, or NUL
            return False
    return True


def _escaped(text: str, position: int) -> bool:
    """Whether the backslash at ``position`` is escaped (an odd run of backslashes before)."""
    run = 0
    while position - run > 0 and text[position - run - 1] == "\\":
        run += 1
    return run % 2 == 1


class _NotJsonNumber(ValueError):
    pass


def _refuse_number(token: str) -> Any:
    raise _NotJsonNumber(token)


def _finite_float(token: str) -> float:
    number = float(token)
    if not math.isfinite(number):
        raise _NotJsonNumber(token)
    return number


@dataclass(frozen=True)
class _Bad:
    """Where a number JSON cannot carry was, in the second parse that finds its path."""

    token: str


def _number_error(text: str) -> ValidationError:
    """The first number the strict parse refused, with its path (found by parsing again with
    hooks that mark it instead of raising: this runs only for refused bodies)."""
    limit = sys.get_int_max_str_digits()

    def parse_int(token: str) -> Any:
        return _Bad(token) if limit and len(token.lstrip("-")) > limit else int(token)

    def parse_float(token: str) -> Any:
        number = float(token)
        return number if math.isfinite(number) else _Bad(token)

    try:
        marked = json.loads(text, parse_constant=_Bad, parse_float=parse_float, parse_int=parse_int)
    except (RecursionError, ValueError):  # something else is wrong further on
        marked = None
    for loc, node in _walk(marked):
        if isinstance(node, _Bad):
            token = node.token
            if token.lstrip("-") in ("NaN", "Infinity"):
                problem = f"{token} is not a JSON number"
            elif token.lstrip("-").isdigit():
                problem = f"an integer with more than {limit} digits is not accepted"
            else:
                shown = token if len(token) <= 40 else token[:37] + "..."
                problem = f"{shown} is out of range for a JSON number (a 64-bit float)"
            path = format_loc(loc)
            return ValidationError(f"{path}: {problem}", [{"path": path, "message": problem}])
    problem = "a number JSON cannot carry"
    return ValidationError(f"body: {problem}", [{"path": "body", "message": problem}])


def _refuse_text(value: Any) -> None:
    """Refuse the first string or key with a lone surrogate or U+0000, naming its path."""
    for loc, node in _walk(value, keys=True):
        if isinstance(node, str) and (bad := _BAD_CHAR.search(node)) is not None:
            char = bad.group()
            if char == "\0":
                problem = "U+0000 (NUL) is not allowed in text"
            else:
                problem = f"not valid Unicode: a lone surrogate \\u{ord(char):04x}"
            path = format_loc(tuple(_shown(part) for part in loc))
            raise ValidationError(f"{path}: {problem}", [{"path": path, "message": problem}])
    problem = "not valid Unicode (a lone surrogate) or U+0000"  # not reached: the walk finds it
    raise ValidationError(f"body: {problem}", [{"path": "body", "message": problem}])


def _shown(part: str | int) -> str | int:
    """A path segment that can be written back in a JSON response (surrogates escaped)."""
    if isinstance(part, str):
        return part.encode("utf-8", "backslashreplace").decode("utf-8")
    return part


def _walk(value: Any, keys: bool = False) -> Iterator[tuple[tuple[str | int, ...], Any]]:
    """(location, node) for every node in document order, without recursion (the parser
    accepts deeper documents than Python's stack). With ``keys``, each object key is
    yielded too, at the location of its value, before the value."""
    stack: list[tuple[tuple[str | int, ...], Any]] = [((), value)]
    while stack:
        loc, node = stack.pop()
        yield loc, node
        if isinstance(node, dict):
            children: list[tuple[tuple[str | int, ...], Any]] = []
            for key, child in node.items():
                if keys:
                    children.append(((*loc, key), key))
                children.append(((*loc, key), child))
            stack.extend(reversed(children))
        elif isinstance(node, list):
            stack.extend(((*loc, i), child) for i, child in reversed(list(enumerate(node))))


def validate(model: type[M], raw: Any, context: dict[str, Any] | None = None) -> M:
    if not isinstance(raw, dict):
        raise ValidationError(
            "body: expected a JSON object", [{"path": "body", "message": "expected a JSON object"}]
        )
    try:
        return model.model_validate(raw, context=context)
    except PydanticValidationError as err:
        raise from_pydantic(err) from None
    except RecursionError:
        raise ValidationError(
            "body: nested too deeply", [{"path": "body", "message": "nested too deeply"}]
        ) from None


def wire(model: Any, status_code: int = 200, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        model.model_dump(mode="json", by_alias=True), status_code=status_code, headers=headers
    )
