"""Generation 2 agents (signed requests), fed the captured 1.2.0 requests."""

from __future__ import annotations

import json
import time

import orjson
import pytest

from ocoserver.db import open_database
from ocoserver.signing import ResponseClock, sign, signature_matches
from ocoserver.store import jobs, settings
from tests.admin import (
    add_package,
    deploy,
    job_rows,
    make_package_folder,
    register,
    run_cli,
)
from tests.agents import (
    DATA_VECTORS,
    GEN2,
    PlainAgent,
    SignedAgent,
    agent_dumps,
    snapshot,
)
from tests.conftest import load_fixture


async def signed_agent(client, config) -> SignedAgent:
    """Register lab-pc-01 with the CLI and complete the signed first contact."""
    await register(config)
    agent = SignedAgent(client)
    await agent.hello()
    return agent


async def test_signed_fixture_full_pass(client, config, database, tmp_path):
    await register(config)
    package_id = await add_package(config, str(make_package_folder(tmp_path)))
    container_id = await deploy(config, [package_id], ["lab-pc-01"])
    await run_cli(config, "event-rule", "add", "--log", "journalctl", "--query", "x")
    agent = SignedAgent(client)

    status, payload = await agent.call("hello-first.json")
    assert status == 200
    first = payload["result"]["params"]
    assert len(first["agent-key"]) == 32
    assert len(first["server-key"]) == 32
    assert first["update"] == 1
    assert first["update-passwords"] == []
    agent.agent_key = first["agent-key"]

    params = await agent.hello()
    assert params["server-key"] is None
    assert params["agent-key"] is None
    [job] = await job_rows(database, container_id)
    assert [entry["id"] for entry in params["software-jobs"]] == [job["id"]]

    status, payload = await agent.call("update.json")
    assert status == 200
    assert payload["result"]["params"] == {"policies": {}}
    response = await agent.download(package_id)
    content = await response.read()
    assert response.status == 200
    assert response.headers["Content-Length"] == str(len(content))
    package = await database.fetch_one("SELECT file_name FROM package")
    assert content == (config.depot_path / package["file_name"]).read_bytes()

    for fixture in (
        "update_job_state-downloading-start.json",
        "update_job_state-downloading-progress.json",
        "update_job_state-downloading-done-101.json",
        "update_job_state-executing.json",
        "update_job_state-finished.json",
    ):
        status, payload = await agent.call(fixture, **{"job-id": job["id"]})
        assert status == 200, payload
    assert payload["result"]["params"] == {"job-succeeded": True}
    status, _ = await agent.call("events.json")
    assert status == 200
    status, _ = await agent.call("passwords.json")
    assert status == 200

    [job] = await job_rows(database, container_id)
    assert job["state"] == jobs.SUCCEEDED
    assert await database.fetch_value("SELECT COUNT(*) FROM event") == 2
    software = load_fixture(GEN2, "update.json")["params"]["data"]["software"]
    assert await database.fetch_value(
        "SELECT COUNT(*) FROM computer_software"
    ) == len(software)
    users = await database.fetch_all("SELECT username, uid FROM computer_user ORDER BY id")
    assert users[0] == {"username": "nobody", "uid": 65534}
    computer = await database.fetch_one("SELECT signed, battery_level FROM computer")
    assert computer == {"signed": 1, "battery_level": 0}


async def test_signed_self_registration(client, database):
    await settings.set_value(database, settings.SELF_REGISTRATION, "1")
    await settings.set_value(database, settings.REGISTRATION_KEY, "office-secret-1")
    agent = SignedAgent(client, hostname="new-pc", agent_key="office-secret-1")

    params = await agent.hello()

    assert params["update"] == 1
    assert agent.agent_key != "office-secret-1"
    assert agent.server_key == params["server-key"]
    params = await agent.hello()
    assert params["agent-key"] is None
    row = await database.fetch_one("SELECT hostname, signed, keys_confirmed FROM computer")
    assert row == {"hostname": "new-pc", "signed": 1, "keys_confirmed": 1}


def test_hmac_vectors_match_agent():
    vectors = json.loads(DATA_VECTORS.read_text(encoding="utf-8"))

    for vector in vectors:
        raw = vector["raw_body"].encode("utf-8")
        if vector["direction"] == "agent -> server":
            assert signature_matches(raw, vector["key"], vector["x-oco-agent-signature"])
            assert not signature_matches(raw, vector["key"] + "x",
                                         vector["x-oco-agent-signature"])
        else:
            assert sign(raw, vector["key"]) == vector["x-oco-server-signature"]


async def test_hmac_vector_first_contact_accepted(client, config):
    await register(config)
    vector = json.loads(DATA_VECTORS.read_text(encoding="utf-8"))[0]
    agent = SignedAgent(client)

    response = await agent.post_raw(
        vector["raw_body"].encode("utf-8"), vector["x-oco-agent-signature"]
    )

    assert response.status == 200
    payload = await response.json()
    assert len(payload["result"]["params"]["agent-key"]) == 32


async def test_upgrade_from_plain_key(client, config, database):
    await register(config)
    plain = PlainAgent(client)
    await plain.hello()
    await plain.hello()
    upgraded = SignedAgent(client, agent_key=plain.agent_key)
    upgraded.server_key = plain.server_key

    params = await upgraded.hello()

    assert params["server-key"] is None
    assert params["agent-key"] is None
    assert await database.fetch_value("SELECT signed FROM computer") == 1
    status, payload = await plain.call("hello.json")
    assert status == 401
    assert payload["error"]["code"] == -32001


async def test_reordered_request_within_window(client, config):
    agent = await signed_agent(client, config)
    await agent.hello()
    late = agent.body("update_job_state-executing-output.json")
    late["params"]["data"]["job-id"] = 424242
    late["params"]["timestamp"] = round(agent.last_timestamp - 2, 4)

    status, payload = await agent.send(late)

    # Accepted by the replay rule, then rejected by the method: the job is unknown.
    assert status == 400
    assert payload["error"]["code"] == -32602
    earlier = agent.body("hello.json")
    earlier["params"]["timestamp"] = round(agent.last_timestamp - 3, 4)
    status, _ = await agent.send(earlier)
    assert status == 200


async def test_equal_timestamps_distinct_bodies(client, config):
    agent = await signed_agent(client, config)
    first = agent.body("hello.json")
    second = agent.body("events.json")
    second["params"]["timestamp"] = first["params"]["timestamp"]

    statuses = [(await agent.send(body))[0] for body in (first, second)]

    assert statuses == [200, 200]


async def test_future_timestamp_not_stored(client, config, database):
    agent = await signed_agent(client, config)
    before = await database.fetch_value("SELECT agent_timestamp FROM computer")
    body = agent.body("hello.json")
    body["params"]["timestamp"] = round(time.time() + 3600, 4)

    status, _ = await agent.send(body)

    assert status == 401
    assert await database.fetch_value("SELECT agent_timestamp FROM computer") == before
    agent.last_timestamp = 0
    status, _ = await agent.call("hello.json")
    assert status == 200


async def test_force_update_requests_inventory(client, config):
    agent = await signed_agent(client, config)
    await agent.call("update.json")
    assert (await agent.hello())["update"] == 0

    status, payload = await agent.call("hello.json", force_update=True)

    assert status == 200
    assert payload["result"]["params"]["update"] == 1


async def test_services_keep_last_change(client, config, database):
    agent = await signed_agent(client, config)
    services = [
        {"status": "0", "name": "disk", "merics": "used=40;80;90", "details": "ok"},
        {"status": "2", "name": "backup", "merics": "-", "details": "failed"},
    ]
    await agent.call("hello.json", services=services)
    async with database.transaction() as connection:
        await connection.execute(
            "UPDATE computer_service SET last_change = '2001-01-01 00:00:00'"
        )
    services[1] = {**services[1], "status": "0", "details": "ok"}

    await agent.call("hello.json", services=services)

    rows = {
        row["name"]: row
        for row in await database.fetch_all("SELECT * FROM computer_service")
    }
    assert rows["disk"]["metrics"] == "used=40;80;90"
    assert rows["disk"]["last_change"] == "2001-01-01 00:00:00"
    assert rows["backup"]["status"] == "0"
    assert rows["backup"]["last_change"] != "2001-01-01 00:00:00"


async def test_response_clock_rises_across_restart(tmp_path):
    path = tmp_path / "clock.sqlite3"
    async with open_database(path) as database:
        clock = ResponseClock()
        await clock.load(database)
        values = [await clock.next(database) for _ in range(50)]
    async with open_database(path) as database:
        restarted = ResponseClock()
        await restarted.load(database)
        after = await restarted.next(database)

    assert values == sorted(set(values))
    assert after > values[-1]
    assert after >= values[-1] + 59


REJECTIONS = ["tampered", "wrong-key", "unsigned", "plain-key", "replayed",
              "older-than-window", "download-without-job", "bad-timestamp"]


@pytest.mark.parametrize("case", REJECTIONS)
async def test_signed_rejection_changes_nothing(client, config, database, case, tmp_path):
    package_id = await add_package(config, str(make_package_folder(tmp_path)))
    agent = await signed_agent(client, config)
    await agent.hello()
    body = agent.body("hello.json")
    raw = agent_dumps(body)
    if case == "replayed":
        response = await agent.post_raw(raw, agent.sign(raw))
        assert response.status == 200
    before = snapshot(config.database_path)

    response = await _send_signed_rejected(agent, case, body, raw, package_id)

    # A malformed timestamp under a valid signature is an invalid request.
    expected = (400, -32602) if case == "bad-timestamp" else (401, -32001)
    assert response.status == expected[0]
    payload = await response.json()
    assert payload["error"]["code"] == expected[1]
    assert snapshot(config.database_path) == before


async def _send_signed_rejected(agent, case, body, raw, package_id):
    if case == "tampered":
        return await agent.post_raw(raw.replace(b"1.2.0", b"6.6.6"), agent.sign(raw))
    if case == "wrong-key":
        return await agent.post_raw(raw, agent.sign(raw, key="not-the-key"))
    if case == "unsigned":
        return await agent.post_raw(raw, None)
    if case == "plain-key":
        body["params"]["agent-key"] = agent.agent_key
        return await agent.post_raw(agent_dumps(body), None)
    if case == "replayed":
        return await agent.post_raw(raw, agent.sign(raw))
    if case == "older-than-window":
        body["params"]["timestamp"] = round(agent.last_timestamp - 600, 4)
        older = agent_dumps(body)
        return await agent.post_raw(older, agent.sign(older))
    if case == "download-without-job":
        return await agent.download(package_id)
    if case == "bad-timestamp":
        body["params"]["timestamp"] = "yesterday"
        odd = agent_dumps(body)
        return await agent.post_raw(odd, agent.sign(odd))
    raise AssertionError(case)


async def test_signed_response_bytes_are_signed(client, config):
    agent = await signed_agent(client, config)
    body = agent.body("hello.json")
    raw = agent_dumps(body)

    response = await agent.post_raw(raw, agent.sign(raw))

    content = await response.read()
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    assert response.headers["x-oco-server-signature"] == sign(content, agent.server_key)
    assert orjson.loads(content)["result"]["timestamp"] > 0


async def test_reset_keys_allows_new_first_contact(client, config, database):
    agent = await signed_agent(client, config)
    old_key = agent.agent_key

    code, output = await run_cli(config, "computer", "reset-keys", "lab-pc-01")

    assert code == 0
    assert "keys of lab-pc-01 reset" in output
    row = await database.fetch_one(
        "SELECT agent_key, signed, agent_timestamp FROM computer"
    )
    assert row["agent_key"] == ""
    assert row["signed"] == 0
    assert row["agent_timestamp"] is None
    assert await database.fetch_value("SELECT COUNT(*) FROM seen_signature") == 0
    fresh = SignedAgent(client)
    params = await fresh.hello()
    assert len(params["agent-key"]) == 32
    assert params["agent-key"] != old_key
    status, payload = await agent.call("hello.json")
    assert status == 401
    assert payload["error"]["code"] == -32001
