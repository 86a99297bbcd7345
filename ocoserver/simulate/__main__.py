"""Command line of the agent simulator: `python -m ocoserver.simulate`."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from ocoserver.simulate.fleet import (
    FleetOptions,
    KeysFileError,
    print_status,
    read_keys_file,
    run_fleet,
)
from ocoserver.simulate.stats import format_summary

GENERATIONS = {"1": 1, "2": 2, "mixed": 0}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ocoserver.simulate",
        description="Run simulated OCO agents against an ocoserver. Exits with 1 "
        "when any response broke the protocol or a request failed.",
    )
    parser.add_argument("--url", default="http://127.0.0.1:8080/api-agent.php",
                        help="agent API URL (default %(default)s)")

    parser.add_argument("--agents", type=int, default=50,
                        help="number of simulated computers (default %(default)s)")
    parser.add_argument("--generation", choices=GENERATIONS, default="mixed",
                        help="protocol generation: 1 (plain key, agent 1.1.6), 2 "
                        "(signed, agent 1.2.0) or mixed (default)")
    parser.add_argument("--interval", type=float, default=5.0,
                        help="seconds between check-ins of one agent; 0 checks in "
                        "again at once (default %(default)s)")
    parser.add_argument("--duration", type=float, default=0.0,
                        help="seconds to run; 0 runs until --cycles or Ctrl+C")
    parser.add_argument("--cycles", type=int, default=0,
                        help="check-ins per agent, then stop; 0 = no limit")

    parser.add_argument("--registration-key", default="",
                        help="self-registration key that new agents present; "
                        "without it the hostnames must be pre-registered")
    parser.add_argument("--prefix", default="sim-",
                        help="hostname prefix; hostnames are PREFIX0001... "
                        "(default %(default)s)")
    parser.add_argument("--first", type=int, default=1,
                        help="number of the first hostname (default %(default)s)")

    parser.add_argument("--software", type=int, default=2000,
                        help="software entries per inventory (default %(default)s)")
    parser.add_argument("--connections", type=int, default=100,
                        help="maximum open HTTP connections (default %(default)s)")
    parser.add_argument("--timeout", type=float, default=60.0,
                        help="seconds one request may take (default %(default)s)")

    parser.add_argument("--keys-file", type=Path,
                        help="JSON file that keeps agent keys between runs "
                        "(read at start, written at the end)")
    parser.add_argument("--status-every", type=float, default=5.0,
                        help="seconds between status lines (default %(default)s)")
    parser.add_argument("--json", action="store_true",
                        help="print the summary as JSON")
    return parser


def options_from(args: argparse.Namespace) -> FleetOptions:
    if args.agents < 1 or args.interval < 0 or args.duration < 0 or args.cycles < 0:
        raise SystemExit(
            "error: --agents must be at least 1 and --interval, --duration, "
            "--cycles at least 0"
        )
    return FleetOptions(
        url=args.url, agents=args.agents, generation=GENERATIONS[args.generation],
        interval=args.interval, duration=args.duration, cycles=args.cycles,
        registration_key=args.registration_key, prefix=args.prefix, first=args.first,
        software=args.software, connections=args.connections, timeout=args.timeout,
        keys_file=args.keys_file,
    )  # fmt: skip


async def run(options: FleetOptions, status_every: float) -> dict[str, object]:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    stats = await run_fleet(
        options, on_status=lambda s: print_status(s, options.agents),
        status_every=status_every, stop=stop,
    )  # fmt: skip
    return stats.summary()


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    options = options_from(args)
    try:
        read_keys_file(options.keys_file)
    except KeysFileError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    summary = asyncio.run(run(options, args.status_every))
    if sys.stderr.isatty():
        sys.stderr.write("\n")
    print(json.dumps(summary, indent=1) if args.json else format_summary(summary))
    return 1 if summary["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
