"""Which computer record an agent request belongs to: uid, hostname, keys.

The captured requests of both agent versions carry the same uid, so two
test agents with different hostnames behave like two machines cloned from
one image.
"""

from __future__ import annotations

import logging
import sqlite3

import pytest

from ocoserver.store import settings
from tests.admin import register
from tests.agents import PlainAgent, SignedAgent, snapshot

UID = "5f0e8a52-0c4e-4f7e-9a3b-2d1c6e7f8a90"


async def confirmed(client, config, hostname: str = "lab-pc-01") -> PlainAgent:
    """Register a computer and let its agent receive and use its keys."""
    await register(config, hostname)
    agent = PlainAgent(client, hostname=hostname)
    await agent.hello()
    await agent.hello()
    return agent


async def computer_rows(database) -> list[dict]:
    return await database.fetch_all(
        "SELECT id, hostname, uid, agent_key FROM computer ORDER BY id"
    )


async def test_uid_stored_at_first_contact(client, config, database):
    await register(config)

    await PlainAgent(client).hello()

    [row] = await computer_rows(database)
    assert row["uid"] == UID


async def test_renamed_machine_keeps_record(client, config, database):
    agent = await confirmed(client, config)
    [before] = await computer_rows(database)

    agent.hostname = "lab-pc-renamed"
    await agent.hello()

    [after] = await computer_rows(database)
    assert after["id"] == before["id"]
    assert after["hostname"] == "lab-pc-renamed"
    assert after["agent_key"] == before["agent_key"]


async def test_signed_rename_keeps_record(client, config, database):
    await register(config)
    agent = SignedAgent(client)
    await agent.hello()
    await agent.hello()

    agent.hostname = "lab-pc-renamed"
    status, _ = await agent.call("hello.json")

    assert status == 200
    [row] = await computer_rows(database)
    assert row["hostname"] == "lab-pc-renamed"


async def test_hostname_case_ignored(client, config, database):
    agent = await confirmed(client, config)

    agent.hostname = "LAB-PC-01"
    status, _ = await agent.call("hello.json")

    assert status == 200
    [row] = await computer_rows(database)
    assert row["hostname"] == "lab-pc-01"


async def test_cloned_uid_without_key_rejected(client, config, database, caplog):
    await confirmed(client, config)
    await settings.set_value(database, settings.SELF_REGISTRATION, "1")
    await settings.set_value(database, settings.REGISTRATION_KEY, "office-secret-1")
    clone = PlainAgent(client, hostname="lab-pc-02")
    clone.agent_key = "office-secret-1"
    before = snapshot(config.database_path)

    status, payload = await clone.call("hello.json")

    assert status == 401
    assert payload["error"]["code"] == -32001
    assert snapshot(config.database_path) == before
    assert f"uid {UID} belongs to computer lab-pc-01" in caplog.text
    # The client learns that the uid is taken, not by which computer.
    assert "lab-pc-01" not in payload["error"]["message"]
    assert "registered to another computer" in payload["error"]["message"]


async def test_cloned_uids_keep_own_records(client, config, database, caplog):
    caplog.set_level(logging.INFO, logger="ocoserver")
    first = await confirmed(client, config, "lab-pc-01")
    second = await confirmed(client, config, "lab-pc-02")

    first_status, _ = await first.call("hello.json")
    second_status, _ = await second.call("hello.json")

    assert first_status == 200
    assert second_status == 200
    rows = await computer_rows(database)
    assert [row["hostname"] for row in rows] == ["lab-pc-01", "lab-pc-02"]
    assert [row["uid"] for row in rows] == [UID, ""]
    assert rows[0]["agent_key"] != rows[1]["agent_key"]
    assert (
        f"computer lab-pc-02 (id 2) reports uid {UID}, which computer lab-pc-01 "
        "(id 1) has; uid not stored"
    ) in caplog.text


async def test_other_key_cannot_take_hostname(client, config, database):
    await confirmed(client, config, "lab-pc-01")
    second = await confirmed(client, config, "lab-pc-02")
    before = snapshot(config.database_path)

    second.hostname = "lab-pc-01"
    status, _ = await second.call("hello.json")

    assert status == 401
    assert snapshot(config.database_path) == before


async def test_uid_holder_keeps_name_on_clash(client, config, database):
    first = await confirmed(client, config, "lab-pc-01")
    await register(config, "lab-pc-02")

    # The uid holder claims a name that another computer has: it is
    # accepted with its own key, and neither record changes its name.
    first.hostname = "lab-pc-02"
    status, _ = await first.call("hello.json")

    assert status == 200
    rows = await computer_rows(database)
    assert [row["hostname"] for row in rows] == ["lab-pc-01", "lab-pc-02"]
    assert rows[1]["agent_key"] == ""


async def test_uid_unique_in_database(client, config, database):
    await register(config, "lab-pc-01")
    await register(config, "lab-pc-02")
    connection = sqlite3.connect(config.database_path)

    connection.execute("UPDATE computer SET uid = 'u-1' WHERE hostname = 'lab-pc-01'")
    with pytest.raises(sqlite3.IntegrityError):
        connection.execute("UPDATE computer SET uid = 'u-1' WHERE hostname = 'lab-pc-02'")
    connection.rollback()
    connection.close()
