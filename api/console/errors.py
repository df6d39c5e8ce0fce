"""The console's refusals as pages: a browser that asked for HTML (a page, a form post)
gets the console's error page with the refusal's status and message, and a way on; any
other client gets the API's JSON error, as from every route of the API."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from api.console.render import page
from api.errors import ApiError, UnauthorizedError

Endpoint = Callable[[Request], Awaitable[Response]]

TITLES = {
    400: "Not accepted",
    401: "Signed out",
    403: "Refused",
    404: "Not found",
    409: "Not possible now",
    413: "Too large",
    503: "Unavailable",
}


def wants_html(request: Request) -> bool:
    """Whether the request is a browser's: it names HTML among what it accepts."""
    return "text/html" in request.headers.get("accept", "")


def error_page(request: Request, err: ApiError) -> Response:
    context = {
        "title": TITLES.get(err.status_code, "Something went wrong"),
        "message": err.message,
        "sign_in": isinstance(err, UnauthorizedError),
    }
    response = page(request, "error.html", context, err.status_code)
    response.headers.update(err.headers)
    return response


def html_errors(endpoint: Endpoint) -> Endpoint:
    """``endpoint`` with its refusals (``ApiError``) shown as a page to browsers."""

    @functools.wraps(endpoint)
    async def route(request: Request) -> Response:
        try:
            return await endpoint(request)
        except ApiError as err:
            if not wants_html(request):
                raise
            return error_page(request, err)

    return route
