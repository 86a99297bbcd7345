"""`ocoserver setting …`: list and change the server settings in the database."""

from __future__ import annotations

import argparse
from typing import Any

from ocoserver.cli.common import (
    add_command_group,
    add_json_option,
    add_leaf_command,
    print_json,
    print_table,
)
from ocoserver.config import Config
from ocoserver.db import open_database
from ocoserver.store import settings

HIDDEN_TEXT = "(hidden; --show-secrets shows it)"


def add_commands(commands: Any) -> None:
    setting_commands = add_command_group(
        commands, "setting", "list and change settings"
    )

    listing = add_leaf_command(
        setting_commands, "list", "list settings with their values", run_list
    )
    listing.add_argument(
        "--show-secrets", action="store_true",
        help="print the values of secret settings such as the registration key",
    )  # fmt: skip
    add_json_option(listing)

    change = add_leaf_command(setting_commands, "set", "change a setting", run_set)
    change.add_argument(
        "key", metavar="KEY", help=f"one of: {', '.join(settings.DEFINITIONS)}"
    )
    change.add_argument("value", metavar="VALUE", help="new value")


async def run_list(args: argparse.Namespace, config: Config) -> int:
    async with open_database(config.database_path) as database:
        values = await settings.read_all(database)
    records = [
        setting_record(key, value, args.show_secrets) for key, value in values.items()
    ]

    if args.json:
        print_json(records)
        return 0

    rows = [
        {**record, "value": _table_value(record["value"])} for record in records
    ]
    print_table(rows, ["key", "value", "description"])
    return 0


def setting_record(key: str, value: str, show_secrets: bool) -> dict[str, Any]:
    """Return one setting for output, with a non-empty secret value as None.

    An empty secret stays visible, because it shows that the secret is unset.
    """
    definition = settings.DEFINITIONS[key]
    hidden = definition.secret and value != "" and not show_secrets
    return {
        "key": key,
        "value": None if hidden else value,
        "description": definition.description,
        "secret": definition.secret,
    }


def _table_value(value: str | None) -> str:
    if value is None:
        return HIDDEN_TEXT
    if value == "":
        return "(empty)"
    return value


async def run_set(args: argparse.Namespace, config: Config) -> int:
    async with open_database(config.database_path) as database:
        value = await settings.set_value(database, args.key, args.value)
    line = f"{args.key} = {settings.display_value(args.key, value)}"
    if args.key == settings.REGISTRATION_KEY and value == "":
        line += ": unknown computers cannot register themselves until a key is set"
    print(line)
    return 0
