"""`ocoserver api-key …`: create, list and revoke client API keys, read the audit log."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ocoserver.cli.common import (
    add_command_group,
    add_json_option,
    add_leaf_command,
    parse_integer,
    print_json,
    print_table,
)
from ocoserver.config import Config
from ocoserver.db import open_database
from ocoserver.store import api_keys

LIST_COLUMNS = ["id", "name", "scope", "created", "last_used", "revoked"]
AUDIT_COLUMNS = ["time", "key_name", "remote_address", "method", "targets", "result"]


def add_commands(commands: Any) -> None:
    key_commands = add_command_group(
        commands, "api-key", "manage keys of the client API (/api-client.php)"
    )

    add = add_leaf_command(
        key_commands, "add", "create a key and print it once; only its hash is kept",
        run_add,
    )  # fmt: skip
    add.add_argument("name", metavar="NAME", help="name of the key, such as ci-deploy")
    add.add_argument(
        "--scope", required=True, choices=api_keys.SCOPES,
        help="read: list and get; deploy: read plus deploy, uninstall and job "
        "container changes; admin: every method",
    )  # fmt: skip

    listing = add_leaf_command(key_commands, "list", "list keys", run_list)
    add_json_option(listing)

    revoke = add_leaf_command(
        key_commands, "revoke", "revoke a key; requests with it are rejected at once",
        run_revoke,
    )  # fmt: skip
    revoke.add_argument("key", metavar="NAME|ID", help="name or id of the key")

    audit = add_leaf_command(
        key_commands, "audit", "show the newest client API calls", run_audit
    )
    audit.add_argument(
        "--limit", default="50", metavar="N",
        help="number of calls to show, newest first (default 50)",
    )  # fmt: skip
    add_json_option(audit)


async def run_add(args: argparse.Namespace, config: Config) -> int:
    async with open_database(config.database_path) as database:
        _, key = await api_keys.add(database, args.name, args.scope)
    print(key)
    print(
        "ocoserver: store this key now; the server keeps only its hash",
        file=sys.stderr,
    )
    return 0


async def run_list(args: argparse.Namespace, config: Config) -> int:
    async with open_database(config.database_path) as database:
        rows = await api_keys.list_all(database)
    if args.json:
        print_json(rows)
    else:
        print_table(rows, LIST_COLUMNS)
    return 0


async def run_revoke(args: argparse.Namespace, config: Config) -> int:
    async with open_database(config.database_path) as database:
        row = await api_keys.revoke(database, args.key)
    print(f"revoked API key {row['name']} (id {row['id']})")
    return 0


def _targets_text(targets: Any) -> str:
    """Show an audit row's targets as `name=value` pairs, such as `hostname=pc1`."""
    if not isinstance(targets, dict):
        return "" if targets is None else str(targets)
    return " ".join(f"{name}={value}" for name, value in targets.items())


async def run_audit(args: argparse.Namespace, config: Config) -> int:
    limit = parse_integer(args.limit, "limit", minimum=1)
    async with open_database(config.database_path) as database:
        rows = await api_keys.list_audit(database, limit)
    if args.json:
        print_json(rows)
        return 0
    table = [
        {
            **row,
            "targets": _targets_text(row["targets"]),
            "result": row["result"]
            if row["error_code"] is None
            else f"error {row['error_code']}",
        }
        for row in rows
    ]
    print_table(table, AUDIT_COLUMNS)
    return 0
