"""Test helpers that use the web console like a browser without JavaScript."""

from __future__ import annotations

import re
from typing import Any

from aiohttp.test_utils import TestClient

from ocoserver.db import Database
from ocoserver.store import admins
from ocoserver.web.passwords import hash_password

ADMIN_NAME = "alice"
ADMIN_PASSWORD = "correct horse battery"
_CSRF = re.compile(r'name="csrf_token" value="([^"]*)"')

# A low scrypt cost keeps each login in the tests to about a millisecond;
# the stored hash carries its cost, so verification uses the same one.
_ADMIN_HASH = hash_password(ADMIN_PASSWORD, n=2**10)


async def add_admin(database: Database, name: str = ADMIN_NAME) -> int:
    return await admins.add_user(database, name, _ADMIN_HASH)


def csrf_token(html: str) -> str:
    """Return the first CSRF token in a page's forms."""
    match = _CSRF.search(html)
    assert match is not None, "page has no CSRF field"
    return match.group(1)


async def log_in(
    client: TestClient,
    name: str = ADMIN_NAME,
    password: str = ADMIN_PASSWORD,
    headers: dict[str, str] | None = None,
) -> Any:
    """Submit the login form; return the response without following redirects."""
    page = await client.get("/login", headers=headers)
    token = csrf_token(await page.text())
    return await client.post(
        "/login",
        data={"csrf_token": token, "name": name, "password": password, "next": "/"},
        headers=headers,
        allow_redirects=False,
    )


async def session_token(client: TestClient) -> str:
    """Return the CSRF token of the logged-in session, read from the dashboard."""
    page = await client.get("/")
    return csrf_token(await page.text())
