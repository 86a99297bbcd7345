"""`ocoserver backup` and `ocoserver restore`: copy a data directory and back."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from ocoserver import backup
from ocoserver.cli.common import add_leaf_command
from ocoserver.config import Config


def add_commands(commands: Any) -> None:
    create = add_leaf_command(
        commands, "backup",
        "copy the database and password key, while the server runs, into a new "
        "or empty directory",
        run_backup,
    )  # fmt: skip
    create.add_argument("destination", metavar="DEST", help="backup directory")
    create.add_argument(
        "--with-depot", action="store_true",
        help="also copy the package files that the backed-up database refers to",
    )  # fmt: skip

    restore = add_leaf_command(
        commands, "restore",
        "copy a backup into the data directory; the server must be stopped",
        run_restore,
    )  # fmt: skip
    restore.add_argument("source", metavar="SRC", help="directory written by backup")
    restore.add_argument(
        "--replace", action="store_true",
        help="move the current database and password key to "
        "<data_dir>/replaced-<time>/ first",
    )  # fmt: skip


async def run_backup(args: argparse.Namespace, config: Config) -> int:
    warnings = await asyncio.to_thread(
        backup.create_backup, config, Path(args.destination), args.with_depot, print
    )
    return _finish(warnings)


async def run_restore(args: argparse.Namespace, config: Config) -> int:
    warnings = await asyncio.to_thread(
        backup.restore_backup, config, Path(args.source), args.replace, print
    )
    return _finish(warnings)


def _finish(warnings: list[str]) -> int:
    """Print warnings on stderr and return the exit code: 1 with warnings, else 0."""
    for warning in warnings:
        print(f"ocoserver: warning: {warning}", file=sys.stderr)
    return 1 if warnings else 0
