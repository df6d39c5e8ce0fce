"""Rendering the console's pages: Starlette's Jinja2 templates (autoescaped) and the
headers every page carries. The Content-Security-Policy allows only this server's own
scripts, styles and connections, so no page runs inline script or reaches a CDN; pages
are never cached, as they show one organization's data to one signed-in browser."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

HERE = Path(__file__).parent
TEMPLATES = Jinja2Templates(directory=HERE / "templates")
STATIC_DIR = HERE / "static"

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "Cache-Control": "no-store",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}


def page(
    request: Request, template: str, context: dict[str, Any], status_code: int = 200
) -> Response:
    """A page from ``template``; ``context`` holds what it shows (``csrf_token`` among
    it, for the forms and the ``<meta>`` that scripts read)."""
    response = TEMPLATES.TemplateResponse(request, template, context, status_code=status_code)
    response.headers.update(SECURITY_HEADERS)
    return response
