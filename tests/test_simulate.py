"""The agent simulator against the real server, with a deployment to every agent."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

from ocoserver.simulate import FleetOptions, run_fleet
from ocoserver.simulate.__main__ import main as simulate_main
from ocoserver.store import jobs
from tests.admin import add_package, deploy, job_rows, make_package_folder, register

AGENTS = 20
PROJECT_ROOT = Path(__file__).resolve().parent.parent


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


async def run_simulator_process(url: str, *args: str) -> tuple[int, str]:
    """Run `python -m ocoserver.simulate` while the test server keeps serving."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ocoserver.simulate", "--url", url, *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
    )  # fmt: skip
    stdout, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, stdout.decode()


async def test_simulator_command_prints_summary(client, config):
    for hostname in ("sim-0001", "sim-0002"):
        await register(config, hostname)

    code, output = await run_simulator_process(
        str(client.make_url("/api-agent.php")), "--agents", "2", "--interval", "0",
        "--cycles", "2", "--software", "50", "--json",
    )  # fmt: skip

    assert code == 0
    summary = json.loads(output)
    assert summary["check_ins"] == 4
    assert summary["inventories"] == 2
    assert summary["errors"] == {}
    assert summary["methods"]["oco.agent.hello"]["requests"] == 4


async def test_simulator_command_fails_on_errors(client):
    code, output = await run_simulator_process(
        str(client.make_url("/api-agent.php")), "--agents", "1", "--cycles", "1",
        "--interval", "0",
    )  # fmt: skip

    assert code == 1
    assert "errors: http-401 1" in output


def test_simulator_rejects_bad_keys_file(tmp_path: Path, capsys):
    broken = tmp_path / "keys.json"
    broken.write_text("{bad", encoding="utf-8")
    missing_folder = tmp_path / "absent" / "keys.json"

    broken_code = simulate_main(["--keys-file", str(broken), "--agents", "1"])
    broken_err = capsys.readouterr().err
    folder_code = simulate_main(["--keys-file", str(missing_folder), "--agents", "1"])
    folder_err = capsys.readouterr().err

    assert broken_code == 2
    assert f"keys file {broken} cannot be read" in broken_err
    assert folder_code == 2
    assert f"folder {missing_folder.parent} is missing or not writable" in folder_err
