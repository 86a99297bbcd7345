"""Rendering of the console's templates with the context every page needs."""

from __future__ import annotations

from typing import Any

import aiohttp_jinja2
from aiohttp import web

from ocoserver.store.admins import Session

# The logged-in session, set by the page and form decorators.
SESSION = web.RequestKey("web_session", Session)


def render(
    template: str, request: web.Request, context: dict[str, Any], status: int = 200
) -> web.Response:
    """Render `template` with `context` plus the session and its CSRF token."""
    session = request.get(SESSION)
    base = {
        "session": session,
        "csrf_token": session.csrf_token if session else "",
        "path": request.path,
    }
    return aiohttp_jinja2.render_template(
        template, request, {**base, **context}, status=status
    )
