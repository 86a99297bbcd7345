"""Login times in `oco.agent.update`: validated and stored in one UTC form.

The newest stored login is the `logins-since` of the hello response, found
by comparing the stored text, so every stored time must have the same form.
"""

from __future__ import annotations

import datetime

import pytest

from ocoserver import timefmt
from tests.admin import register
from tests.agents import PlainAgent, SignedAgent, snapshot

INVALID_PARAMS = -32602


def login(timestamp: object, username: str = "eve") -> dict[str, object]:
    return {"username": username, "console": "tty1", "timestamp": timestamp}


@pytest.fixture
async def agent(client, config) -> PlainAgent:
    await register(config)
    agent = PlainAgent(client)
    await agent.hello()
    return agent


async def test_garbage_time_rejected(agent, config):
    before = snapshot(config.database_path)

    status, payload = await agent.call(
        "update.json", logins=[login("2024-05-01 08:00:00"), login("zzz garbage")]
    )

    assert status == 400
    assert payload["error"]["code"] == INVALID_PARAMS
    assert payload["error"]["message"] == (
        "data.logins[1].timestamp 'zzz garbage' is not a time: "
        "use 'YYYY-MM-DD HH:MM:SS' in UTC"
    )
    assert snapshot(config.database_path) == before
    params = await agent.hello()
    assert params["logins-since"] == timefmt.EPOCH_TEXT


BAD_TIMES = {
    "number": (1714550400, "is not text"),
    "date-garbage": ("2024-13-01 08:00:00", "is not a time"),
}


@pytest.mark.parametrize("value, reason", BAD_TIMES.values(), ids=BAD_TIMES)
async def test_bad_time_names_entry(agent, value, reason):
    status, payload = await agent.call("update.json", logins=[login(value)])

    assert status == 400
    assert payload["error"]["message"].startswith(
        f"data.logins[0].timestamp {value!r} {reason}"
    )


OUT_OF_RANGE = {
    "two-days-ahead": timefmt.to_text(
        datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=2)
    ),
    "year-9999": "9999-12-31 23:59:59",
    "before-1970": "1969-12-31 23:59:59",
}


@pytest.mark.parametrize("value", OUT_OF_RANGE.values(), ids=OUT_OF_RANGE)
async def test_out_of_range_time_skipped(agent, database, caplog, value):
    logins = [login(value, "eve"), login("2024-05-01 08:00:00", "bob")]

    status, _ = await agent.call("update.json", logins=logins)

    assert status == 200
    rows = await database.fetch_all("SELECT username FROM computer_login")
    assert rows == [{"username": "bob"}]
    assert "skipped 1 logins of computer 1 with a time out of range" in caplog.text
    params = await agent.hello()
    assert params["logins-since"] == "2024-05-01 08:00:00"


async def test_iso_times_stored_as_utc(agent, database):
    logins = [
        login("2024-05-03T23:00:00+02:00", "ann"),
        login("2024-05-03 22:00:00", "bob"),
        login("2024-05-03T20:30:00.75Z", "cid"),
    ]

    status, _ = await agent.call("update.json", logins=logins)

    assert status == 200
    rows = await database.fetch_all(
        "SELECT username, timestamp FROM computer_login ORDER BY username"
    )
    assert rows == [
        {"username": "ann", "timestamp": "2024-05-03 21:00:00"},
        {"username": "bob", "timestamp": "2024-05-03 22:00:00"},
        {"username": "cid", "timestamp": "2024-05-03 20:30:00"},
    ]
    params = await agent.hello()
    assert params["logins-since"] == "2024-05-03 22:00:00"


async def test_entry_without_time_skipped(agent, database):
    status, _ = await agent.call(
        "update.json", logins=[login(""), login(None), login("2024-05-01 08:00:00")]
    )

    assert status == 200
    count = await database.fetch_value("SELECT COUNT(*) FROM computer_login")
    assert count == 1


async def test_signed_agent_time_normalized(client, config, database):
    await register(config)
    agent = SignedAgent(client)
    await agent.hello()

    status, _ = await agent.call(
        "update.json", logins=[login("2024-05-03T08:00:00-01:00")]
    )

    assert status == 200
    stored = await database.fetch_value("SELECT timestamp FROM computer_login")
    assert stored == "2024-05-03 09:00:00"
