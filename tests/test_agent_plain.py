"""Generation 1 agents (plain agent key), fed the captured 1.1.6 requests."""

from __future__ import annotations

import asyncio
import io
import zipfile

import pytest

from ocoserver.store import jobs, settings
from tests.admin import (
    add_package,
    deploy,
    job_rows,
    make_package_folder,
    register,
    run_cli,
)
from tests.agents import GEN1, PlainAgent, snapshot
from tests.conftest import load_fixture


async def test_fixture_pass_stores_inventory(client, config, database):
    await register(config)
    agent = PlainAgent(client)

    status, payload = await agent.call("hello-first.json")
    assert status == 200
    params = payload["result"]["params"]
    assert params["update"] == 1
    assert len(params["agent-key"]) == 32
    assert len(params["server-key"]) == 32
    assert params["logins-since"] == "2000-01-01 00:00:00"
    agent.agent_key = params["agent-key"]
    agent.server_key = params["server-key"]

    status, payload = await agent.call("update.json")
    assert status == 200
    assert payload["result"] == {"success": True, "params": {}}

    fixture = load_fixture(GEN1, "update.json")["params"]["data"]
    computer = await database.fetch_one(
        "SELECT * FROM computer WHERE hostname = 'lab-pc-01'"
    )
    assert computer["os"] == fixture["os"]
    assert computer["os_version"] == fixture["os_version"]
    assert computer["kernel_version"] == fixture["kernel_version"]
    assert computer["ram"] == fixture["ram"]
    assert computer["cpu"] == fixture["cpu"]
    assert computer["secure_boot"] == fixture["secure_boot"]
    assert computer["uptime"] == fixture["uptime"]
    assert computer["domain"] == fixture["domain"]
    assert computer["agent_version"] == "1.1.6"
    software_count = await database.fetch_value(
        "SELECT COUNT(*) FROM computer_software WHERE computer_id = ?",
        (computer["id"],),
    )
    assert software_count == len(fixture["software"])
    first = fixture["software"][0]
    stored = await database.fetch_one(
        "SELECT version, description FROM computer_software WHERE name = ?",
        (first["name"],),
    )
    assert stored == {"version": first["version"], "description": first["description"]}
    partition = await database.fetch_one("SELECT * FROM computer_partition")
    assert partition["size"] == fixture["partitions"][0]["size"]
    assert partition["mountpoint"] == fixture["partitions"][0]["mountpoint"]
    networks = await database.fetch_all(
        "SELECT address, mac FROM computer_network ORDER BY id"
    )
    assert [n["address"] for n in networks] == [n["addr"] for n in fixture["networks"]]
    login_count = await database.fetch_value("SELECT COUNT(*) FROM computer_login")
    assert login_count == len(fixture["logins"])

    params = await agent.hello()
    assert params["update"] == 0
    assert params["agent-key"] is None
    assert params["logins-since"] == max(login["timestamp"] for login in fixture["logins"])


async def test_update_keeps_software_first_seen(client, config, database):
    await register(config)
    agent = PlainAgent(client)
    await agent.hello()
    await agent.call("update.json")
    await database.fetch_all("SELECT 1")
    async with database.transaction() as connection:
        await connection.execute(
            "UPDATE computer_software SET first_seen = '2001-01-01 00:00:00'"
        )

    software = load_fixture(GEN1, "update.json")["params"]["data"]["software"]
    changed = software[1:] + [{"name": "new-tool", "version": "2", "description": ""}]
    status, _ = await agent.call("update.json", software=changed)

    assert status == 200
    rows = await database.fetch_all(
        "SELECT name, first_seen FROM computer_software ORDER BY id"
    )
    names = {row["name"] for row in rows}
    assert software[0]["name"] not in names
    assert "new-tool" in names
    kept = [row for row in rows if row["name"] != "new-tool"]
    assert all(row["first_seen"] == "2001-01-01 00:00:00" for row in kept)
    assert len(rows) == len(software)


async def test_update_missing_list_keeps_stored(client, config, database):
    await register(config)
    agent = PlainAgent(client)
    await agent.hello()
    await agent.call("update.json")
    body = agent.body("update.json")
    del body["params"]["data"]["software"]
    body["params"]["data"]["partitions"] = []

    status, _ = await agent.send(body)

    assert status == 200
    assert await database.fetch_value("SELECT COUNT(*) FROM computer_software") == 761
    assert await database.fetch_value("SELECT COUNT(*) FROM computer_partition") == 0


async def test_events_stored_once_and_since(client, config, database):
    await register(config)
    code, _ = await run_cli(config, "event-rule", "add", "--log", "journalctl",
                            "--query", "PRIORITY=3")
    assert code == 0
    agent = PlainAgent(client)
    params = await agent.hello()
    assert params["events"] == [
        {"since": "2000-01-01 00:00:00", "log": "journalctl", "query": "PRIORITY=3"}
    ]

    for _ in range(2):
        status, payload = await agent.call("events.json")
        assert status == 200
        assert payload["result"]["params"] == {}

    assert await database.fetch_value("SELECT COUNT(*) FROM event") == 2
    params = await agent.hello()
    assert params["events"][0]["since"] == "2026-12-04 11:16:42"
    umlaut = await database.fetch_value("SELECT data FROM event WHERE event_id = '4'")
    assert "umlaut \u00e4" in umlaut


def _events_body(agent: PlainAgent, *timestamps: str) -> dict:
    body = agent.body("events.json")
    entries = body["params"]["data"]["events"]
    for entry, timestamp in zip(entries, timestamps, strict=True):
        entry["timestamp"] = timestamp
    return body


async def test_event_time_invalid_rejected(client, config, database):
    await register(config)
    agent = PlainAgent(client)
    await agent.hello()

    status, payload = await agent.send(
        _events_body(agent, "2026-12-04 11:16:42", "yesterday")
    )

    assert status == 400
    assert payload["error"]["message"].startswith(
        "data.events[1].timestamp 'yesterday' is not a time"
    )
    assert await database.fetch_value("SELECT COUNT(*) FROM event") == 0


async def test_event_time_ahead_skipped(client, config, database, caplog):
    await register(config)
    agent = PlainAgent(client)
    await agent.hello()

    status, _ = await agent.send(
        _events_body(agent, "2026-12-04T12:16:42+01:00", "9999-01-01 00:00:00")
    )

    assert status == 200
    stored = await database.fetch_all("SELECT event_id, timestamp FROM event")
    assert stored == [{"event_id": "1", "timestamp": "2026-12-04 11:16:42"}]
    assert "skipped 1 events of computer 1 with a time out of range" in caplog.text


async def test_deployed_package_full_cycle(client, config, database, tmp_path):
    await register(config)
    package_id = await add_package(config, str(make_package_folder(tmp_path)))
    container_id = await deploy(config, [package_id], ["lab-pc-01"])
    agent = PlainAgent(client)

    params = await agent.hello()
    [job] = await job_rows(database, container_id)
    assert params["software-jobs"] == [
        {
            "id": job["id"],
            "container-id": container_id,
            "package-id": package_id,
            "download": True,
            "procedure": "cat hello.txt",
            "sequence-mode": 0,
            "restart": None,
            "shutdown": None,
            "exit": None,
        }
    ]

    response = await agent.download(package_id)
    content = await response.read()
    assert response.status == 200
    assert response.headers["Content-Length"] == str(len(content))
    package = await database.fetch_one("SELECT * FROM package WHERE id = ?", (package_id,))
    stored = (config.depot_path / package["file_name"]).read_bytes()
    assert content == stored
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        assert archive.read("hello.txt") == b"hello from package 1\n"

    for fixture in (
        "update_job_state-downloading-start.json",
        "update_job_state-downloading-done-101.json",
        "update_job_state-executing.json",
        "update_job_state-executing-output.json",
        "update_job_state-finished.json",
    ):
        body = agent.body(fixture, **{"job-id": job["id"]})
        status, payload = await agent.send(body)
        assert status == 200, payload

    assert payload["result"]["params"] == {"job-succeeded": True}
    [job] = await job_rows(database, container_id)
    assert job["state"] == jobs.SUCCEEDED
    assert job["return_code"] == 0
    assert job["download_progress"] == 100
    assert job["message"] == "hello from package 1\n"
    assert job["download_started"] is not None
    assert job["execution_started"] is not None
    assert job["execution_finished"] is not None
    installed = await database.fetch_all("SELECT package_id FROM computer_package")
    assert installed == [{"package_id": package_id}]
    params = await agent.hello()
    assert params["software-jobs"] == []


async def test_job_nonzero_return_code_fails(client, config, database):
    await register(config)
    package_id = await add_package(config, "-")
    container_id = await deploy(config, [package_id], ["lab-pc-01"])
    agent = PlainAgent(client)
    params = await agent.hello()
    assert params["software-jobs"][0]["download"] is False
    [job] = await job_rows(database, container_id)

    body = agent.body("update_job_state-finished-nonzero.json", **{"job-id": job["id"]})
    body["params"]["data"]["return-code"] = 1
    status, payload = await agent.send(body)

    assert status == 200
    assert payload["result"]["params"] == {"job-succeeded": False}
    [job] = await job_rows(database, container_id)
    assert job["state"] == jobs.FAILED
    assert job["return_code"] == 1
    assert await database.fetch_value("SELECT COUNT(*) FROM computer_package") == 0


async def test_success_codes_accept_3010(client, config, database):
    await register(config)
    code, output = await run_cli(
        config, "package", "add", "-", "--name", "msi", "--version", "1",
        "--install", "msiexec /i x.msi", "--success-codes", "0,3010",
    )
    assert code == 0
    container_id = await deploy(config, [int(output)], ["lab-pc-01"])
    agent = PlainAgent(client)
    await agent.hello()
    [job] = await job_rows(database, container_id)

    body = agent.body("update_job_state-finished.json", **{"job-id": job["id"]})
    body["params"]["data"]["return-code"] = 3010
    _, payload = await agent.send(body)

    assert payload["result"]["params"] == {"job-succeeded": True}


async def test_abort_on_failure_limited_to_computer(client, config, database):
    await register(config)
    await register(config, "lab-pc-02")
    first = await add_package(config, "-", name="first")
    second = await add_package(config, "-", name="second")
    container_id = await deploy(
        config, [first, second], ["lab-pc-01", "lab-pc-02"], "--abort-on-failure"
    )
    agent = PlainAgent(client)
    params = await agent.hello()
    assert [job["package-id"] for job in params["software-jobs"]] == [first, second]
    assert all(job["sequence-mode"] == 1 for job in params["software-jobs"])
    failing_id = params["software-jobs"][0]["id"]

    body = agent.body("update_job_state-finished-nonzero.json", **{"job-id": failing_id})
    status, _ = await agent.send(body)

    assert status == 200
    states = {
        (row["computer"], row["package_id"]): row["state"]
        for row in await job_rows(database, container_id)
    }
    assert states[("lab-pc-01", first)] == jobs.FAILED
    assert states[("lab-pc-01", second)] == jobs.FAILED
    assert states[("lab-pc-02", first)] == jobs.WAITING
    assert states[("lab-pc-02", second)] == jobs.WAITING
    aborted = await database.fetch_value(
        "SELECT message FROM job WHERE package_id = ? AND computer_id = "
        "(SELECT id FROM computer WHERE hostname = 'lab-pc-01')",
        (second,),
    )
    assert aborted == f"aborted because job {failing_id} failed"


async def test_terminal_job_not_reopened(client, config, database):
    await register(config)
    package_id = await add_package(config, "-")
    container_id = await deploy(config, [package_id], ["lab-pc-01"])
    agent = PlainAgent(client)
    await agent.hello()
    [job] = await job_rows(database, container_id)
    await agent.send(agent.body("update_job_state-finished.json", **{"job-id": job["id"]}))

    body = agent.body("update_job_state-executing-output.json", **{"job-id": job["id"]})
    status, payload = await agent.send(body)

    assert status == 200
    assert payload["result"]["params"] == {"job-succeeded": True}
    [job] = await job_rows(database, container_id)
    assert job["state"] == jobs.SUCCEEDED
    assert job["message"] == "hello from package 1\n"


async def test_error_state_fails_job(client, config, database):
    await register(config)
    package_id = await add_package(config, "-")
    container_id = await deploy(config, [package_id], ["lab-pc-01"])
    agent = PlainAgent(client)
    await agent.hello()
    [job] = await job_rows(database, container_id)
    body = agent.body("update_job_state-error.json", **{"job-id": job["id"]})
    # Return code -9999 is a transport failure: agent.max_job_retries (3)
    # puts the job back to waiting before the fourth report fails it.
    for _ in range(config.agent.max_job_retries):
        await agent.send(body)

    status, payload = await agent.send(body)

    assert status == 200
    assert payload["result"]["params"] == {"job-succeeded": False}
    [job] = await job_rows(database, container_id)
    assert job["state"] == jobs.FAILED
    assert job["return_code"] == -9999
    assert job["message"].startswith("404 Client Error")


async def test_refresh_requests_inventory(client, config):
    await register(config)
    agent = PlainAgent(client)
    await agent.hello()
    await agent.call("update.json")
    assert (await agent.hello())["update"] == 0

    code, _ = await run_cli(config, "computer", "refresh", "lab-pc-01")

    assert code == 0
    assert (await agent.hello())["update"] == 1


async def test_lost_hello_response_resends_keys(client, config, database):
    await register(config)
    first = PlainAgent(client)
    keys = await first.hello()

    again = PlainAgent(client)
    repeated = await again.hello()

    assert repeated["agent-key"] == keys["agent-key"]
    assert repeated["server-key"] == keys["server-key"]
    await first.hello()
    late = PlainAgent(client)
    status, _ = await late.call("hello.json")
    assert status == 401


async def test_self_registration_with_key(client, database):
    await settings.set_value(database, settings.SELF_REGISTRATION, "1")
    await settings.set_value(database, settings.REGISTRATION_KEY, "office-secret-1")
    agent = PlainAgent(client, hostname="new-pc")
    agent.agent_key = "office-secret-1"

    params = await agent.hello()

    assert params["update"] == 1
    assert agent.agent_key != "office-secret-1"
    row = await database.fetch_one("SELECT hostname, uid FROM computer")
    assert row == {"hostname": "new-pc", "uid": "5f0e8a52-0c4e-4f7e-9a3b-2d1c6e7f8a90"}


async def test_self_registration_rejects_space_hostname(client, database):
    await settings.set_value(database, settings.SELF_REGISTRATION, "1")
    await settings.set_value(database, settings.REGISTRATION_KEY, "office-secret-1")
    agent = PlainAgent(client, hostname="lab pc 7")
    agent.agent_key = "office-secret-1"

    status, payload = await agent.call("hello-first.json")

    assert status == 400
    assert payload["error"]["code"] == -32602
    assert "spaces" in payload["error"]["message"]
    assert await database.fetch_value("SELECT COUNT(*) FROM computer") == 0


@pytest.mark.parametrize("hostname", ["\u200b", "report\u202eexe.txt"])
async def test_self_registration_rejects_invisible_characters(client, database, hostname):
    await settings.set_value(database, settings.SELF_REGISTRATION, "1")
    await settings.set_value(database, settings.REGISTRATION_KEY, "office-secret-1")
    agent = PlainAgent(client, hostname=hostname)
    agent.agent_key = "office-secret-1"

    status, payload = await agent.call("hello-first.json")

    assert status == 400
    assert "invisible format characters" in payload["error"]["message"]
    assert await database.fetch_value("SELECT COUNT(*) FROM computer") == 0


async def test_unknown_and_wrong_key_alike(client, config, caplog):
    await register(config)
    await PlainAgent(client).hello()
    wrong_key = PlainAgent(client)
    wrong_key.agent_key = "not-the-key"
    unknown = PlainAgent(client, hostname="no-such-pc")

    unknown_body = unknown.body("hello.json")
    unknown_body["params"]["uid"] = "0a1b2c3d-0000-4000-8000-000000000001"

    _, wrong_payload = await wrong_key.call("hello.json")
    _, unknown_payload = await unknown.send(unknown_body)

    assert wrong_payload["error"]["message"] == (
        "computer lab-pc-01 is unknown or its agent key or signature is invalid"
    )
    assert unknown_payload["error"]["message"] == (
        "computer no-such-pc is unknown or its agent key or signature is invalid"
    )
    assert 'reason="invalid agent key or signature for computer lab-pc-01"' in caplog.text
    assert (
        'reason="computer no-such-pc is not registered, and self-registration is off"'
        in caplog.text
    )


async def test_self_registration_enabled_at_once(client, database):
    agent = PlainAgent(client, hostname="new-pc")
    agent.agent_key = "office-secret-1"
    status, _ = await agent.call("hello-first.json")
    assert status == 401

    await settings.set_value(database, settings.SELF_REGISTRATION, "1")
    await settings.set_value(database, settings.REGISTRATION_KEY, "office-secret-1")
    status, _ = await agent.call("hello-first.json")

    assert status == 200


async def test_cli_setting_reaches_server(client, config, monkeypatch):
    # A change from another Database, as from the CLI process, is seen once
    # the server's copy is older than AGENT_SETTINGS_MAX_AGE; 0 skips the wait.
    monkeypatch.setattr(settings, "AGENT_SETTINGS_MAX_AGE", 0.0)
    agent = PlainAgent(client, hostname="new-pc")
    agent.agent_key = "office-secret-1"
    status, _ = await agent.call("hello-first.json")
    assert status == 401

    for key, value in ((settings.SELF_REGISTRATION, "1"),
                       (settings.REGISTRATION_KEY, "office-secret-1")):
        code, _ = await run_cli(config, "setting", "set", key, value)
        assert code == 0
    status, _ = await agent.call("hello-first.json")

    assert status == 200


async def test_concurrent_first_contacts_one_computer(client, database):
    await settings.set_value(database, settings.SELF_REGISTRATION, "1")
    await settings.set_value(database, settings.REGISTRATION_KEY, "office-secret-1")
    agents = []
    for index in range(8):
        agent = PlainAgent(client, hostname="Lab-PC-09" if index % 2 else "lab-pc-09")
        agent.agent_key = "office-secret-1"
        agents.append(agent)

    results = await asyncio.gather(*(a.call("hello-first.json") for a in agents))

    assert all(status == 200 for status, _ in results)
    keys = {payload["result"]["params"]["agent-key"] for _, payload in results}
    assert len(keys) == 1
    assert await database.fetch_value("SELECT COUNT(*) FROM computer") == 1


def _job_state_body(agent: PlainAgent, job_id: int) -> dict:
    return agent.body("update_job_state-finished.json", **{"job-id": job_id})


REJECTIONS = [
    # (id, how to build the request, expected status, expected JSON-RPC code)
    ("wrong-key", "wrong_key", 401, -32001),
    ("unknown-computer", "unknown_computer", 401, -32001),
    ("download-without-job", "download_without_job", 401, -32001),
    ("foreign-job", "foreign_job", 401, -32001),
    ("unknown-job", "unknown_job", 400, -32602),
    ("invalid-json", "invalid_json", 400, -32700),
    ("missing-hostname", "missing_hostname", 400, -32602),
    ("unknown-method", "unknown_method", 400, -32601),
    ("no-key-at-all", "no_key", 401, -32001),
    ("wrong-content-type", "wrong_content_type", 400, -32600),
    ("download-unknown-package", "download_unknown_package", 404, -32004),
    ("non-object-request", "non_object", 400, -32600),
    ("state-out-of-range", "bad_state", 400, -32602),
]


@pytest.mark.parametrize(
    ("case", "status", "code"),
    [pytest.param(case, status, code, id=name) for name, case, status, code in REJECTIONS],
)
async def test_rejection_changes_nothing(client, config, database, case, status, code):
    await register(config)
    await register(config, "lab-pc-02")
    package_id = await add_package(config, "-")
    other_package = await add_package(config, str(make_package_folder(config.data_dir)),
                                      name="zipped")
    container_id = await deploy(config, [package_id], ["lab-pc-01", "lab-pc-02"])
    agent = PlainAgent(client)
    other = PlainAgent(client, hostname="lab-pc-02")
    for known in (agent, other):
        await known.hello()
        # The second hello uses the issued key, which confirms it.
        await known.hello()
    jobs_by_host = {row["computer"]: row["id"] for row in await job_rows(database, container_id)}
    before = snapshot(config.database_path)

    response = await _send_rejected(client, agent, case, jobs_by_host, other_package)

    assert response.status == status
    payload = await response.json()
    assert payload["error"]["code"] == code
    assert "message" in payload["error"]
    assert snapshot(config.database_path) == before


async def _send_rejected(client, agent, case, jobs_by_host, package_id):
    headers = {"content-type": "application/json"}
    own_job = jobs_by_host["lab-pc-01"]
    if case == "wrong_key":
        body = agent.body("hello.json")
        body["params"]["agent-key"] = "x" * 32
        return await client.post("/api-agent.php", json=body)
    if case == "unknown_computer":
        stranger = PlainAgent(client, hostname="stranger")
        return await client.post("/api-agent.php", json=stranger.body("hello.json"))
    if case == "download_without_job":
        return await agent.download(package_id)
    if case == "foreign_job":
        body = _job_state_body(agent, jobs_by_host["lab-pc-02"])
        return await client.post("/api-agent.php", json=body)
    if case == "unknown_job":
        return await client.post("/api-agent.php", json=_job_state_body(agent, 99999))
    if case == "invalid_json":
        return await client.post("/api-agent.php", data=b'{"jsonrpc": "2.0",', headers=headers)
    if case == "missing_hostname":
        body = agent.body("hello.json")
        del body["params"]["hostname"]
        return await client.post("/api-agent.php", json=body)
    if case == "unknown_method":
        body = agent.body("hello.json")
        body["method"] = "oco.agent.format_disk"
        return await client.post("/api-agent.php", json=body)
    if case == "no_key":
        body = agent.body("hello.json")
        del body["params"]["agent-key"]
        return await client.post("/api-agent.php", json=body)
    if case == "wrong_content_type":
        return await client.post(
            "/api-agent.php", data=b"{}", headers={"content-type": "text/plain"}
        )
    if case == "download_unknown_package":
        return await agent.download(424242)
    if case == "non_object":
        return await client.post("/api-agent.php", data=b"[1, 2]", headers=headers)
    if case == "bad_state":
        body = _job_state_body(agent, own_job)
        body["params"]["data"]["state"] = 7
        return await client.post("/api-agent.php", json=body)
    raise AssertionError(case)
