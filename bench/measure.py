"""The measurements of bench/run.py, one function per figure of the report."""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from bench.procs import (
    RssSampler,
    Server,
    cpu_seconds,
    free_port,
    memory_kib,
    project_env,
    run_fetch,
    run_measured,
    run_wrk,
)
from bench.seed import SeededComputer
from ocoserver.simulate import payloads

AGENT_PATH = "/api-agent.php"
WARM_UP_SECONDS = 2.0
# 60 runs of 2 s cover 10,000 computers down to about 85 hellos per second.
MAX_WARM_UP_RUNS = 60
# Alternations of the scale comparison; more rounds average out other load.
SCALE_ROUNDS = 3


def machine() -> dict[str, str]:
    """Describe the machine and the versions the figures depend on."""
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "python": platform.python_version(),
        "aiohttp": aiohttp.__version__,
        "sqlite": sqlite3.sqlite_version,
        "wrk": _first_line(["wrk", "-v"]),
        "nginx": _first_line(["nginx", "-v"]) if shutil.which("nginx") else "missing",
        "load_average": Path("/proc/loadavg").read_text().split()[0],
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def _first_line(args: list[str]) -> str:
    result = subprocess.run(args, capture_output=True, text=True, check=False)
    return (result.stdout + result.stderr).strip().splitlines()[0]


def _url(server: Server) -> str:
    return f"http://127.0.0.1:{server.port}{AGENT_PATH}"


def warm_up(server: Server, computers_file: Path, count: int, work: Path) -> None:
    """Send hellos until every computer has checked in once.

    A computer's first hello stores its networks; later ones only compare
    them, so measured runs see the steady state of a running office.
    """
    sent = 0
    for _ in range(MAX_WARM_UP_RUNS):
        result = run_wrk(_url(server), 10, WARM_UP_SECONDS, None,
                         {"COMPUTERS": str(computers_file)}, work)  # fmt: skip
        sent += result.requests
        if sent >= count:
            return


def hello_rates(
    bare: Server,
    oco: dict[int, Server],
    work: Path,
    concurrency: tuple[int, ...],
    seconds: float,
    data_sets: tuple[int, ...],
) -> list[dict[str, Any]]:
    """Load the bare handler and ocoserver in turn at each concurrency."""
    rows = []
    for connections in concurrency:
        baseline_file = work / f"computers-{data_sets[0]}.tsv"
        baseline = run_wrk(_url(bare), connections, seconds, bare.pid,
                           {"COMPUTERS": str(baseline_file)}, work)  # fmt: skip
        rows.append(_row("bare aiohttp", None, connections, baseline, None))
        for count in data_sets:
            computers_file = work / f"computers-{count}.tsv"
            result = run_wrk(_url(oco[count]), connections, seconds, oco[count].pid,
                             {"COMPUTERS": str(computers_file)}, work)  # fmt: skip
            rows.append(_row("ocoserver", count, connections, result, baseline))
    return rows


def _row(server: str, computers: int | None, connections: int, result: Any,
         baseline: Any) -> dict[str, Any]:  # fmt: skip
    row = {"server": server, "computers": computers, "connections": connections,
           **dataclasses.asdict(result), "rate": result.rate,
           "server_cpu_us_per_request": result.server_cpu_us_per_request}  # fmt: skip
    if baseline is not None:
        row["share_of_bare"] = result.rate / baseline.rate
    return row


def scale(small: Server, large: Server, work: Path, seconds: float) -> list[dict[str, Any]]:
    """Alternate 100 and 10,000 computers at 10 connections, SCALE_ROUNDS times."""
    rows = []
    for _ in range(SCALE_ROUNDS):
        for server, count in ((small, 100), (large, 10_000)):
            computers_file = work / f"computers-{count}.tsv"
            result = run_wrk(_url(server), 10, seconds, server.pid,
                             {"COMPUTERS": str(computers_file)}, work)  # fmt: skip
            rows.append(_row("ocoserver", count, 10, result, None))
    return rows


async def update_cost(
    server: Server, seeded: list[SeededComputer], hellos: int, updates: int
) -> dict[str, Any]:
    """Compare sequential inventory updates with sequential hellos on one connection.

    Bodies are serialized before timing starts, so the client adds only its
    HTTP work to each latency. Inventories go to computers that have none
    yet (first upload), then the same ones again (unchanged).
    """
    hello_bodies = [_hello_body(c, index) for index, c in enumerate(seeded[:hellos])]
    targets = seeded[hellos : hellos + updates]
    software = payloads.software_list(2000)
    update_bodies = [
        _update_body(c, hellos + index, software) for index, c in enumerate(targets)
    ]
    connector = aiohttp.TCPConnector(limit=1)
    async with aiohttp.ClientSession(connector=connector) as session:
        url = _url(server)
        await _timed_posts(session, url, hello_bodies[:10], server.pid)
        hello = await _timed_posts(session, url, hello_bodies, server.pid)
        first = await _timed_posts(session, url, update_bodies, server.pid)
        unchanged = await _timed_posts(session, url, update_bodies, server.pid)
    return {"hello": hello, "first_upload": first, "unchanged": unchanged,
            "body_bytes": len(update_bodies[0])}  # fmt: skip


def _hello_body(computer: SeededComputer, index: int) -> bytes:
    return _body(computer, "oco.agent.hello", payloads.hello_data(1, index, 3600.0))


def _update_body(computer: SeededComputer, index: int, software: list[Any]) -> bytes:
    data = payloads.inventory_data(1, computer.hostname, index, 3600.0, software,
                                   "2000-01-01 00:00:00")  # fmt: skip
    return _body(computer, "oco.agent.update", data)


def _body(computer: SeededComputer, method: str, data: dict[str, Any]) -> bytes:
    params = {"uid": computer.uid, "hostname": computer.hostname,
              "agent-key": computer.agent_key, "data": data}  # fmt: skip
    return orjson.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})


async def _timed_posts(
    session: aiohttp.ClientSession, url: str, bodies: list[bytes], server_pid: int
) -> dict[str, float]:
    latencies = []
    cpu_before = cpu_seconds(server_pid)
    for body in bodies:
        started = time.perf_counter()
        async with session.post(url, data=body,
                                headers={"content-type": "application/json"}) as response:
            await response.read()
        latencies.append(time.perf_counter() - started)
        if response.status != 200:
            raise RuntimeError(f"request failed with status {response.status}")
    cpu = cpu_seconds(server_pid) - cpu_before
    latencies.sort()
    return {
        "requests": len(bodies),
        "mean_ms": sum(latencies) / len(latencies) * 1000,
        "p50_ms": latencies[len(latencies) // 2] * 1000,
        "server_cpu_ms": cpu / len(bodies) * 1000,
    }


def simulator_run(
    server: Server, seeded: list[SeededComputer], work: Path, seconds: float
) -> dict[str, Any]:
    """Run 100 signed (generation 2) simulated agents at full speed."""
    keys_file = work / "simulator-keys.json"
    identities = {
        c.hostname: {"hostname": c.hostname, "generation": 2, "agent_key": c.agent_key,
                     "server_key": c.server_key, "keys_received": True,
                     "last_timestamp": 0.0, "last_server_timestamp": 0.0}
        for c in seeded
    }  # fmt: skip
    keys_file.write_text(json.dumps(identities))
    first = int(seeded[0].hostname.removeprefix("sim-"))
    base = [sys.executable, "-m", "ocoserver.simulate", "--url", _url(server),
            "--agents", str(len(seeded)), "--first", str(first), "--generation", "2",
            "--interval", "0", "--keys-file", str(keys_file), "--json",
            "--status-every", "3600"]  # fmt: skip
    # One cycle first: each computer sends its first inventory, which the
    # measured run must not include.
    run_measured([*base, "--cycles", "1"], server.pid, project_env())
    output, client_cpu, server_cpu, wall = run_measured(
        [*base, "--duration", f"{seconds:g}"], server.pid, project_env()
    )
    summary = json.loads(output)
    return {"summary": summary, "client_cpu": client_cpu, "server_cpu": server_cpu,
            "wall": wall, "agents": len(seeded)}  # fmt: skip


def downloads(
    server: Server,
    work: Path,
    package_path: Path,
    concurrency: tuple[int, ...],
    seconds: float,
    servers: list[Server],
) -> dict[str, Any]:
    """Download the 1 GiB package from ocoserver, then the same file from nginx."""
    paths_file = work / "download-paths.txt"
    rows = []
    idle_kib = memory_kib(server.pid)
    for connections in concurrency:
        with RssSampler(server.pid) as sampler:
            result = run_fetch(server.port, paths_file, connections, seconds, server.pid)
        rows.append({"server": "ocoserver", "connections": connections,
                     **dataclasses.asdict(result), "peak_rss_kib": sampler.max_kib})  # fmt: skip
    nginx = _start_nginx(work, package_path)
    if nginx is not None:
        servers.append(nginx)
        nginx_paths = work / "nginx-paths.txt"
        nginx_paths.write_text(f"/{package_path.name}\n")
        for connections in concurrency:
            result = run_fetch(nginx.port, nginx_paths, connections, seconds, None)
            rows.append({"server": "nginx", "connections": connections,
                         **dataclasses.asdict(result)})  # fmt: skip
    return {"rows": rows, "idle_rss_kib": idle_kib,
            "hwm_kib": memory_kib(server.pid, "VmHWM"),
            "nginx": nginx is not None}  # fmt: skip


NGINX_CONFIG = """\
daemon off;
{user}
worker_processes auto;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    default_type application/octet-stream;
    client_body_temp_path {work}/nginx-temp;
    proxy_temp_path {work}/nginx-temp;
    fastcgi_temp_path {work}/nginx-temp;
    uwsgi_temp_path {work}/nginx-temp;
    scgi_temp_path {work}/nginx-temp;
    server {{
        listen 127.0.0.1:{port};
        root {root};
    }}
}}
"""


def _start_nginx(work: Path, package_path: Path) -> Server | None:
    if shutil.which("nginx") is None:
        return None
    port = free_port()
    # Worker processes run as root only when the benchmark does, because
    # the depot is readable by its owner only.
    user = "user root;" if os.geteuid() == 0 else ""
    config = work / "nginx.conf"
    config.write_text(NGINX_CONFIG.format(user=user, work=work, port=port,
                                          root=package_path.parent))  # fmt: skip
    args = ["nginx", "-p", str(work), "-c", str(config)]
    return Server("nginx", args, port, work / "nginx.log")
