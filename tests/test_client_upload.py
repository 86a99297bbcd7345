"""Streaming package uploads: small ones in process, 200 MB against a real process."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import hashlib
import io
import os
import signal
import subprocess
import sys
import zipfile
from contextlib import redirect_stdout
from pathlib import Path

import aiohttp
import pytest
from aiohttp import encode_basic_auth

from ocoserver import housekeeping
from ocoserver.app import create_app
from ocoserver.cli import main as cli_main
from ocoserver.config import ClientApiConfig
from ocoserver.store import packages
from tests.client_api import call, create_key, result
from tests.test_server_process import free_port, wait_for_port

ROOT = Path(__file__).resolve().parent.parent
UPLOAD_PATH = "/api-client/package-upload"
HOUR = datetime.timedelta(hours=1)
MIB = 1024 * 1024


def write_zip(path: Path, megabytes: int) -> str:
    """Write a stored (uncompressed) ZIP in 1 MiB pieces; return its SHA-256."""
    block = os.urandom(MIB)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        with archive.open("payload.bin", "w", force_zip64=True) as member:
            for _ in range(megabytes):
                member.write(block)
    digest = hashlib.sha256()
    with path.open("rb") as reader:
        while chunk := reader.read(MIB):
            digest.update(chunk)
    return digest.hexdigest()


def auth(key: str) -> dict[str, str]:
    return {"Authorization": encode_basic_auth("ops", key)}


async def test_upload_then_create_package(client, config, database, tmp_path):
    key = await create_key(config, "ops", "admin")
    source = tmp_path / "small.zip"
    sha256 = write_zip(source, 2)

    with source.open("rb") as body:
        response = await client.put(UPLOAD_PATH, data=body, headers=auth(key))
    upload = await response.json()
    created = await result(
        client, key, "oco.package.create", package_family_name="Big", version="1",
        install_procedure="run", upload_id=upload["upload_id"],
    )  # fmt: skip
    row = await packages.get(database, created["id"])

    assert response.status == 200
    assert upload["size"] == source.stat().st_size
    assert upload["sha256"] == sha256
    assert row["sha256"] == sha256
    assert (config.depot_path / row["file_name"]).read_bytes() == source.read_bytes()


async def test_upload_id_used_once(client, config, tmp_path):
    key = await create_key(config, "ops", "admin")
    source = tmp_path / "small.zip"
    write_zip(source, 1)
    with source.open("rb") as body:
        response = await client.put(UPLOAD_PATH, data=body, headers=auth(key))
    upload_id = (await response.json())["upload_id"]
    fields = {"package_family_name": "Big", "install_procedure": "run",
              "upload_id": upload_id}  # fmt: skip
    await result(client, key, "oco.package.create", version="1", **fields)

    response = await client.post("/api-client.php", headers=auth(key), json={
        "jsonrpc": "2.0", "id": 1, "method": "oco.package.create",
        "params": {"data": {"version": "2", **fields}},
    })  # fmt: skip
    payload = await response.json()

    assert response.status == 400
    assert payload["error"]["message"].startswith(f"upload '{upload_id}' not found")


async def test_unused_upload_purged_after_day(client, config, database, tmp_path):
    key = await create_key(config, "ops", "admin")
    source = tmp_path / "small.zip"
    write_zip(source, 1)
    with source.open("rb") as body:
        response = await client.put(UPLOAD_PATH, data=body, headers=auth(key))
    upload_id = (await response.json())["upload_id"]
    [stored] = [path for path in config.depot_path.iterdir() if path.suffix == ".zip"]
    now = datetime.datetime.now(datetime.UTC)

    early = await housekeeping.run_pass(
        database, config.housekeeping, config.depot_path, now + 23 * HOUR
    )
    file_kept_early = stored.exists()
    late = await housekeeping.run_pass(
        database, config.housekeeping, config.depot_path, now + 25 * HOUR
    )
    fields = {"package_family_name": "Big", "install_procedure": "run",
              "upload_id": upload_id}  # fmt: skip
    status, payload = await call(client, key, "oco.package.create", version="1", **fields)

    assert early.purged_uploads == 0
    assert file_kept_early
    assert late.purged_uploads == 1
    assert not stored.exists()
    assert status == 400
    assert payload["error"]["message"].startswith(f"upload '{upload_id}' not found")


async def test_upload_rejects_non_zip(client, config):
    key = await create_key(config, "ops", "admin")

    response = await client.put(UPLOAD_PATH, data=b"not a zip", headers=auth(key))
    payload = await response.json()

    assert response.status == 400
    assert payload["error"]["code"] == -32000
    assert list(config.depot_path.iterdir()) == []


async def test_upload_needs_admin_scope(client, config):
    key = await create_key(config, "rollout", "deploy")

    response = await client.put(UPLOAD_PATH, data=b"PK", headers=auth(key))

    assert response.status == 403


async def test_upload_needs_key(client, config):
    await create_key(config, "ops", "admin")

    response = await client.put(UPLOAD_PATH, data=b"PK")

    assert response.status == 401


@pytest.fixture
def small_limit_app(config):
    limited = dataclasses.replace(
        config, client_api=ClientApiConfig(max_upload_size=1000)
    )
    return create_app(limited), limited


async def test_upload_over_limit_rejected(aiohttp_client, small_limit_app, tmp_path):
    app, config = small_limit_app
    client = await aiohttp_client(app)
    key = await create_key(config, "ops", "admin")

    response = await client.put(UPLOAD_PATH, data=b"x" * 5000, headers=auth(key))
    payload = await response.json()

    assert response.status == 413
    assert "client_api.max_upload_size" in payload["error"]["message"]
    assert list(config.depot_path.iterdir()) == []


def add_key(data_dir: Path) -> str:
    output = io.StringIO()
    with redirect_stdout(output):
        code = cli_main(
            ["api-key", "add", "ops", "--scope", "admin", "--data-dir", str(data_dir)]
        )
    assert code == 0
    return output.getvalue().strip()


def memory_kib(pid: int) -> dict[str, int]:
    """Return VmRSS and VmHWM (peak RSS) of a process in KiB."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            values[name] = int(rest.split()[0])
    return values


async def test_large_upload_memory_bounded(tmp_path):
    data_dir = tmp_path / "data"
    source = tmp_path / "big.zip"
    sha256 = write_zip(source, 200)
    key = await asyncio.to_thread(add_key, data_dir)
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "ocoserver", "--port", str(port),
         "--data-dir", str(data_dir)],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for_port(port, process, timeout=20)
        base = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession(base_url=base) as session:
            await result(session, key, "oco.info")
            before = memory_kib(process.pid)
            with source.open("rb") as body:
                response = await session.put(UPLOAD_PATH, data=body, headers=auth(key))
            upload = await response.json()
            after = memory_kib(process.pid)
            created = await result(
                session, key, "oco.package.create", package_family_name="Big",
                version="1", install_procedure="run", upload_id=upload["upload_id"],
            )  # fmt: skip
            shown = await result(session, key, "oco.package.get", id=created["id"])
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=20)

    assert response.status == 200
    assert upload["size"] == source.stat().st_size
    assert upload["sha256"] == sha256
    assert shown["general"]["sha256"] == sha256
    # Peak resident memory during the upload, over the resident memory before.
    assert (after["VmHWM"] - before["VmRSS"]) < 50 * 1024
