"""Deployment rules, upgrades, compatibility and uninstall, seen by agents.

The server runs for real; the administrator side goes through the CLI and
the agent side sends captured agent requests.
"""

from __future__ import annotations

from typing import Any

import pytest

from ocoserver.config import Config
from ocoserver.db import Database
from ocoserver.store import (
    computers,
    deployment_rules,
    groups,
    jobs,
    memberships,
    packages,
)
from ocoserver.store.groups import COMPUTER_GROUPS, PACKAGE_GROUPS
from tests.admin import deploy, job_rows, make_package_folder, register, run_cli
from tests.agents import PlainAgent, SignedAgent

AGENTS = [PlainAgent, SignedAgent]
AGENT_IDS = ["agent-1.1.6", "agent-1.2.0"]


async def cli_ok(config: Config, *args: str) -> str:
    code, output = await run_cli(config, *args)
    assert code == 0, args
    return output


async def add_version(config: Config, name: str, version: str, *extra: str) -> int:
    output = await cli_ok(
        config, "package", "add", "-", "--name", name, "--version", version,
        "--install", f"install {name} {version}",
        "--uninstall", f"uninstall {name} {version}", *extra,
    )  # fmt: skip
    return int(output)


async def finish(agent: Any, job_id: int | str, return_code: int = 0) -> dict[str, Any]:
    """Report a job as finished the way the agent does; return the response."""
    body = agent.body(
        "update_job_state-finished.json",
        **{"job-id": job_id, "return-code": return_code},
    )
    status, payload = await agent.send(body)
    assert status == 200, payload
    return payload


async def installed_ids(database: Database) -> list[int]:
    rows = await database.fetch_all(
        "SELECT package_id FROM computer_package ORDER BY package_id"
    )
    return [row["package_id"] for row in rows]


async def seed_version(database: Database, config: Config, name: str) -> int:
    spec = packages.PackageSpec(
        family=name, version="1.0", install_procedure=f"install {name} 1.0"
    )
    return await packages.add(database, config.depot_path, spec, None)


async def rule_with_late_member(config: Config, database: Database) -> list[int]:
    """Create a rule whose jobs 1-4 go to pc-a, then add lab-pc-01 (jobs 5-8).

    The seeding calls the store functions behind the CLI commands, because
    separate CLI runs would make these tests several times slower.
    """
    await computers.add(database, "pc-a")
    await computers.add(database, "lab-pc-01")
    package_ids = [await seed_version(database, config, f"tool{n}") for n in range(4)]
    await groups.add(database, COMPUTER_GROUPS, "office", None)
    await memberships.add_member(database, COMPUTER_GROUPS, "office", "pc-a")
    await groups.add(database, PACKAGE_GROUPS, "basics", None)
    for package_id in package_ids:
        await memberships.add_member(
            database, PACKAGE_GROUPS, "basics", str(package_id)
        )
    rule = deployment_rules.RuleSpec("office basics", "office", "basics")
    await deployment_rules.add(database, rule)
    assert await database.fetch_value("SELECT MAX(id) FROM rule_job") == 4
    await memberships.add_member(database, COMPUTER_GROUPS, "office", "lab-pc-01")
    return package_ids


@pytest.mark.parametrize("agent_class", AGENTS, ids=AGENT_IDS)
async def test_rule_reaches_late_group_member(client, config, database, agent_class):
    package_ids = await rule_with_late_member(config, database)
    agent = agent_class(client)

    params = await agent.hello()

    entries = params["software-jobs"]
    assert [entry["id"] for entry in entries] == [
        "dynamic-5", "dynamic-6", "dynamic-7", "dynamic-8",
    ]  # fmt: skip
    assert [entry["package-id"] for entry in entries] == package_ids
    assert entries[0]["container-id"] == "dynamic-1"
    assert entries[0]["procedure"] == "install tool0 1.0"
    assert entries[0]["download"] is False


@pytest.mark.parametrize("agent_class", AGENTS, ids=AGENT_IDS)
async def test_dynamic_fixture_report_accepted(client, config, database, agent_class):
    package_ids = await rule_with_late_member(config, database)
    agent = agent_class(client)
    await agent.hello()

    # The captured request reports "dynamic-5" unchanged.
    status, payload = await agent.call("update_job_state-finished-dynamic-id.json")

    assert status == 200, payload
    assert payload["result"]["params"] == {"job-succeeded": True}
    job = await database.fetch_one("SELECT * FROM rule_job WHERE id = 5")
    assert job["state"] == jobs.SUCCEEDED
    assert job["message"] == "hello\n"
    assert job["package_id"] == package_ids[0]
    record = await database.fetch_one("SELECT * FROM computer_package")
    assert record["package_id"] == package_ids[0]
    assert record["rule_job_id"] == 5
    params = await agent.hello()
    assert [entry["id"] for entry in params["software-jobs"]] == [
        "dynamic-6", "dynamic-7", "dynamic-8",
    ]  # fmt: skip


@pytest.mark.parametrize("agent_class", AGENTS, ids=AGENT_IDS)
async def test_dynamic_job_of_other_computer(client, config, database, agent_class):
    await rule_with_late_member(config, database)
    other = agent_class(client, hostname="pc-a")
    await other.hello()

    status, payload = await other.call("update_job_state-finished-dynamic-id.json")

    assert status == 401
    assert payload["error"]["code"] == -32001
    state = await database.fetch_value("SELECT state FROM rule_job WHERE id = 5")
    assert state == jobs.WAITING


async def test_dynamic_job_unknown_id(client, config, database):
    await rule_with_late_member(config, database)
    agent = PlainAgent(client)
    await agent.hello()

    for job_id in ("dynamic-99", "dynamic-x"):
        body = agent.body("update_job_state-finished.json", **{"job-id": job_id})
        status, payload = await agent.send(body)
        assert status == 400
        assert payload["error"]["code"] == -32602
        assert job_id in payload["error"]["message"]


async def test_rule_job_package_download(client, config, database, tmp_path):
    await register(config)
    folder = make_package_folder(tmp_path)
    output = await cli_ok(
        config, "package", "add", str(folder), "--name", "zip", "--version", "1",
        "--install", "cat hello.txt",
    )  # fmt: skip
    await cli_ok(config, "computer-group", "add", "lab")
    await cli_ok(config, "package-group", "add", "zips")
    await cli_ok(config, "package-group", "add-member", "zips", output.strip())
    await cli_ok(
        config, "deployment-rule", "add", "--name", "r", "--computer-group", "lab",
        "--package-group", "zips",
    )  # fmt: skip
    await cli_ok(config, "computer-group", "add-member", "lab", "lab-pc-01")
    agent = SignedAgent(client)
    params = await agent.hello()
    assert params["software-jobs"][0]["download"] is True

    response = await agent.download(int(output))

    assert response.status == 200
    assert len(await response.read()) > 0


async def test_rule_job_transport_failure_retried(client, config, database):
    await rule_with_late_member(config, database)
    agent = PlainAgent(client)
    await agent.hello()

    await agent.call("update_job_state-error.json", **{"job-id": "dynamic-5"})
    params = await agent.hello()

    job = await database.fetch_one("SELECT state, retries, message FROM rule_job WHERE id = 5")
    assert job["state"] == 0
    assert job["retries"] == 1
    assert job["message"].startswith("retry 1 of 3 after a transport failure")
    assert params["software-jobs"][0]["id"] == "dynamic-5"


async def test_rule_disabled_not_in_hello(client, config, database):
    await rule_with_late_member(config, database)
    await cli_ok(config, "deployment-rule", "disable", "office basics")
    agent = PlainAgent(client)

    params = await agent.hello()

    assert params["software-jobs"] == []
    await cli_ok(config, "deployment-rule", "enable", "1")
    params = await agent.hello()
    assert len(params["software-jobs"]) == 4


async def test_rule_member_leaves_jobs_deleted(client, config, database):
    await rule_with_late_member(config, database)

    await cli_ok(config, "computer-group", "remove-member", "office", "lab-pc-01")

    rows = await database.fetch_all("SELECT id FROM rule_job ORDER BY id")
    assert [row["id"] for row in rows] == [1, 2, 3, 4]
    params = await PlainAgent(client).hello()
    assert params["software-jobs"] == []


async def installed_v1(
    config: Config, client: Any, database: Database
) -> tuple[Any, int, int]:
    """Install Fx 1.0 on lab-pc-01 through a job; return the agent and both ids."""
    await register(config)
    old = await add_version(config, "Fx", "1.0")
    new = await add_version(config, "Fx", "2.0")
    container_id = await deploy(config, [old], ["lab-pc-01"])
    agent = PlainAgent(client)
    await agent.hello()
    [job] = await job_rows(database, container_id)
    await finish(agent, job["id"])
    assert await installed_ids(database) == [old]
    return agent, old, new


async def test_uninstall_first_orders_jobs(client, config, database):
    agent, old, new = await installed_v1(config, client, database)

    container_id = await deploy(
        config, [new], ["lab-pc-01"], "--upgrade", "uninstall-first"
    )

    rows = await database.fetch_all(
        "SELECT id, package_id, is_uninstall, sequence, procedure, state FROM job "
        "WHERE container_id = ? ORDER BY sequence",
        (container_id,),
    )
    assert [row["package_id"] for row in rows] == [old, new]
    assert [row["is_uninstall"] for row in rows] == [1, 0]
    assert [row["sequence"] for row in rows] == [1, 2]
    assert rows[0]["procedure"] == "uninstall Fx 1.0"
    params = await agent.hello()
    assert [entry["id"] for entry in params["software-jobs"]] == [
        rows[0]["id"], rows[1]["id"],
    ]  # fmt: skip
    assert params["software-jobs"][0]["procedure"] == "uninstall Fx 1.0"
    await finish(agent, rows[0]["id"])
    assert await installed_ids(database) == []
    await finish(agent, rows[1]["id"])
    assert await installed_ids(database) == [new]


async def test_upgrade_replace_forgets_old(client, config, database):
    agent, old, new = await installed_v1(config, client, database)

    container_id = await deploy(config, [new], ["lab-pc-01"], "--upgrade", "replace")

    [job] = await job_rows(database, container_id)
    assert job["is_uninstall"] == 0
    await agent.hello()
    await finish(agent, job["id"])
    assert await installed_ids(database) == [new]


async def test_upgrade_none_keeps_old(client, config, database):
    agent, old, new = await installed_v1(config, client, database)

    container_id = await deploy(config, [new], ["lab-pc-01"])

    [job] = await job_rows(database, container_id)
    await agent.hello()
    await finish(agent, job["id"])
    assert await installed_ids(database) == [old, new]


async def test_already_installed_held_back(client, config, database):
    agent, old, _ = await installed_v1(config, client, database)

    container_id = await deploy(config, [old], ["lab-pc-01"])

    [job] = await job_rows(database, container_id)
    assert job["state"] == jobs.ALREADY_INSTALLED
    assert "--force" in job["message"]
    params = await agent.hello()
    assert params["software-jobs"] == []


async def test_already_installed_with_force(client, config, database):
    agent, old, _ = await installed_v1(config, client, database)

    container_id = await deploy(config, [old], ["lab-pc-01"], "--force")

    [job] = await job_rows(database, container_id)
    assert job["state"] == jobs.WAITING
    params = await agent.hello()
    assert [entry["id"] for entry in params["software-jobs"]] == [job["id"]]


async def test_uninstall_removes_installed_record(client, config, database):
    agent, old, _ = await installed_v1(config, client, database)

    output = await cli_ok(
        config, "uninstall", "--package", str(old), "--computer", "lab-pc-01"
    )

    [job] = await job_rows(database, int(output))
    assert job["is_uninstall"] == 1
    assert job["procedure"] == "uninstall Fx 1.0"
    params = await agent.hello()
    assert params["software-jobs"][0]["procedure"] == "uninstall Fx 1.0"
    await finish(agent, job["id"])
    assert await installed_ids(database) == []


async def test_uninstall_failure_keeps_record(client, config, database):
    agent, old, _ = await installed_v1(config, client, database)
    output = await cli_ok(
        config, "uninstall", "--package", str(old), "--computer", "lab-pc-01"
    )
    [job] = await job_rows(database, int(output))
    await agent.hello()

    await finish(agent, job["id"], return_code=1)

    assert await installed_ids(database) == [old]


# (package options, expected state) for a computer reporting Debian on x86_64.
COMPATIBILITY_CASES = [
    ([], jobs.WAITING),
    (["--compatible-os", "linux"], jobs.WAITING),
    (["--compatible-os", "Windows,Debian"], jobs.WAITING),
    (["--compatible-os", "windows"], jobs.OS_INCOMPATIBLE),
    (["--compatible-os", "macos,windows"], jobs.OS_INCOMPATIBLE),
    (["--compatible-arch", "amd64"], jobs.WAITING),
    (["--compatible-arch", "arm64"], jobs.OS_INCOMPATIBLE),
    (["--compatible-os", "linux", "--compatible-arch", "aarch64"], jobs.OS_INCOMPATIBLE),
]  # fmt: skip


@pytest.mark.parametrize(
    ("options", "state"), COMPATIBILITY_CASES,
    ids=[" ".join(options) or "any" for options, _ in COMPATIBILITY_CASES],
)  # fmt: skip
async def test_compatibility_sets_job_state(client, config, database, options, state):
    await register(config)
    agent = SignedAgent(client)
    await agent.hello()
    status, _ = await agent.call("update.json")
    assert status == 200
    package_id = await add_version(config, "tool", "1", *options)

    container_id = await deploy(config, [package_id], ["lab-pc-01"])

    [job] = await job_rows(database, container_id)
    assert job["state"] == state
    params = await agent.hello()
    sent = [entry["id"] for entry in params["software-jobs"]]
    assert sent == ([job["id"]] if state == jobs.WAITING else [])


async def test_incompatible_rule_job_not_sent(client, config, database):
    await register(config)
    agent = PlainAgent(client)
    await agent.hello()
    await agent.call("update.json")
    package_id = await add_version(config, "winonly", "1", "--compatible-os", "windows")
    await cli_ok(config, "computer-group", "add", "lab")
    await cli_ok(config, "computer-group", "add-member", "lab", "lab-pc-01")
    await cli_ok(config, "package-group", "add", "win")
    await cli_ok(config, "package-group", "add-member", "win", str(package_id))

    await cli_ok(
        config, "deployment-rule", "add", "--name", "r", "--computer-group", "lab",
        "--package-group", "win",
    )  # fmt: skip

    state = await database.fetch_value("SELECT state FROM rule_job WHERE id = 1")
    assert state == jobs.OS_INCOMPATIBLE
    params = await agent.hello()
    assert params["software-jobs"] == []


async def test_post_actions_sent_to_agent(client, config, database):
    await register(config)
    restart = await add_version(
        config, "kernel", "1", "--post-action", "restart", "--post-action-timeout", "10",
        "--uninstall-post-action", "shutdown",
    )  # fmt: skip
    leave = await add_version(config, "agent", "2", "--post-action", "exit")
    await deploy(config, [restart, leave], ["lab-pc-01"])
    await cli_ok(
        config, "uninstall", "--package", str(restart), "--computer", "lab-pc-01"
    )

    params = await PlainAgent(client).hello()

    actions = [
        (entry["restart"], entry["shutdown"], entry["exit"])
        for entry in params["software-jobs"]
    ]
    assert actions == [(10, None, None), (None, None, 5), (None, 10, None)]
