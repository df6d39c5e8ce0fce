"""Reading an HTML form's body: bounded, URL-encoded UTF-8 only, each field once, no
U+0000 (which the API refuses in any text, and a database cannot store), then validated by
its model (``api/console_schemas.py``) like any request body."""

from __future__ import annotations

from typing import TypeVar
from urllib.parse import parse_qsl

from pydantic import BaseModel
from starlette.requests import Request

from api.errors import ValidationError
from api.requests import read_body, validate

M = TypeVar("M", bound=BaseModel)

MAX_FORM_BYTES = 16 * 1024
FORM_TYPE = "application/x-www-form-urlencoded"


async def read_form(request: Request, model: type[M], limit: int = MAX_FORM_BYTES) -> M:
    """The form as ``model``: 413 past ``limit`` bytes, 400 for another content type, bytes
    that are not UTF-8, a NUL, a field given twice or a field the model does not know."""
    body = await read_body(request, limit)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if body and content_type != FORM_TYPE:
        raise _invalid("body", f"expected {FORM_TYPE}")
    try:
        pairs = parse_qsl(
            body.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(body), errors="strict"
        )
    except (UnicodeDecodeError, ValueError):
        raise _invalid("body", "not a URL-encoded UTF-8 form") from None
    fields: dict[str, str] = {}
    for name, value in pairs:
        if "\0" in name or "\0" in value:
            raise _invalid(name.replace("\0", "\\0"), "U+0000 (NUL) is not allowed in text")
        if name in fields:
            raise _invalid(name, "given more than once")
        fields[name] = value
    return validate(model, fields)


def _invalid(path: str, problem: str) -> ValidationError:
    return ValidationError(f"{path}: {problem}", [{"path": path, "message": problem}])
