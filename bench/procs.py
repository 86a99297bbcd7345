"""Processes of a benchmark run: start, stop, CPU time, memory, wrk runs."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
BENCH_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = BENCH_DIR.parent
LUA_SCRIPT = BENCH_DIR / "hello.lua"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def project_env(**extra: str) -> dict[str, str]:
    """Return an environment whose Python imports ocoserver from this checkout."""
    return {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), **extra}


def cpu_seconds(pid: int) -> float:
    """Return user + system CPU seconds of a process and all its threads."""
    text = Path(f"/proc/{pid}/stat").read_text()
    # Fields after the command name, which is in brackets and may hold spaces.
    fields = text[text.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def machine_cpu_ticks() -> tuple[int, int]:
    """Return (busy, total) clock ticks of all cores from /proc/stat."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    idle = fields[3] + fields[4]
    total = sum(fields[:8])
    return total - idle, total


def other_cpu(before: tuple[int, int], after: tuple[int, int], own: float) -> float:
    """Return the cores that other processes kept busy, given our own share."""
    busy = after[0] - before[0]
    total = max(after[1] - before[1], 1)
    cores = os.cpu_count() or 1
    return max(0.0, busy / total * cores - own)


def memory_kib(pid: int, field: str = "VmRSS") -> int:
    """Return a /proc/PID/status memory field (VmRSS, VmHWM) in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(f"{field} is missing from /proc/{pid}/status")


class RssSampler:
    """Samples a process's resident memory every 50 ms in a thread; keeps the max."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.max_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.max_kib = max(self.max_kib, memory_kib(self.pid))
            self._stop.wait(0.05)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


class Server:
    """A server process started by the benchmark and stopped by its pid."""

    def __init__(self, name: str, args: list[str], port: int, log_path: Path,
                 env: dict[str, str] | None = None) -> None:  # fmt: skip
        self.name = name
        self.port = port
        self.log_path = log_path
        with log_path.open("wb") as log_file:
            self.process = subprocess.Popen(
                args, stdout=log_file, stderr=subprocess.STDOUT, env=env or project_env()
            )
        self._wait_for_port(timeout=30)

    @property
    def pid(self) -> int:
        return self.process.pid

    def _wait_for_port(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited at start; see {self.log_path}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"{self.name} did not listen on port {self.port} in {timeout} s")

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@dataclass
class LoadResult:
    """One load run: rates, latencies and who spent the CPU."""

    requests: int
    seconds: float
    bytes: int
    errors: int
    p50_ms: float
    p99_ms: float
    # CPU seconds per wall second (1.0 = one core busy).
    client_cpu: float
    server_cpu: float
    # Cores kept busy by every other process on the machine.
    other_cpu: float

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    @property
    def bytes_per_second(self) -> float:
        return self.bytes / self.seconds

    @property
    def server_cpu_us_per_request(self) -> float:
        return self.server_cpu * self.seconds / max(self.requests, 1) * 1e6


def run_wrk(
    url: str,
    connections: int,
    seconds: float,
    server_pid: int | None,
    env: dict[str, str],
    output_dir: Path,
) -> LoadResult:
    """Run wrk with hello.lua on one thread; read its CPU time before reaping it."""
    output_path = output_dir / f"wrk-{time.monotonic_ns()}.txt"
    server_before = cpu_seconds(server_pid) if server_pid else 0.0
    machine_before = machine_cpu_ticks()
    started = time.monotonic()
    with output_path.open("wb") as output:
        process = subprocess.Popen(
            ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "300s",
             "-s", str(LUA_SCRIPT), url],
            stdout=output, stderr=subprocess.STDOUT, env={**os.environ, **env},
        )  # fmt: skip
        # Wait for the exit without reaping, so /proc/PID/stat still contains
        # wrk's final CPU time.
        os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOWAIT)
        client_cpu = cpu_seconds(process.pid)
        process.wait()
    wall = time.monotonic() - started
    machine_after = machine_cpu_ticks()
    server_cpu = cpu_seconds(server_pid) - server_before if server_pid else 0.0
    own = (client_cpu + server_cpu) / wall

    text = output_path.read_text()
    if process.returncode != 0 or "JSON " not in text:
        raise RuntimeError(f"wrk failed ({process.returncode}): {text[-500:]}")
    figures = json.loads(text[text.index("JSON ") + 5 :].splitlines()[0])

    measured = figures["duration_us"] / 1e6
    errors = sum(figures[key] for key in (
        "connect_errors", "read_errors", "write_errors", "status_errors", "timeouts"))
    return LoadResult(
        requests=figures["requests"], seconds=measured, bytes=figures["bytes"],
        errors=errors, p50_ms=figures["p50_us"] / 1000, p99_ms=figures["p99_us"] / 1000,
        client_cpu=client_cpu / wall, server_cpu=server_cpu / wall,
        other_cpu=other_cpu(machine_before, machine_after, own),
    )  # fmt: skip


def run_fetch(
    port: int,
    paths_file: Path,
    connections: int,
    seconds: float,
    server_pid: int | None,
) -> LoadResult:
    """Run bench/fetch.py (downloads); read its CPU time before reaping it."""
    server_before = cpu_seconds(server_pid) if server_pid else 0.0
    machine_before = machine_cpu_ticks()
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, str(BENCH_DIR / "fetch.py"), "--port", str(port),
         "--paths", str(paths_file), "--connections", str(connections),
         "--seconds", f"{seconds:g}"],
        stdout=subprocess.PIPE,
    )  # fmt: skip
    assert process.stdout is not None
    output = process.stdout.read().decode()
    os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOWAIT)
    client_cpu = cpu_seconds(process.pid)
    process.wait()
    wall = time.monotonic() - started
    machine_after = machine_cpu_ticks()
    server_cpu = cpu_seconds(server_pid) - server_before if server_pid else 0.0
    if process.returncode != 0:
        raise RuntimeError(f"bench/fetch.py failed with exit status {process.returncode}")
    figures = json.loads(output)
    return LoadResult(
        requests=figures["downloads"], seconds=figures["seconds"],
        bytes=figures["bytes"], errors=figures["errors"], p50_ms=0.0, p99_ms=0.0,
        client_cpu=client_cpu / wall, server_cpu=server_cpu / wall,
        other_cpu=other_cpu(machine_before, machine_after,
                            (client_cpu + server_cpu) / wall),
    )  # fmt: skip


def run_measured(
    args: list[str], server_pid: int, env: dict[str, str]
) -> tuple[str, float, float, float]:
    """Run a load generator process; return its stdout, CPU share, server CPU share, wall."""
    server_before = cpu_seconds(server_pid)
    started = time.monotonic()
    process = subprocess.Popen(args, stdout=subprocess.PIPE, env=env)
    assert process.stdout is not None
    output = process.stdout.read().decode()
    os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOWAIT)
    client_cpu = cpu_seconds(process.pid)
    process.wait()
    wall = time.monotonic() - started
    server_cpu = cpu_seconds(server_pid) - server_before
    return output, client_cpu / wall, server_cpu / wall, wall
