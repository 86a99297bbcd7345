"""Benchmark ocoserver against the targets of its design, in one run.

    python bench/run.py --quick     # 2 to 3 minutes
    python bench/run.py             # full mode, about 5 minutes

Starts ocoserver (several data sets), a bare aiohttp handler and nginx as
subprocesses on free ports of 127.0.0.1, loads them with wrk and the agent
simulator, and writes the figures into BENCHMARKS.md between the markers
`<!-- results start -->` and `<!-- results end -->`. Every target is a
ratio of two figures taken in the same run, because the machine may be
shared and absolute numbers vary from run to run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import measure, report, seed
from bench.procs import PROJECT_ROOT, Server, free_port, project_env

HELLO_CONCURRENCY = (1, 10, 100)
DATA_SETS = (100, 1000, 10_000)
DOWNLOAD_CONCURRENCY = (1, 50)
DOWNLOAD_COMPUTERS = 50
DOWNLOAD_SIZE = 1024**3


@dataclass(frozen=True)
class Mode:
    name: str
    # Seconds of each wrk or simulator load run.
    seconds: float
    download_seconds: float
    # Sequential requests for the inventory cost comparison.
    hellos: int
    updates: int


MODES = {
    "quick": Mode("quick", seconds=3, download_seconds=5, hellos=100, updates=10),
    "full": Mode("full", seconds=10, download_seconds=15, hellos=300, updates=20),
}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="shorter load runs (3 s instead of 10 s)")
    parser.add_argument("--output", type=Path, default=PROJECT_ROOT / "BENCHMARKS.md",
                        help="page to write the results into (default %(default)s)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the temporary data directory, logs and "
                        "results.json")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    mode = MODES["quick" if args.quick else "full"]
    work = Path(tempfile.mkdtemp(prefix="ocoserver-bench-"))
    servers: list[Server] = []
    started = time.time()
    try:
        results = run_all(mode, work, servers)
    finally:
        for server in servers:
            server.stop()
        if args.keep:
            print(f"data and logs kept in {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    results["mode"] = mode.name
    results["wall_seconds"] = round(time.time() - started)
    if args.keep:
        (work / "results.json").write_text(json.dumps(results, indent=1, default=str))
    report.write(args.output, results)
    print(f"results written to {args.output}", file=sys.stderr)
    return 0


def run_all(mode: Mode, work: Path, servers: list[Server]) -> dict[str, object]:
    progress("seeding data sets")
    data_sets = asyncio.run(seed_all(work))
    results: dict[str, object] = {"machine": measure.machine()}

    progress("starting servers")
    bare = start_bare(work)
    servers.append(bare)
    oco = {count: start_ocoserver(work, f"computers-{count}") for count in DATA_SETS}
    servers.extend(oco.values())
    for count, server in oco.items():
        measure.warm_up(server, work / f"computers-{count}.tsv", count, work)

    progress("check-in rate")
    results["hello"] = measure.hello_rates(
        bare, oco, work, HELLO_CONCURRENCY, mode.seconds, data_sets=(1000, 10_000)
    )
    progress("scale: 100 against 10,000 computers")
    results["scale"] = measure.scale(oco[100], oco[10_000], work, mode.seconds)
    progress("inventory update cost")
    results["update"] = asyncio.run(
        measure.update_cost(oco[1000], data_sets[1000], mode.hellos, mode.updates)
    )
    progress("signed check-ins with the simulator")
    results["simulator"] = measure.simulator_run(
        oco[1000], data_sets[1000][-100:], work, mode.seconds
    )

    progress("downloads")
    download_server = start_ocoserver(work, "download")
    servers.append(download_server)
    results["download"] = measure.downloads(
        download_server, work, data_sets["download"], DOWNLOAD_CONCURRENCY,
        mode.download_seconds, servers,
    )  # fmt: skip
    return results


async def seed_all(work: Path) -> dict[object, object]:
    data_sets: dict[object, object] = {}
    for count in DATA_SETS:
        data_dir = work / f"computers-{count}"
        seeded = await seed.seed_computers(data_dir / "ocoserver.sqlite3", count)
        seed.write_computers_file(work / f"computers-{count}.tsv", seeded)
        data_sets[count] = seeded
    data_dir = work / "download"
    seeded = await seed.seed_computers(data_dir / "ocoserver.sqlite3", DOWNLOAD_COMPUTERS)
    package_id, path = await seed.seed_download(data_dir, seeded, DOWNLOAD_SIZE)
    (work / "download-paths.txt").write_text(
        "\n".join(seed.download_paths(package_id, seeded)) + "\n"
    )
    data_sets["download"] = path
    return data_sets


def start_ocoserver(work: Path, name: str) -> Server:
    port = free_port()
    args = [sys.executable, "-m", "ocoserver", "--port", str(port),
            "--data-dir", str(work / name)]  # fmt: skip
    return Server(f"ocoserver ({name})", args, port, work / f"{name}.log")


def start_bare(work: Path) -> Server:
    port = free_port()
    args = [sys.executable, str(PROJECT_ROOT / "bench" / "bare_server.py"),
            "--port", str(port)]  # fmt: skip
    return Server("bare aiohttp", args, port, work / "bare.log", project_env())


def progress(step: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {step}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
