"""SIGKILL of the server and of `package add` under load, then restart."""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
import time
from pathlib import Path

import pytest

from tests.agent_load import (
    HOSTNAMES,
    Progress,
    connect_agents,
    integrity_check,
    prepare,
    read_markers,
    start_load,
    wait_for_first_ack,
)
from tests.server_process import ServerProcess, start_cli


@pytest.mark.parametrize("kill_after", [0.1, 0.3, 0.5, 0.7, 0.9])
async def test_kill_under_load_keeps_writes(tmp_path: Path, kill_after: float):
    data_dir = tmp_path / "data"
    await prepare(data_dir)
    server = ServerProcess(data_dir, tmp_path / "server.log")
    progress = Progress()
    try:
        server.start()
        async with server.session() as session:
            pairs = await connect_agents(session)
            tasks = start_load(pairs, progress, asyncio.Event())
            await wait_for_first_ack(progress, timeout=10)
            await asyncio.sleep(kill_after)
            server.kill()
            await asyncio.wait_for(asyncio.gather(*tasks), timeout=10)

        server.start()
        database_path = data_dir / "ocoserver.sqlite3"
        result = integrity_check(database_path)
        markers = read_markers(database_path)
        assert server.terminate() == 0
    finally:
        server.stop()

    assert result == "ok"
    for hostname in HOSTNAMES:
        stored = markers[hostname]
        sent = progress.sent.get(hostname, 0)
        acked_inventory = progress.acked_inventory.get(hostname, 0)
        acked_job = progress.acked_job.get(hostname, 0)
        assert (stored.serial or 0) >= acked_inventory, hostname
        assert (stored.serial or 0) <= sent, hostname
        assert (stored.job_message or 0) >= acked_job, hostname
        if stored.serial is None:
            assert stored.software_count == 0, hostname
        else:
            assert stored.software == {stored.serial}, hostname
            assert stored.software_count == 150, hostname


def make_large_folder(tmp_path: Path, parts: int) -> Path:
    """A folder of incompressible 8 MiB parts: zipping takes about 0.5 s per part."""
    folder = tmp_path / "large-package"
    folder.mkdir()
    for index in range(parts):
        (folder / f"part-{index}.bin").write_bytes(
            hashlib.shake_256(str(index).encode()).digest(8 * 1024 * 1024)
        )
    return folder


def wait_for_upload(depot: Path, timeout: float) -> Path:
    """Wait until a temporary upload file with content appears in the depot."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for path in depot.glob(".upload-*"):
            try:
                if path.stat().st_size > 0:
                    return path
            except FileNotFoundError:
                continue
        time.sleep(0.01)
    raise AssertionError(f"no upload started in {depot} within {timeout} s")


def package_files(database_path: Path) -> list[tuple[str, int, str]]:
    connection = sqlite3.connect(database_path)
    try:
        return connection.execute(
            "SELECT file_name, size, sha256 FROM package WHERE file_name IS NOT NULL"
        ).fetchall()
    finally:
        connection.close()


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_kill_package_add_leaves_nothing(tmp_path: Path):
    data_dir = tmp_path / "data"
    depot = data_dir / "depot"
    folder = make_large_folder(tmp_path, parts=3)
    adding = start_cli(
        data_dir, "package", "add", str(folder), "--name", "large", "--version", "1",
        "--install", "setup.exe",
    )
    try:
        upload = wait_for_upload(depot, timeout=20)
        time.sleep(0.1)
    finally:
        adding.kill()
        adding.communicate(timeout=10)

    leftover = upload.exists()
    rows = package_files(data_dir / "ocoserver.sqlite3")
    server = ServerProcess(data_dir, tmp_path / "server.log")
    try:
        server.start()
        remaining = sorted(path.name for path in depot.glob(".upload-*"))
        assert server.terminate() == 0
    finally:
        server.stop()

    assert leftover
    assert rows == []
    assert remaining == []
    assert "removed unfinished package upload" in server.log_text()


def test_kill_package_add_rows_match_files(tmp_path: Path):
    data_dir = tmp_path / "data"
    depot = data_dir / "depot"
    folder = make_large_folder(tmp_path, parts=2)
    for attempt, delay in enumerate([0.1, 0.5]):
        adding = start_cli(
            data_dir, "package", "add", str(folder), "--name", "large",
            "--version", str(attempt), "--install", "setup.exe",
        )
        wait_for_upload(depot, timeout=20)
        time.sleep(delay)
        adding.kill()
        adding.communicate(timeout=10)
    completed = start_cli(
        data_dir, "package", "add", str(folder), "--name", "large", "--version",
        "complete", "--install", "setup.exe",
    )
    completed.communicate(timeout=30)

    rows = package_files(data_dir / "ocoserver.sqlite3")
    assert completed.returncode == 0
    assert len(rows) >= 1
    for file_name, size, sha256 in rows:
        path = depot / file_name
        assert path.stat().st_size == size
        assert sha256_of(path) == sha256
