"""`ocoserver job-container …`: inspect and manage job containers."""

from __future__ import annotations

import argparse
from typing import Any

from ocoserver.cli.common import (
    add_command_group,
    add_json_option,
    add_leaf_command,
    parse_id,
    print_fields,
    print_json,
    print_section,
    print_table,
)
from ocoserver.cli.deployments import job_record, job_table_row
from ocoserver.config import Config
from ocoserver.db import open_database
from ocoserver.store import containers, jobs

LIST_COLUMNS = [
    "id", "name", "enabled", "start_time", "end_time", "priority", "upgrade", "jobs",
    "waiting", "running", "succeeded", "failed", "not_sent",
]  # fmt: skip

LIST_COMMAND = "ocoserver job-container list"


def add_commands(commands: Any) -> None:
    container_commands = add_command_group(
        commands, "job-container", "inspect and manage job containers"
    )
    listing = add_leaf_command(
        container_commands, "list", "list job containers with job counts by state",
        _run_list,
    )  # fmt: skip
    add_json_option(listing)

    show = add_leaf_command(
        container_commands, "show", "show a job container with its jobs", _run_show
    )
    show.add_argument("container_id", metavar="ID", help="job container id")
    add_json_option(show)

    for name, help_text, run in (
        ("enable", "hand out the container's jobs again", _run_enable),
        ("disable", "stop handing out the container's jobs", _run_disable),
        ("remove", "delete a job container with all its jobs", _run_remove),
        ("renew-failed", "reset the container's failed jobs to waiting", _run_renew),
    ):
        parser = add_leaf_command(container_commands, name, help_text, run)
        parser.add_argument("container_id", metavar="ID", help="job container id")


def _container_id(args: argparse.Namespace) -> int:
    return parse_id(args.container_id, "job container id", LIST_COMMAND)


async def _run_list(args: argparse.Namespace, config: Config) -> int:
    async with open_database(config.database_path) as database:
        rows = await containers.list_all(database)
    if args.json:
        print_json(rows)
    else:
        print_table(rows, LIST_COLUMNS)
    return 0


async def _run_show(args: argparse.Namespace, config: Config) -> int:
    container_id = _container_id(args)
    async with open_database(config.database_path) as database:
        container = await containers.get_summary(database, container_id)
        rows = await jobs.list_jobs(database, container_id=container_id)
    if args.json:
        print_json({**container, "jobs": [job_record(row) for row in rows]})
        return 0
    print_fields(container)
    print_section("Jobs", [job_table_row(row) for row in rows])
    return 0


async def _run_enable(args: argparse.Namespace, config: Config) -> int:
    async with open_database(config.database_path) as database:
        row = await containers.set_enabled(database, _container_id(args), True)
    print(f"enabled job container {row['name']} (id {row['id']})")
    return 0


async def _run_disable(args: argparse.Namespace, config: Config) -> int:
    async with open_database(config.database_path) as database:
        row = await containers.set_enabled(database, _container_id(args), False)
    print(f"disabled job container {row['name']} (id {row['id']})")
    return 0


async def _run_remove(args: argparse.Namespace, config: Config) -> int:
    async with open_database(config.database_path) as database:
        row = await containers.remove(database, _container_id(args))
    print(f"removed job container {row['name']} (id {row['id']}) with its jobs")
    return 0


async def _run_renew(args: argparse.Namespace, config: Config) -> int:
    async with open_database(config.database_path) as database:
        count = await containers.renew_failed(database, _container_id(args))
    print(f"renewed {count} failed jobs")
    return 0
