"""The confirmation pages in front of the web console's Remove buttons.

Each removal is a GET page that names what goes and changes nothing,
then a POST with the session's CSRF token that removes.
"""

from __future__ import annotations

from typing import Any

import pytest

from ocoserver.db import Database
from ocoserver.store import computers, events, password_rules
from tests.console import add_admin, log_in, session_token
from tests.test_web import ESCAPED, SCRIPT, upload_form, zip_bytes

# Each removable kind: its confirmation path, the table its row lives in,
# and the text the confirmation page names it by.
REMOVALS = [
    ("/computers/1/remove", "computer", "lab-pc-01"),
    ("/packages/1/remove", "package", "notepad 2.0"),
    ("/jobs/1/remove", "job_container", "rollout"),
    ("/settings/event-rules/1/remove", "event_rule", "query *[System]"),
    ("/settings/password-rules/1/remove", "password_rule", "user administrator"),
]


@pytest.fixture
async def admin_client(client: Any, database: Database) -> Any:
    await add_admin(database)
    assert (await log_in(client)).status == 303
    return client


async def seed(client: Any, database: Database) -> None:
    """Add one of each removable kind through the console's own forms."""
    await computers.add(database, "lab-pc-01")
    token = await session_token(client)
    await client.post("/packages", data=upload_form(token, zip_bytes()))
    await client.post(
        "/deploy",
        data={"csrf_token": token, "name": "rollout", "package": "1", "computer": "1"},
    )
    await events.add_rule(database, "System", "*[System]")
    spec = password_rules.RuleSpec(
        username="administrator", hostnames=(), alphabet="abcdefghjk23456789",
        length=16, valid_days=30, history=3,
    )  # fmt: skip
    await password_rules.add(database, spec)


async def count_rows(database: Database, table: str) -> int:
    return await database.fetch_value(f"SELECT COUNT(*) FROM {table}")


@pytest.mark.parametrize(("path", "table", "name"), REMOVALS)
async def test_confirm_page_changes_nothing(admin_client, database, path, table, name):
    await seed(admin_client, database)

    response = await admin_client.get(path)
    text = await response.text()

    assert response.status == 200
    assert name in text
    assert f'action="{path}"' in text
    assert 'name="csrf_token"' in text
    assert await count_rows(database, table) == 1


@pytest.mark.parametrize(("path", "table", "name"), REMOVALS)
async def test_confirm_post_without_csrf_rejected(
    admin_client, database, path, table, name
):
    await seed(admin_client, database)

    response = await admin_client.post(path, data={})

    assert response.status == 403
    assert await count_rows(database, table) == 1


async def test_confirm_post_removes_container(admin_client, database):
    await seed(admin_client, database)
    token = await session_token(admin_client)

    response = await admin_client.post(
        "/jobs/1/remove", data={"csrf_token": token}, allow_redirects=False
    )

    assert response.status == 303
    assert await count_rows(database, "job_container") == 0
    assert await count_rows(database, "job") == 0


@pytest.mark.parametrize(("path", "table", "name"), REMOVALS)
async def test_confirm_post_with_csrf_removes(
    admin_client, database, path, table, name
):
    await seed(admin_client, database)
    token = await session_token(admin_client)
    if table == "package":
        # A package with waiting jobs cannot go, so its container goes first.
        await admin_client.post("/jobs/1/remove", data={"csrf_token": token})

    response = await admin_client.post(
        path, data={"csrf_token": token}, allow_redirects=False
    )

    assert response.status == 303
    assert await count_rows(database, table) == 0


async def test_confirm_computer_lists_dependents(admin_client, database):
    await seed(admin_client, database)

    text = await (await admin_client.get("/computers/1/remove")).text()

    assert "1 job in job containers" in text
    assert "inventory" in text
    assert 'href="/computers/1">Cancel' in text


async def test_confirm_package_names_file(admin_client, database):
    await seed(admin_client, database)
    size = len(zip_bytes())

    text = await (await admin_client.get("/packages/1/remove")).text()

    assert f"its file ({size} bytes)" in text
    assert "1 job in job containers" in text


async def test_confirm_escapes_hostname(admin_client, database):
    await computers.add(database, SCRIPT)

    text = await (await admin_client.get("/computers/1/remove")).text()

    assert ESCAPED in text
    assert SCRIPT not in text


async def test_confirm_unknown_id_not_found(admin_client):
    response = await admin_client.get("/computers/7/remove")

    assert response.status == 404
    assert "the Computers page" in await response.text()


async def test_remove_buttons_link_to_confirm(admin_client, database):
    await seed(admin_client, database)

    computer = await (await admin_client.get("/computers/1")).text()
    settings = await (await admin_client.get("/settings")).text()

    assert 'href="/computers/1/remove"' in computer
    assert 'action="/computers/1/remove"' not in computer
    assert 'href="/settings/event-rules/1/remove"' in settings
    assert 'href="/settings/password-rules/1/remove"' in settings
