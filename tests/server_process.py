"""Test helpers that run `python -m ocoserver` as a real process."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

# The project root, so that subprocesses import this worktree's ocoserver.
ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "server exited during start"
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"server did not listen on port {port} within {timeout} s")


def process_environment() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def start_cli(data_dir: Path, *args: str) -> subprocess.Popen[bytes]:
    """Start an `ocoserver` command in its own process, output captured."""
    return subprocess.Popen(
        [sys.executable, "-m", "ocoserver", *args, "--data-dir", str(data_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=process_environment(),
    )


def run_cli_process(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run an `ocoserver` command in its own process and wait for it."""
    return subprocess.run(
        [sys.executable, "-m", "ocoserver", *args, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        env=process_environment(),
        timeout=60,
    )


class ServerProcess:
    """`python -m ocoserver` on a free port, its log written to a file.

    The log goes to a file because a server under load writes more than a
    pipe buffer holds, and a full pipe would stall it.
    """

    def __init__(self, data_dir: Path, log_path: Path, *args: str) -> None:
        self.data_dir = data_dir
        self.log_path = log_path
        self.args = args
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.port = free_port()
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "ocoserver", "--port", str(self.port),
                 "--data-dir", str(self.data_dir), *self.args],
                stdout=log,
                stderr=log,
                env=process_environment(),
            )
        wait_for_port(self.port, self.process, timeout=20)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def session(self) -> aiohttp.ClientSession:
        """A client session whose relative paths go to this server."""
        return aiohttp.ClientSession(base_url=self.url)

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=10)

    def terminate(self, timeout: float = 20) -> int:
        """Send SIGTERM and return the exit code."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)

    def stop(self) -> None:
        """End the process if it still runs (test cleanup)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")
