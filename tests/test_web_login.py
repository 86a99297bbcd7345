"""Console login: rejected names, log reasons, the 429 and the 403 page."""

from __future__ import annotations

import dataclasses
import html
import logging
import re
from pathlib import Path
from typing import Any

import pytest

from ocoserver.appkeys import STATE
from ocoserver.config import Config, SecurityConfig
from ocoserver.web.session import CSRF_REJECTED
from tests.console import add_admin, log_in, session_token

# Longer than any account name, and large enough to show in a log line.
LONG_NAME = "b" * 1_000_000


@pytest.fixture
def config(tmp_path: Path) -> Config:
    base = Config.for_tests(tmp_path / "data")
    security = SecurityConfig(auth_failure_limit=3, auth_block_time=300.0)
    return dataclasses.replace(base, security=security)


def login_lines(caplog: Any) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.getMessage().startswith("rejected login")
    ]


@pytest.mark.parametrize("name", [LONG_NAME, "tab\there", "bell\x07", "al\ufffdice"])
async def test_login_invalid_name_rejected(client, database, caplog, name):
    caplog.set_level(logging.INFO, logger="ocoserver")
    await add_admin(database)

    response = await log_in(client, name=name, password="wrong password")
    lines = login_lines(caplog)

    assert response.status == 400
    assert "Invalid account name: use 1 to 64 printable characters." in (
        await response.text()
    )
    assert len(lines) == 1
    assert len(lines[0]) < 200
    assert client.app[STATE].throttle.recent_failures() == []


async def test_login_long_name_not_counted(client, database):
    await add_admin(database)
    for _ in range(3):
        response = await log_in(client, name=LONG_NAME, password="wrong password")
        assert response.status == 400

    response = await log_in(client)

    assert response.status == 303
    dashboard = await (await client.get("/")).text()
    assert "bbbbbbbbbb" not in dashboard


@pytest.mark.parametrize(
    ("name", "password", "reason"),
    [
        ("nobody", "correct horse battery", "unknown account"),
        ("alice", "wrong password", "wrong password"),
    ],
)
async def test_login_rejection_logs_reason(
    client, database, caplog, name, password, reason
):
    caplog.set_level(logging.INFO, logger="ocoserver")
    await add_admin(database)

    response = await log_in(client, name=name, password=password)

    assert response.status == 401
    assert "Wrong name or password." in await response.text()
    assert login_lines(caplog) == [f"rejected login of {name} from 127.0.0.1: {reason}"]


async def test_login_429_has_retry_after(client, database):
    await add_admin(database)
    for _ in range(3):
        assert (await log_in(client, password="wrong password")).status == 401

    response = await log_in(client)
    seconds = int(response.headers["Retry-After"])

    assert response.status == 429
    assert 0 < seconds <= 300
    assert f"retry in {seconds} s" in await response.text()


_ERROR = re.compile(r'<p class="error">(.*?)</p>', re.DOTALL)


async def error_text(response: Any) -> str:
    match = _ERROR.search(await response.text())
    assert match is not None, "response is no error page"
    return html.unescape(match.group(1))


async def test_forbidden_pages_share_message(client, database):
    await add_admin(database)
    login = await client.post(
        "/login", data={"name": "alice", "password": "correct horse battery"}
    )
    await log_in(client)
    await session_token(client)
    settings = await client.post("/settings", data={"csrf_token": "wrong"})

    assert login.status == 403
    assert settings.status == 403
    assert await error_text(login) == CSRF_REJECTED
    assert await error_text(settings) == CSRF_REJECTED
    assert login.content_type == "text/html"


async def test_missing_computer_page_offers_no_form(client, database):
    await add_admin(database)
    await log_in(client)

    response = await client.get("/computers/999/remove")
    text = await response.text()

    assert response.status == 404
    assert "<h1>Not found</h1>" in text
    assert "correct the form" not in text
