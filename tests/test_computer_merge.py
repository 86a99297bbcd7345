"""`ocoserver computer merge SOURCE TARGET` with agents of both records."""

from __future__ import annotations

from tests.admin import add_package, deploy, job_rows, register, run_cli
from tests.agents import PlainAgent


async def setup_two_records(client, config):
    """Give old-pc and lab-pc-01 keys, events, and jobs in one container."""
    await register(config, "old-pc")
    await register(config, "lab-pc-01")
    code, _ = await run_cli(config, "computer", "add", "spare", "--notes", "x")
    assert code == 0
    await run_cli(config, "event-rule", "add", "--log", "journalctl", "--query", "x")
    first = await add_package(config, "-", name="first")
    second = await add_package(config, "-", name="second")
    container_id = await deploy(config, [first, second], ["old-pc", "lab-pc-01"])
    old = PlainAgent(client, hostname="old-pc")
    new = PlainAgent(client, hostname="lab-pc-01")
    for agent in (old, new):
        await agent.hello()
        await agent.hello()
    status, _ = await old.call("events.json")
    assert status == 200
    return old, new, container_id


async def test_merge_moves_history(client, config, database):
    old, new, container_id = await setup_two_records(client, config)
    old_jobs = [r["id"] for r in await job_rows(database, container_id)
                if r["computer"] == "old-pc"]
    # The first job of old-pc succeeded; its second is still waiting and
    # repeats a waiting job of lab-pc-01.
    status, _ = await old.call("update_job_state-finished.json", **{"job-id": old_jobs[0]})
    assert status == 200
    target_key = new.agent_key

    code, output = await run_cli(config, "computer", "merge", "old-pc", "lab-pc-01")

    assert code == 0
    assert output.startswith("merged old-pc (id 1) into lab-pc-01 (id 2): 1 jobs, ")
    hostnames = await database.fetch_all("SELECT hostname FROM computer ORDER BY id")
    assert hostnames == [{"hostname": "lab-pc-01"}, {"hostname": "spare"}]
    jobs = await job_rows(database, container_id)
    assert [(r["id"], r["computer"], r["state"]) for r in jobs] == [
        (old_jobs[0], "lab-pc-01", 3), (3, "lab-pc-01", 0), (4, "lab-pc-01", 0)
    ]
    events = await database.fetch_value("SELECT COUNT(*) FROM event WHERE computer_id = 2")
    assert events == 2
    installed = await database.fetch_value(
        "SELECT COUNT(*) FROM computer_package WHERE computer_id = 2"
    )
    assert installed == 1
    stored_key = await database.fetch_value("SELECT agent_key FROM computer WHERE id = 2")
    assert stored_key == target_key


async def test_merge_target_agent_continues(client, config):
    old, new, _ = await setup_two_records(client, config)

    await run_cli(config, "computer", "merge", "old-pc", "lab-pc-01")
    new_status, _ = await new.call("hello.json")
    old_status, _ = await old.call("hello.json")

    assert new_status == 200
    assert old_status == 401


async def test_merge_appends_notes(client, config, database):
    await setup_two_records(client, config)
    await run_cli(config, "computer", "add", "desk-7", "--notes", "room 7")

    code, _ = await run_cli(config, "computer", "merge", "spare", "desk-7")

    assert code == 0
    notes = await database.fetch_value("SELECT notes FROM computer WHERE hostname = 'desk-7'")
    assert notes == "room 7\nx"


async def test_merge_same_computer_rejected(client, config, database):
    await register(config)

    code, output = await run_cli(config, "computer", "merge", "lab-pc-01", "LAB-PC-01")

    assert code == 2
    assert output == ""
    assert await database.fetch_value("SELECT COUNT(*) FROM computer") == 1


async def test_merge_unknown_computer_rejected(client, config, database):
    await register(config)

    code, _ = await run_cli(config, "computer", "merge", "ghost", "lab-pc-01")

    assert code == 2
    assert await database.fetch_value("SELECT COUNT(*) FROM computer") == 1
