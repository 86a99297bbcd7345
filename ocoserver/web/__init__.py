"""The web console: server-rendered HTML pages in the same aiohttp application.

Templates render with Jinja2 autoescaping on, so every value an agent
sent shows as text. The stylesheet and the one script are served from
/static/ by ocoserver itself; nothing loads from elsewhere.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web

from ocoserver.web import actions, confirm, pages, session

WEB_DIR = Path(__file__).parent


def add_routes(app: web.Application) -> None:
    environment = aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(WEB_DIR / "templates"),
        autoescape=True,
    )
    environment.filters["state_name"] = pages.state_name
    environment.filters["percent"] = pages.percent
    environment.filters["width_class"] = pages.width_class
    app.router.add_static("/static/", WEB_DIR / "static", name="static")
    app.router.add_get("/favicon.ico", favicon)
    app[session.LOGIN_SECRET] = secrets.token_bytes(32)
    app.router.add_get("/login", session.login_page)
    app.router.add_post("/login", session.login)
    app.router.add_post("/logout", session.logout)
    pages.add_routes(app)
    actions.add_routes(app)
    confirm.add_routes(app)


async def favicon(request: web.Request) -> web.StreamResponse:
    """Serve the console's icon where browsers look for it without a link."""
    response = web.FileResponse(WEB_DIR / "static" / "favicon.ico")
    response.headers["Cache-Control"] = "max-age=86400"
    return response
