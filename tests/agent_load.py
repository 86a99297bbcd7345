"""Agents that upload inventories and job states in a loop against a server process.

Each upload carries a generation number: in every software entry name, in
the `serial` inventory field and in the job state message. After a crash
or in a backup, all of a computer's software rows must carry the same
generation as its `serial`, and that generation must be at least the last
one the server acknowledged with HTTP 200.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from ocoserver.config import Config
from tests.admin import add_package, deploy, register
from tests.agents import PlainAgent, SignedAgent

PLAIN_HOSTNAMES = ["load-plain-1", "load-plain-2", "load-plain-3"]
SIGNED_HOSTNAMES = ["load-signed-1", "load-signed-2", "load-signed-3"]
HOSTNAMES = PLAIN_HOSTNAMES + SIGNED_HOSTNAMES
SOFTWARE_COUNT = 150

GENERATION = re.compile(r"gen-(\d+)$")


@dataclass
class Progress:
    """Generations sent and acknowledged per hostname."""

    sent: dict[str, int] = field(default_factory=dict)
    acked_inventory: dict[str, int] = field(default_factory=dict)
    acked_job: dict[str, int] = field(default_factory=dict)

    def total_acked(self) -> int:
        return sum(self.acked_inventory.values()) + sum(self.acked_job.values())


@dataclass(frozen=True)
class StoredMarkers:
    """The generations a computer's stored rows carry."""

    serial: int | None
    software: set[int]
    software_count: int
    job_message: int | None


async def prepare(data_dir: Path) -> None:
    """Register the load computers and give each one a job (no payload)."""
    config = Config.for_tests(data_dir)
    for hostname in HOSTNAMES:
        await register(config, hostname)
    package_id = await add_package(config, "-", name="load")
    await deploy(config, [package_id], HOSTNAMES)


async def connect_agents(session: aiohttp.ClientSession) -> list[tuple[Any, int]]:
    """Complete each agent's first hello; return (agent, job id) pairs."""
    agents: list[Any] = [PlainAgent(session, name) for name in PLAIN_HOSTNAMES]
    agents += [SignedAgent(session, name) for name in SIGNED_HOSTNAMES]
    pairs = []
    for agent in agents:
        params = await agent.hello()
        [job] = params["software-jobs"]
        pairs.append((agent, job["id"]))
    return pairs


def inventory_body(agent: Any, generation: int) -> dict[str, Any]:
    body = agent.body("update.json")
    data = body["params"]["data"]
    data["serial"] = f"gen-{generation}"
    data["software"] = [
        {"name": f"app-{index} gen-{generation}", "version": "1.0", "description": ""}
        for index in range(SOFTWARE_COUNT)
    ]
    return body


async def write_loop(
    agent: Any, job_id: int, progress: Progress, stop: asyncio.Event
) -> None:
    """Upload inventories and job states until `stop` is set or the server goes away."""
    generation = 0
    hostname = agent.hostname
    try:
        while not stop.is_set():
            generation += 1
            progress.sent[hostname] = generation
            status, _ = await agent.send(inventory_body(agent, generation))
            if status == 200:
                progress.acked_inventory[hostname] = generation
            status, _ = await agent.call(
                "update_job_state-executing.json",
                **{"job-id": job_id, "message": f"gen-{generation}"},
            )
            if status == 200:
                progress.acked_job[hostname] = generation
    except (TimeoutError, aiohttp.ClientError):
        return


def start_load(
    pairs: list[tuple[Any, int]], progress: Progress, stop: asyncio.Event
) -> list[asyncio.Task[None]]:
    return [
        asyncio.create_task(write_loop(agent, job_id, progress, stop))
        for agent, job_id in pairs
    ]


async def wait_for_first_ack(progress: Progress, timeout: float) -> None:
    """Wait until the server has acknowledged at least one write."""
    async with asyncio.timeout(timeout):
        while progress.total_acked() == 0:
            await asyncio.sleep(0.01)


def _generation(text: str | None) -> int | None:
    match = GENERATION.search(text or "")
    return int(match.group(1)) if match else None


def read_markers(database_path: Path) -> dict[str, StoredMarkers]:
    """Read each load computer's stored generations from the database file."""
    connection = sqlite3.connect(f"file:{database_path}?mode=ro", uri=True)
    try:
        return {
            hostname: _markers(connection, hostname) for hostname in HOSTNAMES
        }
    finally:
        connection.close()


def _markers(connection: sqlite3.Connection, hostname: str) -> StoredMarkers:
    computer_id, serial = connection.execute(
        "SELECT id, serial FROM computer WHERE hostname = ?", (hostname,)
    ).fetchone()
    names = [
        row[0]
        for row in connection.execute(
            "SELECT name FROM computer_software WHERE computer_id = ?", (computer_id,)
        )
    ]
    [message] = connection.execute(
        "SELECT message FROM job WHERE computer_id = ?", (computer_id,)
    ).fetchone()
    return StoredMarkers(
        serial=_generation(serial),
        software={_generation(name) or 0 for name in names},
        software_count=len(names),
        job_message=_generation(message),
    )


def integrity_check(database_path: Path) -> str:
    connection = sqlite3.connect(f"file:{database_path}?mode=ro", uri=True)
    try:
        return str(connection.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        connection.close()
