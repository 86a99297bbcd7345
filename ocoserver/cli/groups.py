"""`ocoserver computer-group …` and `package-group …`: nested groups.

Both commands have the same subcommands; a GROUP argument is an id when it
is all digits and a name otherwise.
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
from ocoserver.config import Config
from ocoserver.db import open_database
from ocoserver.store import groups, memberships
from ocoserver.store.groups import COMPUTER_GROUPS, PACKAGE_GROUPS, GroupKind

LIST_COLUMNS = ["id", "name", "parent_id", "parent", "members", "created"]


def add_commands(commands: Any) -> None:
    _add_kind_commands(commands, COMPUTER_GROUPS, "HOSTNAME", "computer hostname")
    _add_kind_commands(commands, PACKAGE_GROUPS, "PACKAGE_ID", "package id")


def _add_kind_commands(
    commands: Any, kind: GroupKind, member_metavar: str, member_help: str
) -> None:
    group_commands = add_command_group(
        commands, kind.command, f"manage {kind.label}s, which may contain subgroups"
    )
    add = add_leaf_command(
        group_commands, "add", f"create a {kind.label} and print its id", _run_add
    )
    add.add_argument("name", metavar="NAME", help="group name, not all digits")
    add.add_argument("--parent", metavar="GROUP", help="parent group id or name")
    add.set_defaults(kind=kind)

    listing = add_leaf_command(group_commands, "list", f"list {kind.label}s", _run_list)
    listing.set_defaults(kind=kind)
    add_json_option(listing)

    show = add_leaf_command(
        group_commands, "show", "show a group with the members of it and its subgroups",
        _run_show,
    )  # fmt: skip
    show.add_argument("group", metavar="GROUP", help="group id or name")
    show.set_defaults(kind=kind)
    add_json_option(show)

    _add_change_commands(group_commands, kind, member_metavar, member_help)


def _add_change_commands(
    group_commands: Any, kind: GroupKind, member_metavar: str, member_help: str
) -> None:
    for name, help_text, run in (
        ("add-member", f"add a {member_help} to a group", _run_add_member),
        ("remove-member", f"remove a {member_help} from a group", _run_remove_member),
    ):
        parser = add_leaf_command(group_commands, name, help_text, run)
        parser.add_argument("group", metavar="GROUP", help="group id or name")
        parser.add_argument("member", metavar=member_metavar, help=member_help)
        parser.set_defaults(kind=kind)

    move = add_leaf_command(
        group_commands, "move", "give a group another parent group", _run_move
    )
    move.add_argument("group", metavar="GROUP", help="group id or name")
    target = move.add_mutually_exclusive_group(required=True)
    target.add_argument("--parent", metavar="GROUP", help="new parent id or name")
    target.add_argument("--top", action="store_true", help="make it a top-level group")
    move.set_defaults(kind=kind)

    remove = add_leaf_command(
        group_commands, "remove", "delete a group that has no subgroups", _run_remove
    )
    remove.add_argument("group", metavar="GROUP", help="group id or name")
    remove.set_defaults(kind=kind)


async def _run_add(args: argparse.Namespace, config: Config) -> int:
    async with open_database(config.database_path) as database:
        group_id = await groups.add(database, args.kind, args.name, args.parent)
    print(group_id)
    return 0


async def _run_list(args: argparse.Namespace, config: Config) -> int:
    async with open_database(config.database_path) as database:
        rows = await groups.list_all(database, args.kind)
    if args.json:
        print_json(rows)
    else:
        print_table(rows, LIST_COLUMNS)
    return 0


async def _run_show(args: argparse.Namespace, config: Config) -> int:
    async with open_database(config.database_path) as database:
        group, members = await groups.members(database, args.kind, args.group)
    if args.json:
        print_json({**group, "members": members})
        return 0
    print_fields(group)
    print_section("Members, with those of subgroups", members)
    return 0


async def _run_add_member(args: argparse.Namespace, config: Config) -> int:
    async with open_database(config.database_path) as database:
        group = await memberships.add_member(
            database, args.kind, args.group, args.member
        )
    print(f"added {args.member} to {args.kind.label} {group['name']}")
    return 0


async def _run_remove_member(args: argparse.Namespace, config: Config) -> int:
    async with open_database(config.database_path) as database:
        group = await memberships.remove_member(
            database, args.kind, args.group, args.member
        )
    print(f"removed {args.member} from {args.kind.label} {group['name']}")
    return 0


async def _run_move(args: argparse.Namespace, config: Config) -> int:
    parent = None if args.top else args.parent
    async with open_database(config.database_path) as database:
        group = await memberships.move(database, args.kind, args.group, parent)
    print(f"moved {args.kind.label} {group['name']} below {parent or 'the top level'}")
    return 0


async def _run_remove(args: argparse.Namespace, config: Config) -> int:
    async with open_database(config.database_path) as database:
        group = await memberships.remove(database, args.kind, args.group)
    print(f"removed {args.kind.label} {group['name']} (id {group['id']})")
    return 0
