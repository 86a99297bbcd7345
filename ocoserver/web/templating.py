"""Rendering of the console's templates with the context every page needs."""

from __future__ import annotations

from typing import Any

import aiohttp_jinja2
from aiohttp import web

from ocoserver.store.admins import Session

# Scripts and styles load only from ocoserver itself, so even markup that
# slipped past escaping could not run an inline script or add a style.
# Progress bars take their widths from stylesheet classes for this reason.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; "
        "img-src 'self' data:; frame-ancestors 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}

# The logged-in session, set by the page and form decorators.
SESSION = web.RequestKey("web_session", Session)


def render(
    template: str, request: web.Request, context: dict[str, Any], status: int = 200
) -> web.Response:
    """Render `template` with `context` plus the session and its CSRF token."""
    response = aiohttp_jinja2.render_template(
        template, request, {**_base_context(request), **context}, status=status
    )
    response.headers.update(SECURITY_HEADERS)
    return response


def error_exception(
    request: web.Request,
    error_class: type[web.HTTPException],
    message: str,
    form_error: bool = True,
) -> web.HTTPException:
    """Build an HTTP error whose body is the console's error page with `message`.

    Raising it ends a handler or decorator at any depth. The page suggests
    correcting the form only when `form_error` is set.
    """
    context = {**_base_context(request), "message": message, "form_error": form_error}
    text = aiohttp_jinja2.render_string("error.html", request, context)
    return error_class(text=text, content_type="text/html", headers=SECURITY_HEADERS)


def _base_context(request: web.Request) -> dict[str, Any]:
    session = request.get(SESSION)
    return {
        "session": session,
        "csrf_token": session.csrf_token if session else "",
        "path": request.path,
    }
