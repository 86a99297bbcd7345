"""`ocoserver password-rule …` and `ocoserver computer passwords`.

Password rules tell agents which local accounts to give a new random
password and how often. `computer passwords` is the one command that shows
stored passwords in plain text.
"""

from __future__ import annotations

import argparse
from typing import Any

from ocoserver.cli.common import (
    add_command_group,
    add_json_option,
    add_leaf_command,
    parse_id,
    parse_integer,
    print_json,
    print_table,
)
from ocoserver.config import Config
from ocoserver.db import Row, open_database
from ocoserver.store import password_rules, passwords

RULE_COLUMNS = [
    "id", "username", "computers", "alphabet", "length", "valid_days", "history",
    "created",
]  # fmt: skip

HISTORY_COLUMNS = ["username", "created", "rule_id"]


def add_commands(commands: Any) -> None:
    """Add the `password-rule` group to the top-level `commands` subparsers."""
    rule_commands = add_command_group(
        commands, "password-rule", "manage local admin password rotation rules"
    )
    _add_add_command(rule_commands)

    listing = add_leaf_command(
        rule_commands, "list", "list password rotation rules", run_list
    )
    add_json_option(listing)

    remove = add_leaf_command(
        rule_commands, "remove",
        "delete a password rule; passwords stored under it are kept",
        run_remove,
    )  # fmt: skip
    remove.add_argument("rule_id", metavar="ID", help="password rule id")


def _add_add_command(rule_commands: Any) -> None:
    add = add_leaf_command(
        rule_commands, "add",
        "add a password rotation rule; prints the new rule id",
        run_add,
    )  # fmt: skip
    add.add_argument(
        "--username", required=True, metavar="NAME",
        help="local account whose password the agent rotates, such as administrator",
    )  # fmt: skip
    add.add_argument(
        "--computer", action="append", default=[], metavar="HOSTNAME",
        dest="computers",
        help="computer the rule applies to (repeat for several); "
        "without --computer the rule applies to every computer",
    )  # fmt: skip
    add.add_argument(
        "--alphabet", required=True, metavar="CHARS",
        help="characters the agent picks from: printable ASCII without spaces, "
        f"at least {password_rules.MIN_DISTINCT_CHARACTERS} different; "
        "repeated characters are removed",
    )  # fmt: skip
    add.add_argument(
        "--length", required=True, metavar="N",
        help=f"password length in characters, {password_rules.MIN_LENGTH} to "
        f"{password_rules.MAX_LENGTH}",
    )  # fmt: skip
    add.add_argument(
        "--valid-days", required=True, metavar="N",
        help="days after which the agent sets a new password (at least 1)",
    )  # fmt: skip
    add.add_argument(
        "--history", required=True, metavar="N",
        help="passwords kept per computer and user (at least 1); for five minutes "
        "after a new password, while the agent may revoke it, older ones stay too",
    )  # fmt: skip


def add_computer_subcommands(computer_commands: Any) -> None:
    """Add `computer passwords` to the `computer` subparsers."""
    show = add_leaf_command(
        computer_commands, "passwords",
        "show a computer's stored local admin passwords in plain text, "
        "newest first per user",
        run_show_passwords,
    )  # fmt: skip
    show.add_argument("hostname", metavar="HOSTNAME")
    add_json_option(show)


async def run_add(args: argparse.Namespace, config: Config) -> int:
    spec = password_rules.RuleSpec(
        username=args.username,
        hostnames=tuple(args.computers),
        alphabet=args.alphabet,
        length=parse_integer(args.length, "--length"),
        valid_days=parse_integer(args.valid_days, "--valid-days"),
        history=parse_integer(args.history, "--history"),
    )
    async with open_database(config.database_path) as database:
        rule_id = await password_rules.add(database, spec)
    print(rule_id)
    return 0


async def run_list(args: argparse.Namespace, config: Config) -> int:
    async with open_database(config.database_path) as database:
        rules = await password_rules.list_all(database)
    if args.json:
        print_json(rules)
    else:
        print_table([_rule_table_row(rule) for rule in rules], RULE_COLUMNS)
    return 0


def _rule_table_row(rule: Row) -> Row:
    computers = ", ".join(rule["computers"]) if not rule["all_computers"] else "(all)"
    return {**rule, "computers": computers or "(none left)"}


async def run_remove(args: argparse.Namespace, config: Config) -> int:
    rule_id = parse_id(args.rule_id, "password rule id", "ocoserver password-rule list")
    async with open_database(config.database_path) as database:
        await password_rules.remove(database, rule_id)
    print(f"removed password rule {rule_id}")
    return 0


async def run_show_passwords(args: argparse.Namespace, config: Config) -> int:
    async with open_database(config.database_path) as database:
        computer, history = await passwords.history_for_computer(
            database, config.password_key_path, args.hostname
        )
    if args.json:
        print_json(history)
    elif not history:
        print(f"no passwords stored for computer {computer['hostname']}")
    else:
        _print_history(history)
    return 0


def _print_history(history: list[Row]) -> None:
    """Print the history with the password last and never shortened.

    print_table cuts long cells, which would make a password unusable.
    A password with control characters is shown as a Python string literal.
    """
    rows = [{column: row[column] for column in HISTORY_COLUMNS} for row in history]
    widths = {
        column: max([len(column)] + [len(_text(row[column])) for row in rows])
        for column in HISTORY_COLUMNS
    }
    header = "  ".join(column.upper().ljust(widths[column]) for column in HISTORY_COLUMNS)
    print(f"{header}  PASSWORD")
    for row in history:
        cells = "  ".join(_text(row[column]).ljust(widths[column])
                          for column in HISTORY_COLUMNS)
        password = row["password"]
        printed = password if password.isprintable() else repr(password)
        print(f"{cells}  {printed}")


def _text(value: Any) -> str:
    return "-" if value is None else str(value)
