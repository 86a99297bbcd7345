"""`ocoserver package …`: add, list, show and remove software packages."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ocoserver.cli.common import (
    add_command_group,
    add_json_option,
    add_leaf_command,
    parse_id,
    parse_integer,
    print_fields,
    print_json,
    print_table,
)
from ocoserver.config import Config
from ocoserver.db import Row, open_database
from ocoserver.errors import AdminError
from ocoserver.store import packages

# The PATH argument that adds a package without a payload.
NO_PAYLOAD = "-"

LIST_COLUMNS = [
    "id", "name", "version", "size", "sha256", "success_codes", "post_action",
    "deadline", "compatible_os", "compatible_arch", "created", "description",
]  # fmt: skip

FAMILY_COLUMNS = ["name", "versions", "package_ids"]

# Hex digits of the SHA-256 shown in the `package list` table; --json and
# `package show` give all 64.
SHORT_SHA256 = 16


def add_commands(commands: Any) -> None:
    package_commands = add_command_group(
        commands, "package", "manage software packages"
    )
    _add_add_command(package_commands)

    listing = add_leaf_command(
        package_commands, "list", "list packages sorted by name (family) and version",
        run_list,
    )  # fmt: skip
    listing.add_argument(
        "--family", metavar="NAME", help="only the versions of this package family"
    )
    add_json_option(listing)

    families = add_leaf_command(
        package_commands, "families",
        "list package families (packages of one name) with their versions",
        run_families,
    )  # fmt: skip
    add_json_option(families)

    show = add_leaf_command(package_commands, "show", "show one package", run_show)
    show.add_argument("package_id", metavar="ID", help="package id")
    add_json_option(show)

    remove = add_leaf_command(
        package_commands, "remove", "delete a package and its payload", run_remove
    )
    remove.add_argument("package_id", metavar="ID", help="package id")


def _add_add_command(package_commands: Any) -> None:
    add = add_leaf_command(
        package_commands, "add", "add a package and print its new id", run_add
    )
    add.add_argument(
        "path", metavar="PATH",
        help="ZIP file with the payload, a folder to zip, or '-' for no payload",
    )  # fmt: skip
    add.add_argument("--name", required=True, help="package name, such as Firefox")
    add.add_argument("--version", required=True, help="package version, such as 128.0")
    add.add_argument(
        "--install", required=True, metavar="CMD",
        help="command that the agent runs to install the package",
    )  # fmt: skip
    add.add_argument(
        "--uninstall", default="", metavar="CMD",
        help="command that the agent runs to uninstall the package",
    )  # fmt: skip
    add.add_argument(
        "--success-codes", default="0", metavar="CODES",
        help="comma-separated return codes that mean success, such as 0,3010 "
        "(default 0)",
    )  # fmt: skip
    add.add_argument(
        "--post-action", default="none", metavar="ACTION",
        help=f"action after installing: {', '.join(packages.POST_ACTIONS)} "
        "(default none)",
    )  # fmt: skip
    add.add_argument(
        "--post-action-timeout", default="5", metavar="MINUTES",
        help="minutes the agent waits before the post action (default 5)",
    )  # fmt: skip
    add.add_argument(
        "--description", default="", metavar="TEXT", help="free-text description"
    )
    add.add_argument(
        "--deadline", metavar="MINUTES",
        help="minutes a job may run the install command before it is marked "
        "failed (default no limit)",
    )  # fmt: skip
    _add_compatibility_options(add)


def _add_compatibility_options(add: argparse.ArgumentParser) -> None:
    add.add_argument(
        "--uninstall-post-action", default="none", metavar="ACTION",
        help=f"action after uninstalling: {', '.join(packages.POST_ACTIONS)} "
        "(default none; uses --post-action-timeout)",
    )  # fmt: skip
    add.add_argument(
        "--compatible-os", default="", metavar="LIST",
        help="comma-separated OS names the package runs on, such as windows,linux "
        "or macos; other text matches the computer's OS name (default any)",
    )  # fmt: skip
    add.add_argument(
        "--compatible-arch", default="", metavar="LIST",
        help="comma-separated CPU architectures, such as x86_64,arm64 (default any)",
    )  # fmt: skip


async def run_add(args: argparse.Namespace, config: Config) -> int:
    source = _parse_source(args.path)
    spec = packages.PackageSpec(
        family=args.name,
        version=args.version,
        install_procedure=args.install,
        uninstall_procedure=args.uninstall,
        success_codes=args.success_codes,
        post_action=args.post_action,
        post_action_timeout=parse_integer(
            args.post_action_timeout, "post action timeout", minimum=0
        ),
        description=args.description,
        compatible_os=args.compatible_os,
        compatible_arch=args.compatible_arch,
        uninstall_post_action=args.uninstall_post_action,
        deadline=_parse_deadline(args.deadline),
    )

    async with open_database(config.database_path) as database:
        package_id = await packages.add(database, config.depot_path, spec, source)

    print(package_id)
    return 0


def _parse_deadline(text: str | None) -> int | None:
    if text is None:
        return None
    return parse_integer(text, "deadline", minimum=1)


def _parse_source(text: str) -> Path | None:
    if text == NO_PAYLOAD:
        return None
    if not text.strip():
        # Path("") is the current directory, which would be zipped silently.
        raise AdminError(
            "package PATH is empty: give a ZIP file, a folder, or '-' for no payload"
        )
    return Path(text)


async def run_list(args: argparse.Namespace, config: Config) -> int:
    async with open_database(config.database_path) as database:
        rows = await packages.list_all(database, args.family)
    if args.json:
        print_json(rows)
    else:
        print_table([_short_hash(row) for row in rows], LIST_COLUMNS)
    return 0


async def run_families(args: argparse.Namespace, config: Config) -> int:
    async with open_database(config.database_path) as database:
        rows = await packages.list_families(database)
    if args.json:
        print_json(rows)
        return 0
    table = [
        {
            "name": row["name"],
            "versions": ", ".join(row["versions"]),
            "package_ids": ", ".join(str(number) for number in row["package_ids"]),
        }
        for row in rows
    ]
    print_table(table, FAMILY_COLUMNS)
    return 0


def _short_hash(row: Row) -> Row:
    sha256 = row["sha256"]
    return {**row, "sha256": sha256[:SHORT_SHA256] if sha256 else None}


async def run_show(args: argparse.Namespace, config: Config) -> int:
    package_id = parse_id(args.package_id, "package id", "ocoserver package list")
    async with open_database(config.database_path) as database:
        record = package_record(await packages.get(database, package_id))
    if args.json:
        print_json(record)
    else:
        print_fields(record)
    return 0


def package_record(row: Row) -> dict[str, Any]:
    """Return a package row with `family` renamed to `name`, as in `package list`.

    `file_mtime_ns` is left out because it only decides when downloads rehash
    the payload.
    """
    return {
        ("name" if key == "family" else key): value
        for key, value in row.items()
        if key != "file_mtime_ns"
    }


async def run_remove(args: argparse.Namespace, config: Config) -> int:
    package_id = parse_id(args.package_id, "package id", "ocoserver package list")
    async with open_database(config.database_path) as database:
        row = await packages.remove(database, config.depot_path, package_id)
    print(f"removed package {row['family']} {row['version']} (id {package_id})")
    return 0
