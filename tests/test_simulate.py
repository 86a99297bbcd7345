"""The agent simulator against the real server, with a deployment to every agent."""

from __future__ import annotations

from ocoserver.simulate import FleetOptions, run_fleet
from ocoserver.store import jobs
from tests.admin import add_package, deploy, job_rows, make_package_folder, register

AGENTS = 20


async def test_simulated_fleet_runs_deployment(client, config, database, tmp_path):
    options = FleetOptions(
        url=str(client.make_url("/api-agent.php")), agents=AGENTS, generation=0,
        interval=0, cycles=2, software=2000, connections=20, timeout=30,
    )  # fmt: skip
    hostnames = options.hostnames()
    for hostname in hostnames:
        await register(config, hostname)
    package_id = await add_package(config, str(make_package_folder(tmp_path)))
    container_id = await deploy(config, [package_id], hostnames)

    stats = await run_fleet(options)

    assert stats.errors == {}
    assert stats.check_ins == 2 * AGENTS
    assert stats.inventories == AGENTS
    assert stats.jobs_succeeded == AGENTS
    assert stats.jobs_failed == 0
    rows = await job_rows(database, container_id)
    assert [row["state"] for row in rows] == [jobs.SUCCEEDED] * AGENTS
    software = await database.fetch_value("SELECT COUNT(*) FROM computer_software")
    assert software == 2000 * AGENTS
    signed = await database.fetch_value("SELECT COUNT(*) FROM computer WHERE signed = 1")
    assert signed == AGENTS // 2


async def test_simulated_fleet_counts_rejections(client, config):
    options = FleetOptions(
        url=str(client.make_url("/api-agent.php")), agents=2, generation=2,
        interval=0, cycles=1, software=10,
    )  # fmt: skip

    stats = await run_fleet(options)

    assert stats.errors == {"http-401": 2}
    assert stats.check_ins == 2
