"""JSON errors for every non-2xx response, including Starlette's own 404/405 and crashes."""

from __future__ import annotations

import logging
from typing import Any

from pydantic import ValidationError as PydanticValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

log = logging.getLogger("tolk.api")


class ApiError(Exception):
    status_code = 500
    tag = "InternalError"

    def __init__(self, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra
        self.headers: dict[str, str] = {}

    def response(self) -> JSONResponse:
        body = {"_tag": self.tag, "message": self.message, **self.extra}
        return JSONResponse(body, status_code=self.status_code, headers=self.headers)


class ValidationError(ApiError):
    status_code, tag = 400, "ValidationError"

    def __init__(self, message: str, details: list[dict[str, str]] | None = None) -> None:
        super().__init__(message, details=details or [])


class UnauthorizedError(ApiError):
    status_code, tag = 401, "UnauthorizedError"


class ForbiddenError(ApiError):
    status_code, tag = 403, "ForbiddenError"


class NotFoundError(ApiError):
    status_code, tag = 404, "NotFoundError"

    def __init__(self, entity_type: str, entity_id: str) -> None:
        super().__init__(
            f"{entity_type} {entity_id} not found", entityType=entity_type, id=entity_id
        )


class MethodNotAllowedError(ApiError):
    status_code, tag = 405, "MethodNotAllowedError"


class ConflictError(ApiError):
    status_code, tag = 409, "ConflictError"


class QuotaExceededError(ApiError):
    """A monthly budget is spent: new work is refused until it resets."""

    status_code, tag = 402, "QuotaExceededError"


class RateLimitError(ApiError):
    """Too many requests (or active groups): ``Retry-After`` says when to try again."""

    status_code, tag = 429, "RateLimitError"

    def __init__(self, message: str, retry_after: int, headers: dict[str, str] | None = None):
        super().__init__(message, retryAfter=retry_after)
        self.headers = {"Retry-After": str(retry_after), **(headers or {})}


class PayloadTooLargeError(ApiError):
    status_code, tag = 413, "PayloadTooLargeError"


class IdempotencyKeyReusedError(ApiError):
    status_code, tag = 422, "IdempotencyKeyReusedError"


class GoneError(ApiError):
    status_code, tag = 410, "GoneError"


class BadGatewayError(ApiError):
    """A translation provider answered, but nothing usable came of it."""

    status_code, tag = 502, "BadGatewayError"


class ServiceUnavailableError(ApiError):
    status_code, tag = 503, "ServiceUnavailableError"

    def __init__(self, message: str, retry_after: int = 5) -> None:
        super().__init__(message)
        self.headers["Retry-After"] = str(retry_after)


def format_loc(loc: tuple[Any, ...]) -> str:
    """('targetLocales', 2) -> 'targetLocales[2]'; ('data', 'a') -> 'data.a'."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "body"


def from_pydantic(err: PydanticValidationError) -> ValidationError:
    details = []
    for item in err.errors(include_url=False, include_input=False):
        message = item["msg"].removeprefix("Value error, ")
        details.append({"path": format_loc(tuple(item["loc"])), "message": message})
    first = details[0]
    return ValidationError(f"{first['path']}: {first['message']}", details)


async def api_error_handler(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return exc.response()


async def http_exception_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        err: ApiError = ApiError(f"no route for {request.method} {request.url.path}")
        err.status_code, err.tag = 404, "NotFoundError"
    elif exc.status_code == 405:
        err = MethodNotAllowedError(f"{request.method} is not allowed on {request.url.path}")
    else:
        err = ApiError(str(exc.detail))
        err.status_code = exc.status_code
    return err.response()


async def unhandled_error_handler(request: Request, exc: Exception) -> Response:
    return unexpected_error(exc, f"{request.method} {request.url.path}").response()


def unexpected_error(exc: Exception, where: str) -> ApiError:
    """The answer to an exception no route handled: 503 for an unreachable database or
    Temporal (logged as a warning), else 500 (logged with its traceback)."""
    if _is_unavailable(exc):
        log.warning("dependency unavailable on %s: %s", where, exc)
        return ServiceUnavailableError("a backing service is unavailable; retry")
    log.exception("unhandled error on %s", where, exc_info=exc)
    return ApiError("internal error")


async def dependency_error_handler(request: Request, exc: Exception) -> Response:
    """For the exception classes a database or Temporal outage raises (see ``app.py``):
    answered here rather than by the last-resort handler, which Starlette follows by
    re-raising the exception to the server (a logged traceback, a dropped connection)."""
    return unexpected_error(exc, f"{request.method} {request.url.path}").response()


def _is_unavailable(exc: Exception) -> bool:
    """Database or Temporal unreachable: a 503 the client may retry, not a 500."""
    from temporalio.service import RPCError, RPCStatusCode

    from store.db import unavailable

    if isinstance(exc, RPCError):
        return exc.status in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED)
    return unavailable(exc)
