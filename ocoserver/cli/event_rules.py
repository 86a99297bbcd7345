"""`ocoserver event-rule …`: choose the event log entries agents report."""

from __future__ import annotations

import argparse
from typing import Any

from ocoserver.cli.common import (
    add_command_group,
    add_json_option,
    add_leaf_command,
    parse_id,
    print_json,
    print_table,
)
from ocoserver.config import Config
from ocoserver.db import open_database
from ocoserver.store import events

LIST_COLUMNS = ["id", "log", "query", "created"]


def add_commands(commands: Any) -> None:
    rule_commands = add_command_group(
        commands, "event-rule", "manage the event queries sent to agents"
    )

    add = add_leaf_command(
        rule_commands, "add", "add an event rule and print its new id", run_add
    )
    add.add_argument(
        "--log", required=True,
        help="event log the agent reads, such as System or journalctl",
    )  # fmt: skip
    add.add_argument(
        "--query", required=True, help="query the agent runs on that log"
    )

    listing = add_leaf_command(rule_commands, "list", "list event rules", run_list)
    add_json_option(listing)

    remove = add_leaf_command(
        rule_commands, "remove", "delete an event rule", run_remove
    )
    remove.add_argument("rule_id", metavar="ID", help="event rule id")


async def run_add(args: argparse.Namespace, config: Config) -> int:
    async with open_database(config.database_path) as database:
        rule_id = await events.add_rule(database, args.log, args.query)
    print(rule_id)
    return 0


async def run_list(args: argparse.Namespace, config: Config) -> int:
    async with open_database(config.database_path) as database:
        rows = await events.list_rules(database)
    if args.json:
        print_json(rows)
    else:
        print_table(rows, LIST_COLUMNS)
    return 0


async def run_remove(args: argparse.Namespace, config: Config) -> int:
    rule_id = parse_id(args.rule_id, "event rule id", "ocoserver event-rule list")
    async with open_database(config.database_path) as database:
        await events.remove_rule(database, rule_id)
    print(f"removed event rule {rule_id}")
    return 0
