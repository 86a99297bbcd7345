"""`ocoserver computer …`: register, list, show, remove, refresh and merge computers.

`add_commands` returns the `computer` subparsers object so that
`ocoserver.cli.admin` can add subcommands kept in other modules (such as
`computer passwords`).
"""

from __future__ import annotations

import argparse
from typing import Any

from ocoserver.cli.common import (
    add_command_group,
    add_json_option,
    add_leaf_command,
    print_fields,
    print_json,
    print_section,
    print_table,
)
from ocoserver.cli.deployments import job_record, job_table_row
from ocoserver.config import Config
from ocoserver.db import Database, Row, open_database
from ocoserver.store import computers, events, inventory, jobs, merge

# Columns of the computer row that `computer show` never prints.
SECRET_COLUMNS = ("agent_key", "server_key")

# Section titles of `computer show` by JSON key. Sections print in the order
# `read_show_sections` returns them, so a new inventory section still prints.
SECTION_TITLES = {
    "networks": "Networks",
    "screens": "Screens",
    "printers": "Printers",
    "partitions": "Partitions",
    "software": "Software",
    "logins": "Logins",
    "users": "Users",
    "devices": "Devices",
    "services": "Services",
    "packages": "Installed packages",
    "jobs": "Recent jobs",
    "events": "Recent events",
}

LIST_COLUMNS = [
    "id", "hostname", "os", "os_version", "agent_version", "remote_address",
    "last_seen", "last_update", "notes",
]  # fmt: skip


def add_commands(commands: Any) -> Any:
    """Add `computer` with its subcommands and return its subparsers object."""
    computer_commands = add_command_group(
        commands, "computer", "register and inspect computers"
    )

    add = add_leaf_command(
        computer_commands, "add",
        "pre-register a computer; its agent receives keys at first contact",
        run_add,
    )  # fmt: skip
    add.add_argument("hostname", metavar="HOSTNAME", help="the computer's hostname")
    add.add_argument("--notes", default="", metavar="TEXT", help="free-text notes")

    listing = add_leaf_command(computer_commands, "list", "list computers", run_list)
    add_json_option(listing)

    show = add_leaf_command(
        computer_commands, "show",
        "show a computer's inventory, installed packages, jobs and events",
        run_show,
    )  # fmt: skip
    show.add_argument("hostname", metavar="HOSTNAME")
    add_json_option(show)

    remove = add_leaf_command(
        computer_commands, "remove",
        "delete a computer with its inventory, jobs and events",
        run_remove,
    )  # fmt: skip
    remove.add_argument("hostname", metavar="HOSTNAME")

    refresh = add_leaf_command(
        computer_commands, "refresh",
        "request a new inventory at the computer's next check-in",
        run_refresh,
    )  # fmt: skip
    refresh.add_argument("hostname", metavar="HOSTNAME")

    reset_keys = add_leaf_command(
        computer_commands, "reset-keys",
        "forget a computer's keys and last request timestamp; its agent, with "
        "the keys removed from its configuration, receives new keys at its next "
        "check-in",
        run_reset_keys,
    )  # fmt: skip
    reset_keys.add_argument("hostname", metavar="HOSTNAME")

    merge_command = add_leaf_command(
        computer_commands, "merge",
        "move the jobs, events, logins, installed packages and stored passwords "
        "of SOURCE onto TARGET, then delete SOURCE; TARGET keeps its keys and "
        "inventory",
        run_merge,
    )  # fmt: skip
    merge_command.add_argument(
        "source", metavar="SOURCE", help="hostname of the record to delete"
    )
    merge_command.add_argument(
        "target", metavar="TARGET", help="hostname of the record that the agent uses"
    )

    return computer_commands


async def run_add(args: argparse.Namespace, config: Config) -> int:
    async with open_database(config.database_path) as database:
        computer_id = await computers.add(database, args.hostname, args.notes)
    print(computer_id)
    return 0


async def run_list(args: argparse.Namespace, config: Config) -> int:
    async with open_database(config.database_path) as database:
        rows = await computers.list_all(database)
    if args.json:
        print_json(rows)
    else:
        print_table(rows, LIST_COLUMNS)
    return 0


async def run_show(args: argparse.Namespace, config: Config) -> int:
    async with open_database(config.database_path) as database:
        computer = await computers.get_by_hostname(database, args.hostname)
        sections = await read_show_sections(database, computer["id"])
    fields = {k: v for k, v in computer.items() if k not in SECRET_COLUMNS}

    if args.json:
        print_json({**fields, **sections})
        return 0

    print_fields(fields)
    for key, rows in sections.items():
        if key == "jobs":
            rows = [job_table_row(row) for row in rows]
        print_section(SECTION_TITLES.get(key, key.capitalize()), rows)
    return 0


async def read_show_sections(
    database: Database, computer_id: int
) -> dict[str, list[Row]]:
    """Read the inventory lists, installed packages, recent jobs and events."""
    sections = await inventory.read_sections(database, computer_id)
    sections["packages"] = await jobs.installed_packages(database, computer_id)
    recent_jobs = await jobs.recent_for_computer(database, computer_id)
    sections["jobs"] = [job_record(row) for row in recent_jobs]
    sections["events"] = await events.list_for_computer(database, computer_id)
    return sections


async def run_remove(args: argparse.Namespace, config: Config) -> int:
    async with open_database(config.database_path) as database:
        row = await computers.remove(database, args.hostname)
    print(f"removed computer {row['hostname']} (id {row['id']})")
    return 0


async def run_refresh(args: argparse.Namespace, config: Config) -> int:
    async with open_database(config.database_path) as database:
        row = await computers.request_refresh(database, args.hostname)
    print(
        f"inventory refresh requested for {row['hostname']}; "
        "its agent sends the inventory at its next check-in"
    )
    return 0


async def run_reset_keys(args: argparse.Namespace, config: Config) -> int:
    async with open_database(config.database_path) as database:
        row = await computers.reset_keys(database, args.hostname)
    print(
        f"keys of {row['hostname']} reset; remove agent-key and server-key from "
        "its agent configuration so that it accepts the new keys"
    )
    return 0


async def run_merge(args: argparse.Namespace, config: Config) -> int:
    async with open_database(config.database_path) as database:
        result = await merge.merge(database, args.source, args.target)
    print(
        f"merged {result.source['hostname']} (id {result.source['id']}) into "
        f"{result.target['hostname']} (id {result.target['id']}): {result.jobs} jobs, "
        f"{result.events} events, {result.passwords} passwords moved"
    )
    return 0
