"""SIGTERM: new connections refused, running downloads finish, clean exit."""

from __future__ import annotations

import asyncio
import hashlib
import socket
import time
import zipfile
from pathlib import Path

from ocoserver.config import Config
from tests.admin import add_package, deploy, register
from tests.agents import PlainAgent
from tests.server_process import ServerProcess

PACKAGE_BYTES = 24 * 1024 * 1024
CHUNK = 256 * 1024


def make_large_zip(tmp_path: Path) -> Path:
    """A ZIP of incompressible bytes, larger than the socket buffers."""
    path = tmp_path / "large.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("setup.bin", hashlib.shake_256(b"setup").digest(PACKAGE_BYTES))
    return path


async def prepare_download(tmp_path: Path, shutdown_timeout: float) -> ServerProcess:
    """Deploy a large package to lab-pc-01 and return a server, not yet started."""
    data_dir = tmp_path / "data"
    config = Config.for_tests(data_dir)
    await register(config)
    package_id = await add_package(config, str(make_large_zip(tmp_path)))
    await deploy(config, [package_id], ["lab-pc-01"])
    config_file = tmp_path / "config.toml"
    config_file.write_text(f"[server]\nshutdown_timeout = {shutdown_timeout}\n")
    return ServerProcess(data_dir, tmp_path / "server.log", "--config", str(config_file))


def connection_refused(port: int, timeout: float) -> bool:
    """Wait until connecting to `port` is refused; False if it never is."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                pass
        except ConnectionRefusedError:
            return True
        except ConnectionResetError:
            # A probe still in the listen backlog when the server closes
            # its socket is reset, so the next probe checks the port again.
            pass
        time.sleep(0.05)
    return False


async def test_sigterm_finishes_running_download(tmp_path: Path):
    server = await prepare_download(tmp_path, shutdown_timeout=10)
    expected = (tmp_path / "large.zip").read_bytes()
    try:
        server.start()
        assert server.process is not None
        async with server.session() as session:
            agent = PlainAgent(session)
            await agent.hello()
            response = await agent.download(1)
            received = bytearray(await response.content.readexactly(CHUNK))
            server.process.terminate()
            stopped_at = time.monotonic()
            refused = connection_refused(server.port, timeout=5)
            running_during_download = server.process.poll() is None
            while chunk := await response.content.read(CHUNK):
                received += chunk
                await asyncio.sleep(0.01)
            status = response.status
        exit_code = server.process.wait(timeout=15)
        stop_seconds = time.monotonic() - stopped_at
    finally:
        server.stop()

    assert status == 200
    assert refused
    assert running_during_download
    assert len(received) == len(expected)
    assert bytes(received) == expected
    assert exit_code == 0
    assert stop_seconds < 10
    assert not (tmp_path / "data" / "ocoserver.sqlite3-wal").exists()
    assert "stop signal received" in server.log_text()
    assert "closed database" in server.log_text()
    assert "ocoserver stopped" in server.log_text()


async def test_sigterm_cancels_download_after_timeout(tmp_path: Path):
    server = await prepare_download(tmp_path, shutdown_timeout=0.5)
    try:
        server.start()
        assert server.process is not None
        async with server.session() as session:
            agent = PlainAgent(session)
            await agent.hello()
            response = await agent.download(1)
            await response.content.readexactly(CHUNK)
            server.process.terminate()
            stopped_at = time.monotonic()
            # The client stops reading, so the download cannot finish.
            exit_code = await asyncio.to_thread(server.process.wait, 15)
            stop_seconds = time.monotonic() - stopped_at
            response.close()
    finally:
        server.stop()

    assert exit_code == 0
    assert stop_seconds < 5
    assert not (tmp_path / "data" / "ocoserver.sqlite3-wal").exists()
