"""Form errors of the web console name form fields, not CLI options."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
from aiohttp import FormData

from ocoserver.db import Database
from ocoserver.errors import AdminError
from ocoserver.store import computers, packages
from ocoserver.web.messages import console_message
from tests.console import add_admin, log_in, session_token
from tests.test_web import upload_form

FORM_ERRORS = [
    (
        "/settings/event-rules",
        {"log": "", "query": "*[System]"},
        'event log name is empty: fill in "Log", such as System',
    ),
    (
        "/settings/password-rules",
        {
            "username": "administrator",
            "alphabet": "abcdefghjk2345",
            "length": "3",
            "valid_days": "30",
            "history": "3",
        },
        'invalid "Length" 3: use',
    ),  # fmt: skip
    (
        "/settings",
        {"update_interval": "1"},
        "\"Update interval\" = '1' is invalid",
    ),
]


_ERROR = re.compile(r'<p class="error">(.*?)</p>', re.DOTALL)


async def error_message(response: Any) -> str:
    """Return the error page's message as the browser shows it."""
    match = _ERROR.search(await response.text())
    assert match is not None, "response is no error page"
    return html.unescape(match.group(1))


@pytest.fixture
async def admin_client(client: Any, database: Database) -> Any:
    await add_admin(database)
    assert (await log_in(client)).status == 303
    return client


@pytest.mark.parametrize(("path", "fields", "expected"), FORM_ERRORS)
async def test_form_error_names_field(admin_client, path, fields, expected):
    token = await session_token(admin_client)

    response = await admin_client.post(path, data={"csrf_token": token, **fields})
    message = await error_message(response)

    assert response.status == 400
    assert expected in message
    assert "--" not in message


async def test_upload_without_name_names_field(admin_client):
    token = await session_token(admin_client)
    form = FormData(default_to_multipart=True)
    form.add_field("csrf_token", token)
    form.add_field("family", "")
    form.add_field("version", "1.0")

    response = await admin_client.post("/packages", data=form)

    assert await error_message(response) == 'package name is empty: fill in "Name"'


async def test_deploy_end_before_start_names_field(admin_client, database):
    await computers.add(database, "pc-a")
    token = await session_token(admin_client)
    await admin_client.post("/packages", data=upload_form(token, None))

    response = await admin_client.post(
        "/deploy",
        data={"csrf_token": token, "name": "late", "package": "1", "computer": "1",
              "start": "2030-01-02", "end": "2030-01-01"},
    )  # fmt: skip

    assert 'enter a later "End"' in await error_message(response)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"start": "garbage"}, "\"Start\": invalid time 'garbage': use ISO 8601"),
        ({"end": "garbage"}, "\"End\": invalid time 'garbage': use ISO 8601"),
        ({"name": " "}, 'deployment name is empty: fill in "Name"'),
    ],
)
async def test_deploy_error_names_field(admin_client, database, fields, expected):
    await computers.add(database, "pc-a")
    token = await session_token(admin_client)
    await admin_client.post("/packages", data=upload_form(token, None))
    form = {"csrf_token": token, "name": "rollout", "package": "1", "computer": "1"}

    response = await admin_client.post("/deploy", data={**form, **fields})
    message = await error_message(response)

    assert response.status == 400
    assert message.startswith(expected)
    assert "--" not in message


async def test_package_in_use_names_jobs_page(admin_client, database):
    await computers.add(database, "pc-a")
    token = await session_token(admin_client)
    await admin_client.post("/packages", data=upload_form(token, None))
    await admin_client.post(
        "/deploy",
        data={"csrf_token": token, "name": "one", "package": "1", "computer": "1"},
    )

    response = await admin_client.post("/packages/1/remove", data={"csrf_token": token})
    message = await error_message(response)

    assert "remove their job containers on the Jobs page" in message
    assert "ocoserver" not in message


def test_shared_message_keeps_cli_option():
    spec = packages.PackageSpec(family="", version="1.0", install_procedure="x")

    with pytest.raises(AdminError) as raised:
        packages.validate(spec)

    assert str(raised.value) == "package name is empty: give --name"


def test_unknown_option_left_as_is():
    message = "use --upgrade replace"

    assert console_message(message) == message
