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
from api.console.render import STATIC_DIR

PREFIX = "/console"

ROUTES = [
    Route("/login", sessions.login_form, methods=["GET"], name="login_form"),
    Route("/login", sessions.login, methods=["POST"], name="login"),
    Route("/logout", sessions.logout, methods=["POST"], name="logout"),
    Route("/groups/{groupId}", pages.group_page, methods=["GET"], name="group"),
    Route("/groups/{groupId}/cancel", pages.cancel, methods=["POST"], name="cancel"),
    Route("/groups/{groupId}/retry", pages.retry, methods=["POST"], name="retry"),
    Route("/jobs/{jobId}", pages.job_page, methods=["GET"], name="job"),
    Route("/reviews", reviews.queue_page, methods=["GET"], name="reviews"),
    Route("/reviews/{jobId}", reviews.review, methods=["POST"], name="review"),
    Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
]


def console_routes() -> list[BaseRoute]:
    """The console, for ``api/app.py``: ``/console`` itself (the groups) and every path
    under it."""
    return [
        Route(PREFIX, pages.groups_page, methods=["GET"], name="console_groups"),
        Mount(PREFIX, routes=ROUTES, name="console"),
    ]
