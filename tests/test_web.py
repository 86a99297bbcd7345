"""The web console over HTTP: sessions, CSRF, escaping and the forms.

The server runs for real on the test client's port with its own SQLite
file; an agent plays its part with captured agent requests.
"""

from __future__ import annotations

import dataclasses
import io
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest
from aiohttp import FormData

from ocoserver.app import create_app
from ocoserver.appkeys import STATE
from ocoserver.config import Config, SecurityConfig
from ocoserver.db import Database
from ocoserver.store import admins, computers, groups, memberships, packages
from ocoserver.store.groups import COMPUTER_GROUPS
from ocoserver.web import pages
from ocoserver.web.actions import MAX_FIELD_SIZE
from ocoserver.web.session import (
    LOGIN_SECRET,
    LOGIN_TOKEN_LIFETIME,
    issue_login_token,
    login_token_valid,
)
from tests.admin import run_cli
from tests.agents import PlainAgent
from tests.client_api import call, create_key
from tests.console import add_admin, csrf_token, log_in, session_token
from tests.test_passwords import ALPHABET
from tests.test_passwords import registered_agent as signed_password_agent

PAGES = ["/", "/computers", "/computers/1", "/jobs", "/jobs/1", "/jobs/1/state.json",
         "/packages", "/deploy", "/software", "/settings"]  # fmt: skip
POST_FORMS = [
    "/logout", "/computers/1/refresh", "/computers/1/remove",
    "/computers/1/passwords", "/packages", "/packages/1/remove", "/deploy",
    "/jobs/1/remove", "/jobs/1/enable", "/jobs/1/disable", "/jobs/1/renew",
    "/settings", "/settings/registration-key",
    "/settings/event-rules", "/settings/event-rules/1/remove",
    "/settings/password-rules", "/settings/password-rules/1/remove",
]  # fmt: skip
SCRIPT = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"


@pytest.fixture
def config(tmp_path: Path) -> Config:
    base = Config.for_tests(tmp_path / "data")
    security = SecurityConfig(auth_failure_limit=3, auth_block_time=300.0)
    return dataclasses.replace(base, security=security)


@pytest.fixture
async def admin_client(client: Any, database: Database) -> Any:
    await add_admin(database)
    response = await log_in(client)
    assert response.status == 303
    return client


def zip_bytes() -> bytes:
    """Return the same small ZIP file on every call."""
    buffer = io.BytesIO()
    # A fixed time, because the entry's time would otherwise be the current
    # one and two calls a second apart would differ.
    entry = zipfile.ZipInfo("setup.cmd", date_time=(2026, 1, 1, 0, 0, 0))
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(entry, "echo installed\n")
    return buffer.getvalue()


async def registered_agent(
    client: Any, database: Database, hostname: str
) -> PlainAgent:
    await computers.add(database, hostname)
    agent = PlainAgent(client, hostname)
    await agent.hello()
    return agent


async def test_login_block_follows_forwarded_address(aiohttp_client, config, tmp_path):
    proxied = dataclasses.replace(
        config, server=dataclasses.replace(config.server, trusted_proxies=("127.0.0.1",))
    )
    client = await aiohttp_client(create_app(proxied))
    await add_admin(client.app[STATE].database)
    first = {"X-Forwarded-For": "192.0.2.7"}
    second = {"X-Forwarded-For": "192.0.2.8"}
    for _ in range(3):
        response = await log_in(client, password="wrong password", headers=first)
        assert response.status == 401

    blocked = await log_in(client, headers=first)
    other = await log_in(client, headers=second)

    assert blocked.status == 429
    assert other.status == 303


@pytest.mark.parametrize("path", PAGES)
async def test_page_without_session_redirects(client, path):
    response = await client.get(path, allow_redirects=False)

    assert response.status == 303
    assert response.headers["Location"].startswith("/login?next=")


async def test_login_sets_session_cookie(client, database):
    await add_admin(database)

    response = await log_in(client)

    assert response.status == 303
    assert response.headers["Location"] == "/"
    cookie = response.cookies["ocoserver_session"]
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Lax"
    assert not cookie["secure"]


async def test_cookie_secure_with_tls(aiohttp_client, tmp_path):
    # The test client speaks plain HTTP, so it would not send a Secure cookie
    # back; the login form's cookie shows the flag all the same.
    config = Config.for_tests(tmp_path / "data", tls_cert="cert.pem", tls_key="key.pem")
    client = await aiohttp_client(create_app(config))

    response = await client.get("/login")

    assert response.cookies["ocoserver_login"]["secure"] is True


async def test_login_wrong_password_rejected(client, database):
    await add_admin(database)

    response = await log_in(client, password="wrong password")

    assert response.status == 401
    assert "ocoserver_session" not in response.cookies
    assert "Wrong name or password." in await response.text()


async def test_login_without_csrf_rejected(client, database):
    await add_admin(database)

    response = await client.post(
        "/login", data={"name": "alice", "password": "correct horse battery"},
        allow_redirects=False,
    )  # fmt: skip

    assert response.status == 403


async def post_login_with_token(client, token: str) -> Any:
    """Post the login form with `token` both as the cookie and as the field."""
    client.session.cookie_jar.update_cookies({"ocoserver_login": token})
    return await client.post(
        "/login",
        data={"csrf_token": token, "name": "alice",
              "password": "correct horse battery"},
        allow_redirects=False,
    )  # fmt: skip


async def test_login_forged_token_rejected(client, database):
    await add_admin(database)

    response = await post_login_with_token(client, "forged-by-another-site")

    assert response.status == 403
    assert "ocoserver_session" not in response.cookies


async def test_login_foreign_server_token_rejected(
    client, database, aiohttp_client, tmp_path
):
    await add_admin(database)
    other = await aiohttp_client(create_app(Config.for_tests(tmp_path / "other")))
    token = csrf_token(await (await other.get("/login")).text())

    response = await post_login_with_token(client, token)

    assert response.status == 403


async def test_login_expired_token_rejected(client, database):
    await add_admin(database)
    secret = client.app[LOGIN_SECRET]
    issued = int(time.time()) - LOGIN_TOKEN_LIFETIME - 60
    token = issue_login_token(secret, issued)

    response = await post_login_with_token(client, token)

    assert response.status == 403


async def test_login_issued_token_accepted(client, database):
    await add_admin(database)
    token = issue_login_token(client.app[LOGIN_SECRET], int(time.time()))

    response = await post_login_with_token(client, token)

    assert response.status == 303
    assert "ocoserver_session" in response.cookies


async def test_login_page_replaces_forged_cookie(client):
    client.session.cookie_jar.update_cookies({"ocoserver_login": "forged"})

    response = await client.get("/login")
    token = csrf_token(await response.text())

    assert token != "forged"
    assert login_token_valid(client.app[LOGIN_SECRET], token, time.time())
    assert response.cookies["ocoserver_login"].value == token


async def test_login_rate_limited(client, database):
    await add_admin(database)
    for _ in range(3):
        assert (await log_in(client, password="wrong password")).status == 401

    response = await log_in(client)

    assert response.status == 429
    assert "ocoserver_session" not in response.cookies


@pytest.mark.parametrize(
    "target", ["//evil.example/", "/\t/evil.example", "/\n/evil.example", "/\\evil"]
)
async def test_login_next_stays_local(client, database, target):
    await add_admin(database)
    page = await client.get("/login")
    token = csrf_token(await page.text())

    response = await client.post(
        "/login",
        data={"csrf_token": token, "name": "alice",
              "password": "correct horse battery", "next": target},
        allow_redirects=False,
    )  # fmt: skip

    assert response.status == 303
    assert response.headers["Location"] == "/"


async def test_logout_ends_session(admin_client):
    token = await session_token(admin_client)

    response = await admin_client.post(
        "/logout", data={"csrf_token": token}, allow_redirects=False
    )
    after = await admin_client.get("/", allow_redirects=False)

    assert response.status == 303
    assert after.status == 303


@pytest.mark.parametrize("path", POST_FORMS)
async def test_form_without_csrf_rejected(admin_client, path):
    response = await admin_client.post(path, data={"name": "x"}, allow_redirects=False)

    assert response.status == 403


@pytest.mark.parametrize("path", POST_FORMS)
async def test_form_with_wrong_csrf_rejected(admin_client, path):
    form = FormData({"csrf_token": "forged", "name": "x"})

    response = await admin_client.post(path, data=form, allow_redirects=False)

    assert response.status == 403


async def test_hostname_script_rendered_escaped(admin_client, database):
    await computers.add(database, SCRIPT)

    for path in ("/", "/computers", "/computers/1"):
        text = await (await admin_client.get(path)).text()
        assert SCRIPT not in text, path
        assert ESCAPED in text, path


async def test_software_script_rendered_escaped(admin_client, database):
    agent = await registered_agent(admin_client, database, "lab-pc-01")
    software = [{"name": SCRIPT, "version": "1.0", "description": SCRIPT}]
    status, _ = await agent.call("update.json", hostname="lab-pc-01", software=software)
    assert status == 200

    for path in ("/computers/1", "/software?name=script"):
        text = await (await admin_client.get(path)).text()
        assert SCRIPT not in text, path
        assert ESCAPED in text, path


async def test_computer_page_lists_inventory(admin_client, database):
    agent = await registered_agent(admin_client, database, "lab-pc-01")
    await agent.call("update.json", hostname="lab-pc-01")

    text = await (await admin_client.get("/computers/1")).text()

    assert "adwaita-icon-theme" in text
    assert "43-1" in text


async def test_computer_list_searches(admin_client, database):
    await computers.add(database, "office-pc")
    await computers.add(database, "lab-pc")

    text = await (await admin_client.get("/computers?q=office&sort=os")).text()

    assert "office-pc" in text
    assert "lab-pc" not in text


@pytest.mark.parametrize(
    "path", ["/computers/99", "/computers/" + "9" * 23, "/jobs/" + "9" * 20,
             "/jobs/" + "9" * 20 + "/state.json"],
)
async def test_unknown_id_not_found(admin_client, path):
    response = await admin_client.get(path)

    assert response.status == 404


async def test_refresh_button_requests_inventory(admin_client, database):
    await computers.add(database, "lab-pc-01")
    token = await session_token(admin_client)

    response = await admin_client.post(
        "/computers/1/refresh", data={"csrf_token": token}, allow_redirects=False
    )

    assert response.status == 303
    flag = await database.fetch_value("SELECT refresh_requested FROM computer")
    assert flag == 1


async def test_remove_button_deletes_computer(admin_client, database):
    await computers.add(database, "lab-pc-01")
    token = await session_token(admin_client)

    await admin_client.post("/computers/1/remove", data={"csrf_token": token})

    assert await database.fetch_value("SELECT COUNT(*) FROM computer") == 0


def upload_form(
    token: str, payload: bytes | None, token_first: bool = True
) -> FormData:
    form = FormData(default_to_multipart=True)
    if token_first:
        form.add_field("csrf_token", token)
    for name, value in (
        ("family", "notepad"),
        ("version", "2.0"),
        ("install_procedure", "setup.cmd"),
        ("post_action", "none"),
    ):
        form.add_field(name, value)
    if payload is not None:
        form.add_field("file", payload, filename="notepad.zip",
                       content_type="application/zip")  # fmt: skip
    if not token_first:
        form.add_field("csrf_token", token)
    return form


async def test_upload_stores_package(admin_client, database, config):
    token = await session_token(admin_client)

    response = await admin_client.post(
        "/packages", data=upload_form(token, zip_bytes()), allow_redirects=False
    )

    assert response.status == 303
    package = await packages.get(database, 1)
    assert package["family"] == "notepad"
    assert package["size"] == len(zip_bytes())
    assert (config.depot_path / package["file_name"]).read_bytes() == zip_bytes()


async def test_upload_token_after_file_rejected(admin_client, database, config):
    token = await session_token(admin_client)

    response = await admin_client.post(
        "/packages", data=upload_form(token, zip_bytes(), token_first=False)
    )

    assert response.status == 403
    assert await database.fetch_value("SELECT COUNT(*) FROM package") == 0
    assert list(config.depot_path.iterdir()) == []


async def test_upload_not_zip_shows_error(admin_client, database, config):
    token = await session_token(admin_client)

    response = await admin_client.post("/packages", data=upload_form(token, b"plain"))

    assert response.status == 400
    assert "not a ZIP file" in await response.text()
    assert list(config.depot_path.iterdir()) == []


async def test_deploy_form_creates_container(admin_client, database, config):
    await computers.add(database, "lab-pc-01")
    token = await session_token(admin_client)
    await admin_client.post("/packages", data=upload_form(token, None))

    response = await admin_client.post(
        "/deploy",
        data={"csrf_token": token, "name": "rollout", "package": "1",
              "computer": "1", "priority": "5", "abort_on_failure": "1"},
        allow_redirects=False,
    )  # fmt: skip

    assert response.status == 303
    assert response.headers["Location"] == "/jobs/1"
    state = await (await admin_client.get("/jobs/1/state.json")).json()
    assert state["container"]["priority"] == 5
    assert state["container"]["sequence_mode"] == 1
    assert [job["state_name"] for job in state["jobs"]] == ["waiting"]


async def test_deploy_without_computers_shows_error(admin_client, database):
    token = await session_token(admin_client)
    await admin_client.post("/packages", data=upload_form(token, None))

    response = await admin_client.post(
        "/deploy", data={"csrf_token": token, "name": "rollout", "package": "1"}
    )

    assert response.status == 400
    assert "no computers or groups chosen" in await response.text()


async def test_settings_forms_limit_lengths(admin_client):
    page = await (await admin_client.get("/settings")).text()

    assert '<input name="log" required maxlength="256"' in page
    assert '<input name="query" required maxlength="4096"' in page
    assert '<input name="username" required maxlength="256"' in page


async def test_settings_form_saves_values(admin_client, database):
    token = await session_token(admin_client)

    await admin_client.post(
        "/settings",
        data={"csrf_token": token, "self_registration": "1",
              "update_interval": "3600", "registration_key": "secret-key-1"},
    )  # fmt: skip
    hidden = await (await admin_client.get("/settings")).text()
    shown = await (
        await admin_client.post(
            "/settings/registration-key", data={"csrf_token": token}
        )
    ).text()

    assert "secret-key-1" not in hidden
    assert "secret-key-1" in shown
    assert 'value="3600"' in hidden


async def test_event_rule_added_and_removed(admin_client, database):
    token = await session_token(admin_client)

    await admin_client.post(
        "/settings/event-rules",
        data={"csrf_token": token, "log": "System", "query": "*[System]"},
    )
    added = await database.fetch_value("SELECT COUNT(*) FROM event_rule")
    await admin_client.post(
        "/settings/event-rules/1/remove", data={"csrf_token": token}
    )

    assert added == 1
    assert await database.fetch_value("SELECT COUNT(*) FROM event_rule") == 0


async def test_static_assets_served(client):
    style = await client.get("/static/style.css")
    script = await client.get("/static/live.js")

    assert style.status == 200
    assert script.status == 200


async def test_favicon_served_and_linked(client):
    icon = await client.get("/favicon.ico")
    body = await icon.read()
    login = await (await client.get("/login")).text()

    assert icon.status == 200
    # An ICO file starts with reserved 0, type 1 (icon) and the image count.
    assert body[:6] == b"\x00\x00\x01\x00\x01\x00"
    assert '<link rel="icon" href="/static/favicon.ico"' in login
    assert (await client.get("/static/favicon.ico")).status == 200


async def test_admin_cli_adds_lists_removes(config, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO("long enough password\n"))
    code, output = await run_cli(config, "admin", "add", "bob")
    _, listing = await run_cli(config, "admin", "list")
    removed, _ = await run_cli(config, "admin", "remove", "bob")
    _, after = await run_cli(config, "admin", "list")

    assert code == 0
    assert output.strip() == "1"
    assert "bob" in listing
    assert removed == 0
    assert "bob" not in after


async def test_admin_cli_rejects_short_password(config, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.StringIO("short\n"))

    code, _ = await run_cli(config, "admin", "add", "bob")

    assert code == 2
    assert "password is too short" in capsys.readouterr().err


STDIN_PASSWORD_CASES = {
    "empty-stdin": ("", "no password on stdin"),
    "not-utf8": ("pass\udcffword-long\n", "password is not valid UTF-8 text"),
}


@pytest.mark.parametrize(
    ("stdin", "message"), STDIN_PASSWORD_CASES.values(), ids=STDIN_PASSWORD_CASES
)
async def test_admin_cli_bad_stdin_password(config, monkeypatch, capsys, stdin, message):
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))

    code, _ = await run_cli(config, "admin", "add", "bob")

    assert code == 2
    assert message in capsys.readouterr().err


async def test_admin_cli_add_existing_account(config, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.StringIO("long enough password\n"))
    assert (await run_cli(config, "admin", "add", "bob"))[0] == 0
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))

    code, _ = await run_cli(config, "admin", "add", "BOB")
    error = capsys.readouterr().err

    assert code == 2
    assert "admin account bob already exists" in error
    assert "'ocoserver admin remove bob'" in error
    assert "password" in error
    assert "too short" not in error


async def test_password_reveal_audited(admin_client, database):
    agent = await signed_password_agent(admin_client, database)
    token = await session_token(admin_client)
    await admin_client.post(
        "/settings/password-rules",
        data={"csrf_token": token, "username": "administrator", "computers": "",
              "alphabet": ALPHABET, "length": "16", "valid_days": "30",
              "history": "2"},
    )  # fmt: skip
    status, _ = await agent.report(
        {"username": "administrator", "password": "plain-Text-Password-42"}
    )
    assert status == 200
    before = await (await admin_client.get("/settings")).text()

    shown = await admin_client.post(
        "/computers/1/passwords",
        data={"csrf_token": token, "username": "administrator"},
    )
    after = await (await admin_client.get("/settings")).text()

    assert "plain-Text-Password-42" in await shown.text()
    assert shown.headers["Cache-Control"] == "no-store"
    assert "plain-Text-Password-42" not in after
    reveal = await database.fetch_one("SELECT * FROM password_reveal")
    assert reveal["admin_name"] == "alice"
    assert reveal["hostname"] == "lab-pc-01"
    assert reveal["username"] == "administrator"
    assert "administrator" not in before.split("Password reveals")[1]
    assert "administrator" in after.split("Password reveals")[1]


async def test_dashboard_lists_rejected_login(client, database):
    await add_admin(database)
    await log_in(client, name=SCRIPT, password="wrong password")
    await log_in(client)

    text = await (await client.get("/")).text()

    rejections = text.split("Rejected authentications")[1]
    assert f"web:{ESCAPED}" in rejections
    assert "127.0.0.1" in rejections
    assert "console login failed: unknown account" in rejections
    assert "starts at the last restart" in rejections
    assert "wrong password" not in rejections


async def test_dashboard_shows_agent_rejection(admin_client, database):
    agent = await registered_agent(admin_client, database, "lab-pc-01")
    agent.agent_key = "wrong-key-value"
    status, _ = await agent.call("hello.json")

    text = await (await admin_client.get("/")).text()
    rejections = text.split("Rejected authentications")[1]

    assert status == 401
    assert "invalid agent key or signature for computer lab-pc-01" in rejections
    assert "<td>lab-pc-01</td>" in rejections
    assert "wrong-key-value" not in rejections


async def test_dashboard_counts_throttled_requests(admin_client, database):
    agent = await registered_agent(admin_client, database, "lab-pc-01")
    agent.agent_key = "wrong-key-value"
    for _ in range(3):
        await agent.call("hello.json")
    statuses = [(await agent.call("hello.json"))[0] for _ in range(4)]

    text = await (await admin_client.get("/")).text()
    rows = text.split('<table id="rejections">')[1].split("<tr>")[2:]

    assert statuses == [429, 429, 429, 429]
    assert "throttled: address blocked" in rows[0]
    assert "<td>4</td>" in rows[0]
    assert "invalid agent key" in rows[1]
    assert "<td>3</td>" in rows[1]


async def test_deploy_to_group_creates_jobs(admin_client, database):
    await computers.add(database, "pc-a")
    await computers.add(database, "pc-b")
    await groups.add(database, COMPUTER_GROUPS, "office", None)
    await memberships.add_member(database, COMPUTER_GROUPS, "office", "pc-b")
    token = await session_token(admin_client)
    await admin_client.post("/packages", data=upload_form(token, None))

    await admin_client.post(
        "/deploy",
        data={"csrf_token": token, "name": "office", "package": "1", "group": "1"},
    )

    hostnames = await database.fetch_all(
        "SELECT c.hostname FROM job j JOIN computer c ON c.id = j.computer_id"
    )
    assert [row["hostname"] for row in hostnames] == ["pc-b"]


async def test_pages_send_content_security_policy(admin_client):
    response = await admin_client.get("/")

    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self';" in policy
    assert "style-src 'self';" in policy
    assert "unsafe-inline" not in policy
    assert "frame-ancestors 'none'" in policy


@pytest.mark.parametrize(
    ("part", "whole", "expected"),
    [(0, 4, "w-0"), (1, 200, "w-5"), (1, 8, "w-15"), (1, 2, "w-50"), (3, 3, "w-100"),
     (5, 3, "w-100"), (1, 0, "w-0"), (None, 4, "w-0")],
)  # fmt: skip
def test_width_class_steps(part, whole, expected):
    assert pages.width_class(part, whole) == expected


async def test_pages_have_no_inline_styles(admin_client, database):
    await registered_agent(admin_client, database, "lab-pc-01")
    token = await session_token(admin_client)
    await admin_client.post("/packages", data=upload_form(token, None))
    await admin_client.post(
        "/deploy",
        data={"csrf_token": token, "name": "one", "package": "1", "computer": "1"},
    )

    for path in ("/", "/computers/1", "/jobs", "/jobs/1", "/packages", "/settings"):
        text = await (await admin_client.get(path)).text()
        assert "style=" not in text, path
        assert "<style" not in text, path


async def test_expired_session_redirects(admin_client, database):
    async with database.transaction() as connection:
        await connection.execute(
            "UPDATE admin_session SET expires = '2000-01-01 00:00:00'"
        )

    response = await admin_client.get("/", allow_redirects=False)

    assert response.status == 303


async def test_removed_account_loses_session(admin_client, database):
    await admins.remove_user(database, "alice")

    response = await admin_client.get("/", allow_redirects=False)

    assert response.status == 303
    assert await database.fetch_value("SELECT COUNT(*) FROM admin_session") == 0


async def test_dashboard_counts_online_offline(admin_client, database):
    await registered_agent(admin_client, database, "lab-pc-01")
    await computers.add(database, "never-seen")

    text = await (await admin_client.get("/")).text()

    assert '<strong id="online">1</strong>' in text
    assert '<strong id="offline">1</strong>' in text


async def test_container_list_counts_states(admin_client, database):
    await computers.add(database, "pc-a")
    await computers.add(database, "pc-b")
    token = await session_token(admin_client)
    await admin_client.post("/packages", data=upload_form(token, None))
    await admin_client.post(
        "/deploy",
        data={"csrf_token": token, "name": "two", "package": "1",
              "computer": ["1", "2"]},
    )  # fmt: skip
    async with database.transaction() as connection:
        await connection.execute("UPDATE job SET state = 3 WHERE computer_id = 1")

    text = await (await admin_client.get("/jobs")).text()

    assert 'class="succeeded w-50"' in text
    assert "<td>1</td><td>0</td><td>0</td><td>1</td>" in text


async def test_upload_long_field_rejected(admin_client, database):
    token = await session_token(admin_client)
    form = upload_form(token, None)
    form.add_field("description", "x" * (MAX_FIELD_SIZE + 1))

    response = await admin_client.post("/packages", data=form)

    assert response.status == 400
    assert "is too long" in await response.text()
    assert await database.fetch_value("SELECT COUNT(*) FROM package") == 0


async def test_container_buttons_change_jobs(admin_client, database):
    await computers.add(database, "pc-a")
    token = await session_token(admin_client)
    await admin_client.post("/packages", data=upload_form(token, None))
    await admin_client.post(
        "/deploy",
        data={"csrf_token": token, "name": "one", "package": "1", "computer": "1"},
    )
    async with database.transaction() as connection:
        await connection.execute("UPDATE job SET state = -1, return_code = 1")

    await admin_client.post("/jobs/1/disable", data={"csrf_token": token})
    disabled = await database.fetch_value("SELECT enabled FROM job_container")
    await admin_client.post("/jobs/1/renew", data={"csrf_token": token})

    assert disabled == 0
    assert await database.fetch_value("SELECT state FROM job") == 0
    assert await database.fetch_value("SELECT return_code FROM job") is None


async def test_container_download_whole_percent(admin_client, database):
    agent = await registered_agent(admin_client, database, "pc-a")
    token = await session_token(admin_client)
    await admin_client.post("/packages", data=upload_form(token, zip_bytes()))
    await admin_client.post(
        "/deploy",
        data={"csrf_token": token, "name": "one", "package": "1", "computer": "1"},
    )
    await agent.hello()
    # The captured report carries download-progress 7.988532087725628.
    status, _ = await agent.call(
        "update_job_state-downloading-progress.json", **{"job-id": 1}
    )

    page = await (await admin_client.get("/jobs/1")).text()
    state = await (await admin_client.get("/jobs/1/state.json")).json()

    assert status == 200
    assert '<td data-field="download_progress">7</td>' in page
    assert state["jobs"][0]["download_progress"] == 7


async def test_dashboard_shows_client_api_rejection(admin_client, config):
    key = await create_key(config, "ci", "read")
    status, _ = await call(admin_client, key[:-1] + "x", "oco.info")

    text = await (await admin_client.get("/")).text()
    rejections = text.split("Rejected authentications")[1]

    assert status == 401
    assert "<td>client-api</td><td>unknown or revoked key</td>" in rejections
    assert key[:-1] not in rejections
