"""`ocoserver admin …`: the accounts that log in to the web console."""

from __future__ import annotations

import argparse
import getpass
import shlex
import sys
from typing import Any

from ocoserver.cli.common import add_command_group, add_leaf_command, print_table
from ocoserver.config import Config
from ocoserver.db import open_database
from ocoserver.errors import AdminError
from ocoserver.store import admins
from ocoserver.web.passwords import check_new_password, hash_password


def add_commands(commands: Any) -> None:
    account_commands = add_command_group(
        commands, "admin", "manage web console accounts"
    )
    adding = add_leaf_command(
        account_commands, "add",
        "add an account; asks for the password, or reads one line from stdin "
        "when stdin is not a terminal",
        run_add,
    )  # fmt: skip
    adding.add_argument("name", metavar="NAME", help="account name to log in with")
    add_leaf_command(account_commands, "list", "list the accounts", run_list)
    removing = add_leaf_command(
        account_commands, "remove", "remove an account and end its sessions", run_remove
    )
    removing.add_argument("name", metavar="NAME", help="account name")


def read_new_password() -> str:
    """Read the password twice from the terminal, or once from piped stdin."""
    if not sys.stdin.isatty():
        line = sys.stdin.readline()
        if not line:
            raise AdminError(
                "no password on stdin: pipe one line with the password, or run "
                "the command in a terminal to be asked for it"
            )
        password = line.rstrip("\r\n")
    else:
        password = getpass.getpass("Password: ")
        if getpass.getpass("Repeat password: ") != password:
            raise AdminError("the passwords differ; run the command again")
    try:
        check_new_password(password)
    except ValueError as error:
        raise AdminError(str(error)) from None
    return password


async def run_add(args: argparse.Namespace, config: Config) -> int:
    # The name is checked before the password is read, so that a taken or
    # invalid name is reported as such and not as a password problem.
    name = admins.validate_name(args.name)
    async with open_database(config.database_path) as database:
        existing = await admins.find_user(database, name)
    if existing is not None:
        raise _exists_error(existing["name"])
    password_hash = hash_password(read_new_password())
    async with open_database(config.database_path) as database:
        user_id = await admins.add_user(database, name, password_hash)
    print(user_id)
    return 0


def _exists_error(name: str) -> AdminError:
    # There is no password reset command, so replacing the account is the way
    # to set a new password.
    argument = shlex.quote(name)
    return AdminError(
        f"admin account {name} already exists; choose another name, or set a new "
        f"password with 'ocoserver admin remove {argument}' and then "
        f"'ocoserver admin add {argument}'"
    )


async def run_list(args: argparse.Namespace, config: Config) -> int:
    async with open_database(config.database_path) as database:
        rows = await admins.list_users(database)
    print_table(rows, ["id", "name", "created", "last_login"])
    return 0


async def run_remove(args: argparse.Namespace, config: Config) -> int:
    async with open_database(config.database_path) as database:
        await admins.remove_user(database, args.name)
    return 0
