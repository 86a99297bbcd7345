"""Benchmark data: registered computers with known keys, a 1 GiB package."""

from __future__ import annotations

import asyncio
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

from ocoserver import package_download, timefmt
from ocoserver.db import Database, open_database
from ocoserver.simulate import payloads
from ocoserver.store import computers, jobs, packages


@dataclass(frozen=True)
class SeededComputer:
    computer_id: int
    hostname: str
    uid: str
    agent_key: str
    server_key: str


def hostname_of(number: int) -> str:
    """Return the hostname the simulator uses for computer `number`."""
    return f"sim-{number:04d}"


async def seed_computers(database_path: Path, count: int) -> list[SeededComputer]:
    """Register `count` computers whose agents already confirmed their keys.

    One transaction through ocoserver's store functions, so 10,000 computers
    take seconds instead of the minutes their first hellos would.
    """
    seeded = []
    async with open_database(database_path) as database:
        async with database.transaction() as connection:
            for number in range(1, count + 1):
                hostname = hostname_of(number)
                uid = payloads.computer_uid(hostname)
                computer_id = await computers.insert(connection, hostname, uid)
                await computers.issue_keys(connection, computer_id)
                await computers.update_identity(
                    connection, computer_id, confirm_keys=True, signed=False, uid=""
                )
                row = await computers.get_keys(connection, computer_id)
                seeded.append(
                    SeededComputer(computer_id, hostname, uid, row["agent_key"],
                                   row["server_key"])
                )  # fmt: skip
    return seeded


def write_computers_file(path: Path, seeded: list[SeededComputer]) -> None:
    """Write the tab-separated list that hello.lua reads."""
    lines = [f"{c.hostname}\t{c.uid}\t{c.agent_key}\n" for c in seeded]
    path.write_text("".join(lines))


async def seed_download(
    data_dir: Path, seeded: list[SeededComputer], size: int
) -> tuple[int, Path]:
    """Add a package of `size` bytes with a waiting job for every seeded computer.

    The package is added from a small ZIP through the store, then its depot
    file is extended to `size` bytes with a sparse tail, so no gigabyte is
    written to disk. Returns the package id and its depot file.
    """
    source = data_dir.parent / "bench-package.zip"
    with zipfile.ZipFile(source, "w") as archive:
        archive.writestr("install.sh", "true\n")
    depot = data_dir / "depot"
    async with open_database(data_dir / "ocoserver.sqlite3") as database:
        spec = packages.PackageSpec(family="bench", version="1", install_procedure="true")
        package_id = await packages.add(database, depot, spec, source)
        package = await packages.get(database, package_id)
        deployment = jobs.Deployment(
            name="bench download", package_ids=[package_id],
            computer_ids=[c.computer_id for c in seeded],
            start_time=timefmt.now_text(),
        )  # fmt: skip
        await jobs.create_container(database, deployment)
        path = depot / package["file_name"]
        os.truncate(path, size)
        # The server checks size and SHA-256 before every download, so the
        # extended file is recorded as the package's payload.
        await _record_payload(database, package_id, path)
    return package_id, path


async def _record_payload(database: Database, package_id: int, path: Path) -> None:
    sha256 = await asyncio.to_thread(package_download.file_sha256, path)
    status = path.stat()
    async with database.transaction() as connection:
        await connection.execute(
            "UPDATE package SET size = ?, sha256 = ?, file_mtime_ns = ? WHERE id = ?",
            (status.st_size, sha256, status.st_mtime_ns, package_id),
        )


def download_paths(package_id: int, seeded: list[SeededComputer]) -> list[str]:
    """Return generation 1 download request paths, one per computer."""
    return [
        f"/api-agent.php?id={package_id}&hostname={c.hostname}&uid={c.uid}"
        f"&agent-key={c.agent_key}"
        for c in seeded
    ]
