"""Odd but valid agent input that must be stored faithfully, not rejected."""

from __future__ import annotations

import json

import pytest

from ocoserver.config import Config
from ocoserver.store.inventory import SCALAR_FIELDS
from ocoserver.store.jobs import MAX_JOB_OUTPUT_LENGTH
from tests.agents import agent_dumps
from tests.hostile import GEN1_HOST, GEN2_HOST, Fleet, FleetTemplate, build_template

HOSTS = {1: GEN1_HOST, 2: GEN2_HOST}


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> FleetTemplate:
    return build_template(tmp_path_factory.mktemp("fleet"))


@pytest.fixture
def config(tmp_path, template) -> Config:
    template.copy_to(tmp_path / "data")
    return Config.for_tests(tmp_path / "data")


@pytest.fixture
def fleet(client, template) -> Fleet:
    return template.fleet(client)


async def computer_row(database, generation):
    return await database.fetch_one(
        "SELECT * FROM computer WHERE hostname = ?", (HOSTS[generation],)
    )


async def post_ok(fleet: Fleet, generation: int, body) -> dict:
    response = await fleet.post(generation, body)
    payload = await response.json()
    assert response.status == 200, payload
    return payload


@pytest.mark.parametrize("generation", [1, 2])
async def test_large_inventory_fits_default_limit(fleet, database, generation):
    body = fleet.agent(generation).body("update.json")
    body["params"]["data"]["software"] = [
        {"name": f"package-{i:05d}", "version": f"1.{i % 50}.{i % 7}-1ubuntu0.24.04",
         "description": f"a library for something useful, number {i}, described"}
        for i in range(10000)
    ]  # fmt: skip

    await post_ok(fleet, generation, body)

    computer = await computer_row(database, generation)
    count = await database.fetch_value(
        "SELECT COUNT(*) FROM computer_software WHERE computer_id = ?", (computer["id"],)
    )
    assert count == 10000
    assert len(agent_dumps(body)) < 2 * 1024 * 1024


@pytest.mark.parametrize("generation", [1, 2])
async def test_job_state_numbers_as_strings(fleet, database, generation):
    agent = fleet.agent(generation)
    job_id = fleet.own_job(generation)
    progress = agent.body("update_job_state-downloading-progress.json")
    progress["params"]["data"].update(
        {"job-id": str(job_id), "state": "1", "download-progress": " 55.5 "}
    )
    finished = agent.body("update_job_state-finished.json")
    finished["params"]["data"].update(
        {"job-id": str(job_id), "state": "3", "return-code": "0"}
    )

    await post_ok(fleet, generation, progress)
    stored_progress = await database.fetch_value(
        "SELECT download_progress FROM job WHERE id = ?", (job_id,)
    )
    payload = await post_ok(fleet, generation, finished)

    assert stored_progress == 55.5
    assert payload["result"]["params"]["job-succeeded"] is True
    job = await database.fetch_one(
        "SELECT state, return_code FROM job WHERE id = ?", (job_id,)
    )
    assert job == {"state": 3, "return_code": 0}


async def test_long_job_output_keeps_end(fleet, database):
    job_id = fleet.own_job(2)
    output = "x" * MAX_JOB_OUTPUT_LENGTH + "installed ok\n"
    finished = fleet.agent(2).body("update_job_state-finished.json")
    finished["params"]["data"].update({"job-id": job_id, "message": output})

    payload = await post_ok(fleet, 2, finished)

    assert payload["result"]["params"]["job-succeeded"] is True
    stored = await database.fetch_value("SELECT message FROM job WHERE id = ?", (job_id,))
    mark = f"[ocoserver: earlier output removed, {len('installed ok') + 1} characters]\n"
    assert stored.startswith(mark)
    assert stored.endswith("xinstalled ok\n")
    assert len(stored) == len(mark) + MAX_JOB_OUTPUT_LENGTH


@pytest.mark.parametrize("flag", [True, 1, "1", "true", "True"])
async def test_force_update_flag_forms(fleet, flag):
    body = fleet.signed.body("hello.json", force_update=flag)

    payload = await post_ok(fleet, 2, body)

    assert payload["result"]["params"]["update"] == 1


@pytest.mark.parametrize("generation", [1, 2])
async def test_check_in_values_stored(fleet, database, generation):
    body = fleet.agent(generation).body("hello.json")
    body["params"]["data"].update(
        {"uptime": "3245", "battery_level": False, "battery_status": [1, "full"]}
    )
    body["params"]["data"]["networks"] = [{"address": "192.0.2.80", "mac": 7}]

    await post_ok(fleet, generation, body)

    computer = await computer_row(database, generation)
    assert computer["uptime"] == "3245"
    assert computer["battery_level"] == 0
    assert computer["battery_status"] == '[1,"full"]'
    network = await database.fetch_one(
        "SELECT address, mac, netmask FROM computer_network WHERE computer_id = ?",
        (computer["id"],),
    )
    assert network == {"address": "192.0.2.80", "mac": 7, "netmask": None}


@pytest.mark.parametrize("generation", [1, 2])
async def test_odd_numbers_stored_as_text(fleet, database, generation):
    body = fleet.agent(generation).body("update.json")
    body["params"]["data"]["serial"] = 2**70
    raw = agent_dumps(body).replace(b'"ram": ', b'"ram": 1e400, "x": ', 1)
    raw = raw.replace(b'"cpu": ', b'"cpu": ' + b"7" * 5000 + b', "y": ', 1)

    await post_ok(fleet, generation, raw)

    computer = await computer_row(database, generation)
    assert computer["ram"] == "1e400"
    assert computer["serial"] == str(2**70)
    assert computer["cpu"] == "7" * 5000


async def test_duplicate_keys_last_wins(fleet, database):
    body = fleet.plain.body("update.json")
    raw = agent_dumps(body).replace(b'"os": ', b'"os": "first", "os": ', 1)

    await post_ok(fleet, 1, raw)

    computer = await computer_row(database, 1)
    assert computer["os"] == body["params"]["data"]["os"]


async def test_duplicate_hostname_last_wins(fleet, database):
    body = fleet.plain.body("hello.json")
    body["params"]["data"]["agent_version"] = "9.9.9"
    raw = agent_dumps(body).replace(
        b'"hostname": ', b'"hostname": "lab-pc-02", "hostname": ', 1
    )

    await post_ok(fleet, 1, raw)

    computer = await computer_row(database, 1)
    assert computer["agent_version"] == "9.9.9"


@pytest.mark.parametrize("generation", [1, 2])
async def test_unusual_text_stored_faithfully(fleet, database, generation):
    names = ["nul\u0000inside", "tab\tand\nnewline", "e\u0301 and \u00e9", "\U0001f600"]
    body = fleet.agent(generation).body("update.json")
    body["params"]["data"]["software"] = [
        {"name": name, "version": "1", "description": ""} for name in names
    ]
    raw = agent_dumps(body).replace(b'"version": "1"', b'"version": "\\udcfc"', 1)

    await post_ok(fleet, generation, raw)

    computer = await computer_row(database, generation)
    rows = await database.fetch_all(
        "SELECT name, version FROM computer_software WHERE computer_id = ? ORDER BY id",
        (computer["id"],),
    )
    assert [row["name"] for row in rows] == names
    assert rows[0]["version"] == "\\udcfc"


@pytest.mark.parametrize("generation", [1, 2])
async def test_every_scalar_field_any_type(fleet, database, generation):
    samples = ["12", 12, 2.5, True, None, {"a": [1, "b"]}, [], "", "-"]
    values = {field: samples[i % len(samples)] for i, field in enumerate(SCALAR_FIELDS)}
    body = fleet.agent(generation).body("update.json")
    body["params"]["data"].update(values)

    await post_ok(fleet, generation, body)

    computer = await computer_row(database, generation)
    stored = {field: computer[field] for field in SCALAR_FIELDS}
    expected = {field: stored_form(value) for field, value in values.items()}
    assert stored == expected


def stored_form(value):
    """Return what a scalar column holds for a plain JSON value."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return value
