"""`ocoserver deploy`, `uninstall` and `job …`: create and inspect jobs.

Packages run in the order given on the command line. A `--package-group`
stands for its packages in group order (see ocoserver.store.groups), and a
package that occurs again through a group keeps its first place. Computers
from `--computer` and `--computer-group` are merged the same way.
"""

from __future__ import annotations

import argparse
from typing import Any

from ocoserver import schedule, timefmt
from ocoserver.cli.common import (
    add_command_group,
    add_json_option,
    add_leaf_command,
    escape_control_characters,
    parse_id,
    parse_integer,
    parse_time,
    print_fields,
    print_json,
    print_table,
)
from ocoserver.config import Config
from ocoserver.db import Database, Row, open_database
from ocoserver.errors import AdminError
from ocoserver.store import computers, jobs, targets

JOB_COLUMNS = [
    "id", "container", "computer", "package", "state", "progress", "return code",
    "output",
]  # fmt: skip


def add_commands(commands: Any) -> None:
    _add_deploy_command(commands)
    _add_uninstall_command(commands)
    _add_job_commands(commands)


def _add_deploy_command(commands: Any) -> None:
    deploy = add_leaf_command(
        commands, "deploy",
        "create a job container with one job per computer and package",
        run_deploy,
    )  # fmt: skip
    deploy.add_argument("--name", required=True, help="name of the job container")
    _add_target_options(deploy)
    _add_container_options(deploy)
    deploy.add_argument(
        "--force", action="store_true",
        help="also install on computers that have the package recorded as installed",
    )  # fmt: skip
    deploy.add_argument(
        "--upgrade", default="none", metavar="MODE",
        help="other installed versions of the package family: 'none' keeps them "
        "recorded, 'replace' forgets them once the install succeeded (the "
        "installer replaces them), 'uninstall-first' uninstalls them before "
        "the install (default none)",
    )  # fmt: skip


def _add_uninstall_command(commands: Any) -> None:
    uninstall = add_leaf_command(
        commands, "uninstall",
        "create a job container that runs the packages' uninstall procedures",
        run_uninstall,
    )  # fmt: skip
    uninstall.add_argument(
        "--name", default="Uninstall",
        help="name of the job container (default Uninstall)",
    )  # fmt: skip
    _add_target_options(uninstall)
    _add_container_options(uninstall)


def _add_target_options(parser: argparse.ArgumentParser) -> None:
    # --package and --package-group share one list, so their order is kept.
    parser.add_argument(
        "--package", dest="package_items", action="append", metavar="ID",
        type=lambda text: ("package", text),
        help="package id, repeated for more packages, which run in the order given",
    )  # fmt: skip
    parser.add_argument(
        "--package-group", dest="package_items", action="append", metavar="ID|NAME",
        type=lambda text: ("group", text),
        help="package group whose packages (with those of its subgroups) run "
        "at this place, repeatable",
    )  # fmt: skip
    parser.add_argument(
        "--computer", dest="computers", action="append", default=[],
        metavar="HOSTNAME", help="target computer, repeated for more computers",
    )  # fmt: skip
    parser.add_argument(
        "--computer-group", dest="computer_groups", action="append", default=[],
        metavar="ID|NAME",
        help="computer group whose computers (with those of its subgroups) are "
        "targets, repeatable",
    )  # fmt: skip


def _add_container_options(deploy: argparse.ArgumentParser) -> None:
    deploy.add_argument(
        "--start", metavar="TIME",
        help="earliest start, ISO 8601 such as '2026-05-01 08:00' (UTC unless "
        "an offset is given; default now)",
    )  # fmt: skip
    deploy.add_argument(
        "--end", metavar="TIME",
        help="time after which agents no longer receive the container's unfinished "
        "jobs (same format as --start; default no end)",
    )  # fmt: skip
    deploy.add_argument(
        "--priority", default="0", metavar="N",
        help="whole number that orders containers, highest first (default 0)",
    )  # fmt: skip
    deploy.add_argument(
        "--abort-on-failure", action="store_true",
        help="when a job fails, fail that computer's remaining jobs of the container",
    )  # fmt: skip
    deploy.add_argument(
        "--time-frame", dest="time_frames", action="append", default=[],
        metavar="FRAME",
        help="start waiting jobs only inside this weekly window in server local "
        "time, such as 'Mon-Fri 18:00-06:00'; repeat for more windows",
    )  # fmt: skip
    deploy.add_argument(
        "--ip-range", dest="ip_ranges", action="append", default=[],
        metavar="CIDR",
        help="hand jobs only to agents whose address is in this network, such as "
        "10.0.0.0/8; '!10.0.5.0/24' excludes a network; repeat for more",
    )  # fmt: skip


def _add_job_commands(commands: Any) -> None:
    job_commands = add_command_group(commands, "job", "inspect jobs")

    listing = add_leaf_command(job_commands, "list", "list jobs", run_job_list)
    listing.add_argument(
        "--container", metavar="ID", help="only jobs of this container"
    )
    listing.add_argument(
        "--computer", metavar="HOSTNAME", help="only jobs of this computer"
    )
    listing.add_argument(
        "--state", metavar="STATE",
        help="only jobs in this state: a name such as failed or already-installed, "
        "or its number",
    )  # fmt: skip
    add_json_option(listing)

    show = add_leaf_command(
        job_commands, "show", "show a job with its full output", run_job_show
    )
    show.add_argument("job_id", metavar="ID", help="job id")
    add_json_option(show)


async def run_deploy(args: argparse.Namespace, config: Config) -> int:
    if args.upgrade not in jobs.UPGRADE_MODES:
        raise AdminError(
            f"invalid --upgrade {args.upgrade!r}: use one of "
            f"{', '.join(jobs.UPGRADE_MODES)}"
        )
    return await _create(args, config, uninstall=False)


async def run_uninstall(args: argparse.Namespace, config: Config) -> int:
    return await _create(args, config, uninstall=True)


async def _create(args: argparse.Namespace, config: Config, uninstall: bool) -> int:
    items = args.package_items or []
    if not items:
        raise AdminError(
            "no packages given: give --package ID or --package-group ID|NAME"
        )
    if not args.computers and not args.computer_groups:
        raise AdminError(
            "no computers given: give --computer HOSTNAME or --computer-group ID|NAME"
        )
    explicit = [text for kind, text in items if kind == "package"]
    for text in explicit:
        parse_id(text, "package id", "ocoserver package list")
    _reject_repeats([str(int(text)) for text in explicit], "package")
    start_time = parse_time(args.start, "--start") if args.start else timefmt.now_text()
    end_time = parse_time(args.end, "--end") if args.end else None
    priority = parse_integer(args.priority, "priority")

    async with open_database(config.database_path) as database:
        package_ids = await _resolve_packages(database, items)
        computer_ids = await _resolve_computers(
            database, args.computers, args.computer_groups
        )
        deployment = jobs.Deployment(
            name=args.name,
            package_ids=package_ids,
            computer_ids=computer_ids,
            start_time=start_time,
            end_time=end_time,
            priority=priority,
            sequence_mode=1 if args.abort_on_failure else 0,
            force=getattr(args, "force", False),
            upgrade=getattr(args, "upgrade", "none"),
            uninstall=uninstall,
            time_frames=_parse_time_frames(args.time_frames),
            ip_ranges=_parse_ip_ranges(args.ip_ranges),
        )
        container_id = await jobs.create_container(database, deployment)

    print(container_id)
    return 0


def _parse_time_frames(texts: list[str]) -> tuple[str, ...]:
    try:
        frames = [schedule.parse_time_frame(text) for text in texts]
    except ValueError as error:
        raise AdminError(f"--time-frame: {error}") from None
    return tuple(schedule.format_time_frame(frame) for frame in frames)


def _parse_ip_ranges(texts: list[str]) -> tuple[str, ...]:
    try:
        ranges = [schedule.parse_ip_range(text) for text in texts]
    except ValueError as error:
        raise AdminError(f"--ip-range: {error}") from None
    return tuple(schedule.format_ip_range(ip_range) for ip_range in ranges)


async def _resolve_packages(
    database: Database, items: list[tuple[str, str]]
) -> list[int]:
    parsed: list[targets.PackageItem] = [
        (kind, parse_id(text, "package id", "ocoserver package list"))
        if kind == "package" else (kind, text)
        for kind, text in items
    ]
    return await targets.package_ids(database, parsed)


async def _resolve_computers(
    database: Database, hostnames: list[str], group_refs: list[str]
) -> list[int]:
    rows = [await computers.get_by_hostname(database, name) for name in hostnames]
    # Hostnames compare case-insensitively, so check the stored names.
    _reject_repeats([row["hostname"].lower() for row in rows], "computer")
    return await targets.computer_ids(
        database, [row["id"] for row in rows], group_refs
    )


def _reject_repeats(values: list[str], option: str) -> None:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise AdminError(
                f"{option} {value!r} is given twice; give each --{option} once"
            )
        seen.add(value)


async def run_job_list(args: argparse.Namespace, config: Config) -> int:
    state = None if args.state is None else parse_state(args.state)
    container_id = None
    if args.container is not None:
        container_id = parse_id(args.container, "container id", "ocoserver job list")

    async with open_database(config.database_path) as database:
        computer_id = None
        if args.computer is not None:
            computer = await computers.get_by_hostname(database, args.computer)
            computer_id = computer["id"]
        if container_id is not None:
            await jobs.get_container(database, container_id)
        rows = await jobs.list_jobs(database, container_id, computer_id, state)

    if args.json:
        print_json([job_record(row) for row in rows])
    else:
        print_table([job_table_row(row) for row in rows], JOB_COLUMNS)
    return 0


async def run_job_show(args: argparse.Namespace, config: Config) -> int:
    job_id = parse_id(args.job_id, "job id", "ocoserver job list")
    async with open_database(config.database_path) as database:
        row = await jobs.get_job(database, job_id)
    record = job_record(row)

    if args.json:
        print_json(record)
        return 0

    message = record.pop("message")
    print_fields(record)
    print()
    print("output:")
    # Output keeps its lines and tabs; other control characters, such as
    # terminal escape sequences, are shown escaped.
    print(escape_control_characters(message, keep="\n\t") if message else "(none)")
    return 0


def job_record(row: Row) -> dict[str, Any]:
    """Return a job row with `state_name` added right after the numeric `state`."""
    record: dict[str, Any] = {}
    for key, value in row.items():
        record[key] = value
        if key == "state":
            record["state_name"] = state_name(value)
    return record


def job_table_row(row: Row) -> dict[str, Any]:
    """Return the cells of one `job list` table line."""
    progress = row["download_progress"]
    return {
        "id": row["id"],
        "container": row["container_id"],
        "computer": row["computer"],
        "package": f"{row['package']} {row['package_version']}"
        + (" (uninstall)" if row.get("is_uninstall") else ""),
        "state": f"{state_name(row['state'])} ({row['state']})",
        "progress": None if progress is None else f"{progress:g}%",
        "return code": row["return_code"],
        "output": last_output_line(row["message"]),
    }


def state_name(state: int) -> str:
    return jobs.STATE_NAMES.get(state, "unknown")


def parse_state(text: str) -> int:
    """Parse a job state given as a name ("already-installed") or a number."""
    text = text.strip()
    key = text.lower().replace("-", " ").replace("_", " ")
    for number, name in jobs.STATE_NAMES.items():
        if text == str(number) or key == name:
            return number
    names = ", ".join(name.replace(" ", "-") for name in jobs.STATE_NAMES.values())
    raise AdminError(f"invalid job state {text!r}: use one of {names}, or its number")


def last_output_line(message: str) -> str | None:
    lines = [line for line in message.splitlines() if line.strip()]
    return lines[-1].strip() if lines else None
