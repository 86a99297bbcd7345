"""Login, logout, session cookies and CSRF checks of the web console.

A session is a random token in an HttpOnly, SameSite=Lax cookie (Secure
when the server speaks TLS); the database stores only its SHA-256 hash.
Every POST form carries the session's CSRF token in a hidden field, and a
request whose token does not match is rejected with 403. The login form,
which has no session yet, uses a token in a cookie of its own instead.
Failed logins count against the client address and the account name in
the same throttle as agent keys.
"""

from __future__ import annotations

import functools
import hmac
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote as url_quote

from aiohttp import web

from ocoserver.appkeys import STATE
from ocoserver.errors import TooManyRequests
from ocoserver.logtext import quote
from ocoserver.store import admins
from ocoserver.web.passwords import hash_password, verify_password
from ocoserver.web.templating import SESSION, render

log = logging.getLogger("ocoserver.web")

SESSION_COOKIE = "ocoserver_session"
LOGIN_COOKIE = "ocoserver_login"
CSRF_FIELD = "csrf_token"

# Compared against when the account does not exist, so that a login for an
# unknown name takes as long as one for a known name.
_DUMMY_HASH = hash_password(secrets.token_urlsafe(16))

PageHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]
FormHandler = Callable[[web.Request, Any], Awaitable[web.StreamResponse]]


def redirect(location: str) -> web.Response:
    """Return a 303 redirect, which a browser follows with a GET."""
    return web.Response(status=303, headers={"Location": location})


def _cookie_options(request: web.Request) -> dict[str, Any]:
    secure = bool(request.app[STATE].config.server.tls_cert)
    return {"httponly": True, "samesite": "Lax", "secure": secure, "path": "/"}


async def current_session(request: web.Request) -> admins.Session | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    return await admins.find_session(request.app[STATE].database, token)


def _login_redirect(request: web.Request) -> web.HTTPException:
    return web.HTTPSeeOther(f"/login?next={url_quote(request.path_qs, safe='')}")


def page(handler: PageHandler) -> PageHandler:
    """Require a session for a GET page; without one, redirect to /login."""

    @functools.wraps(handler)
    async def wrapper(request: web.Request) -> web.StreamResponse:
        session = await current_session(request)
        if session is None:
            raise _login_redirect(request)
        request[SESSION] = session
        return await handler(request)

    return wrapper


def check_csrf(request: web.Request, token: Any) -> None:
    """Raise 403 unless `token` is the session's CSRF token."""
    expected = request[SESSION].csrf_token
    if not isinstance(token, str) or not hmac.compare_digest(
        token.encode("utf-8"), expected.encode("utf-8")
    ):
        log.warning(
            "rejected %s %s from %s: missing or wrong CSRF token",
            request.method,
            request.path,
            request.remote,
        )
        raise web.HTTPForbidden(text="invalid or missing CSRF token; reload the form")


def form(handler: FormHandler) -> PageHandler:
    """Require a session and a valid CSRF token for a POST form handler."""

    @functools.wraps(handler)
    async def wrapper(request: web.Request) -> web.StreamResponse:
        session = await current_session(request)
        if session is None:
            raise _login_redirect(request)
        request[SESSION] = session
        data = await request.post()
        check_csrf(request, data.get(CSRF_FIELD))
        return await handler(request, data)

    return wrapper


def _safe_next(target: Any) -> str:
    # Only a local path: an absolute or protocol-relative URL would let a
    # crafted login link send the admin to another site. Browsers drop tabs
    # and line breaks from URLs, so "/\t/evil.example" would become
    # "//evil.example": any control character or backslash is rejected.
    if (
        isinstance(target, str)
        and target.startswith("/")
        and not target.startswith("//")
        and target.isprintable()
        and "\\" not in target
    ):
        return target
    return "/"


async def login_page(request: web.Request) -> web.StreamResponse:
    token = request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(32)
    return _render_login(request, token, "", 200)


def _render_login(
    request: web.Request, token: str, error: str, status: int
) -> web.StreamResponse:
    context = {
        "login_token": token,
        "next": _safe_next(request.query.get("next")),
        "error": error,
    }
    response = render("login.html", request, context, status=status)
    response.set_cookie(LOGIN_COOKIE, token, **_cookie_options(request))
    return response


async def login(request: web.Request) -> web.StreamResponse:
    """Check the login form, then start a session and redirect."""
    state = request.app[STATE]
    remote = request.remote or ""
    data = await request.post()
    cookie = request.cookies.get(LOGIN_COOKIE, "")
    token = data.get(CSRF_FIELD)
    if (
        not cookie
        or not isinstance(token, str)
        or not hmac.compare_digest(token.encode("utf-8"), cookie.encode("utf-8"))
    ):
        log.warning("rejected login from %s: missing or wrong CSRF token", remote)
        raise web.HTTPForbidden(text="invalid or missing CSRF token; reload the form")

    name = str(data.get("name", "")).strip()
    try:
        state.throttle.check(remote)
    except TooManyRequests as error:
        return _render_login(request, cookie, error.message, 429)

    user = await admins.find_user(state.database, name)
    password = str(data.get("password", ""))
    stored = user["password_hash"] if user else _DUMMY_HASH
    if not verify_password(password, stored) or user is None:
        state.throttle.record_failure(remote, f"web:{name}")
        log.info("rejected login of %s from %s: wrong name or password",
                 quote(name), remote)  # fmt: skip
        return _render_login(request, cookie, "Wrong name or password.", 401)

    lifetime = state.config.web.session_lifetime
    session_token = await admins.create_session(state.database, user["id"], lifetime)
    log.info("web console login of %s from %s", quote(user["name"]), remote)
    response = redirect(_safe_next(data.get("next")))
    response.set_cookie(
        SESSION_COOKIE, session_token, max_age=int(lifetime), **_cookie_options(request)
    )
    response.del_cookie(LOGIN_COOKIE, path="/")
    return response


@form
async def logout(request: web.Request, data: Any) -> web.StreamResponse:
    token = request.cookies.get(SESSION_COOKIE, "")
    await admins.end_session(request.app[STATE].database, token)
    log.info("web console logout of %s", quote(request[SESSION].name))
    response = redirect("/login")
    response.del_cookie(SESSION_COOKIE, path="/")
    return response
