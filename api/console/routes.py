"""The console's routes, mounted at ``/console`` beside the API's route table.

They are HTML pages and form posts for browsers, not API operations: they are declared
here rather than in ``api/routes.py``, take a session cookie rather than ``X-API-Key``, and
``/openapi.json`` does not list them (``tests/test_routes.py`` checks the mount is the one
thing outside the document). Static files are this package's own; nothing is loaded
from anywhere else."""

from __future__ import annotations

from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from api.console import pages, reviews, sessions
from api.console.errors import Endpoint, html_errors
from api.console.render import STATIC_DIR

PREFIX = "/console"


def _route(path: str, endpoint: Endpoint, method: str, name: str) -> Route:
    """A console route; a browser sees its refusals as a page (``errors.py``)."""
    return Route(path, html_errors(endpoint), methods=[method], name=name)


ROUTES = [
    _route("/login", sessions.login_form, "GET", "login_form"),
    _route("/login", sessions.login, "POST", "login"),
    _route("/logout", sessions.logout, "POST", "logout"),
    _route("/groups/{groupId}", pages.group_page, "GET", "group"),
    _route("/groups/{groupId}/cancel", pages.cancel, "POST", "cancel"),
    _route("/groups/{groupId}/retry", pages.retry, "POST", "retry"),
    _route("/jobs/{jobId}", pages.job_page, "GET", "job"),
    _route("/reviews", reviews.queue_page, "GET", "reviews"),
    _route("/reviews/{jobId}", reviews.review, "POST", "review"),
    Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
]


def console_routes() -> list[BaseRoute]:
    """The console, for ``api/app.py``: ``/console`` itself (the groups) and every path
    under it."""
    return [
        _route(PREFIX, pages.groups_page, "GET", "console_groups"),
        Mount(PREFIX, routes=ROUTES, name="console"),
    ]
