"""Login, logout, session cookies and CSRF checks of the web console.

A session is a random token in an HttpOnly, SameSite=Lax cookie (Secure
when the server speaks TLS); the database stores only its SHA-256 hash.
Every POST form carries the session's CSRF token in a hidden field, and a
request whose token does not match is rejected with 403. The login form,
which has no session yet, carries a token that the server issued and
signed (see `issue_login_token`), both in the form and in a cookie.
Failed logins count against the client address and the account name in
the same throttle as agent keys.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote as url_quote

from aiohttp import web

from ocoserver.appkeys import STATE
from ocoserver.client_address import client_address
from ocoserver.errors import AdminError, TooManyRequests, preview
from ocoserver.logtext import quote
from ocoserver.store import admins
from ocoserver.web.formbody import read_form
from ocoserver.web.passwords import hash_password, verify_password
from ocoserver.web.templating import SESSION, error_exception, render

log = logging.getLogger("ocoserver.web")

SESSION_COOKIE = "ocoserver_session"
LOGIN_COOKIE = "ocoserver_login"
CSRF_FIELD = "csrf_token"

# Seconds a login form's token stays valid after the server issued it.
LOGIN_TOKEN_LIFETIME = 24 * 3600

# Key that signs the login form's tokens, drawn anew by each application,
# so a login form shown before a restart must be reloaded.
LOGIN_SECRET = web.AppKey("login_secret", bytes)

# The 403 page's message for every form, the login form included.
CSRF_REJECTED = "missing or invalid CSRF token; reload the page and send the form again"

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
            client_address(request),
        )
        raise error_exception(request, web.HTTPForbidden, CSRF_REJECTED)


def form(handler: FormHandler) -> PageHandler:
    """Require a session and a valid CSRF token for a POST form handler."""

    @functools.wraps(handler)
    async def wrapper(request: web.Request) -> web.StreamResponse:
        session = await current_session(request)
        if session is None:
            raise _login_redirect(request)
        request[SESSION] = session
        data = await read_form(request)
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


def issue_login_token(secret: bytes, issued: int) -> str:
    """Return a new login token: a random nonce and its issue time, signed.

    Another site can set a cookie and post a form field with the same value,
    but it cannot make a signature with this server's secret, so a pair it
    made up is rejected.
    """
    nonce = secrets.token_urlsafe(16)
    return f"{nonce}.{issued}.{_login_signature(secret, nonce, str(issued))}"


def _login_signature(secret: bytes, nonce: str, issued: str) -> str:
    message = f"{nonce}.{issued}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def login_token_valid(secret: bytes, token: str, now: float) -> bool:
    """Return whether `token` came from `issue_login_token` and has not expired."""
    parts = token.split(".")
    if len(parts) != 3:
        return False
    nonce, issued, signature = parts
    if not (issued.isascii() and issued.isdigit()):
        return False
    if not 0 <= now - int(issued) <= LOGIN_TOKEN_LIFETIME:
        return False
    expected = _login_signature(secret, nonce, issued)
    return hmac.compare_digest(signature.encode(), expected.encode())


async def login_page(request: web.Request) -> web.StreamResponse:
    secret = request.app[LOGIN_SECRET]
    token = request.cookies.get(LOGIN_COOKIE, "")
    if not login_token_valid(secret, token, time.time()):
        token = issue_login_token(secret, int(time.time()))
    return _render_login(request, token, "", 200)


def _render_login(
    request: web.Request, token: str, error: str, status: int
) -> web.StreamResponse:
    context = {
        "login_token": token,
        "next": _safe_next(request.query.get("next")),
        "error": error,
        "max_name_length": admins.MAX_NAME_LENGTH,
    }
    response = render("login.html", request, context, status=status)
    response.set_cookie(LOGIN_COOKIE, token, **_cookie_options(request))
    return response


async def login(request: web.Request) -> web.StreamResponse:
    """Check the login form, then start a session and redirect."""
    state = request.app[STATE]
    remote = client_address(request)
    data = await read_form(request)
    cookie = request.cookies.get(LOGIN_COOKIE, "")
    _check_login_token(request, cookie, data.get(CSRF_FIELD))

    try:
        state.throttle.check(remote)
    except TooManyRequests as error:
        response = _render_login(request, cookie, error.message, 429)
        response.headers.update(error.headers)
        return response

    name = str(data.get("name", "")).strip()
    if not _possible_name(name):
        # No account can have this name, so it is not counted as a failed
        # login. Only a preview is logged, because a name of megabytes would
        # otherwise fill the log and the dashboard's list.
        log.info("rejected login from %s: invalid account name %s",
                 remote, quote(preview(name)))  # fmt: skip
        message = (
            f"Invalid account name: use 1 to {admins.MAX_NAME_LENGTH} printable "
            "characters."
        )
        return _render_login(request, cookie, message, 400)

    user = await admins.find_user(state.database, name)
    password = str(data.get("password", ""))
    stored = user["password_hash"] if user else _DUMMY_HASH
    if not verify_password(password, stored) or user is None:
        reason = "unknown account" if user is None else "wrong password"
        state.throttle.record_failure(remote, f"web:{name}")
        state.throttle.record_rejection(
            remote, f"web:{name}", f"console login failed: {reason}"
        )
        # The browser gets one message for both reasons, so that it cannot
        # tell which account names exist.
        log.info("rejected login of %s from %s: %s", quote(name), remote, reason)
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


def _possible_name(name: str) -> bool:
    """Return whether `name` passes the account name rules of `admins`."""
    try:
        admins.validate_name(name)
    except AdminError:
        return False
    return True


def _check_login_token(request: web.Request, cookie: str, token: Any) -> None:
    """Raise 403 unless the form's token equals the cookie and the server issued it."""
    if (
        isinstance(token, str)
        and hmac.compare_digest(token.encode("utf-8"), cookie.encode("utf-8"))
        and login_token_valid(request.app[LOGIN_SECRET], token, time.time())
    ):
        return
    log.warning(
        "rejected login from %s: missing, expired or forged CSRF token",
        client_address(request),
    )
    raise error_exception(request, web.HTTPForbidden, CSRF_REJECTED)


@form
async def logout(request: web.Request, data: Any) -> web.StreamResponse:
    token = request.cookies.get(SESSION_COOKIE, "")
    await admins.end_session(request.app[STATE].database, token)
    log.info("web console logout of %s", quote(request[SESSION].name))
    response = redirect("/login")
    response.del_cookie(SESSION_COOKIE, path="/")
    return response
