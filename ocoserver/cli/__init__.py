"""Command-line entry point: `ocoserver` and `python -m ocoserver`.

Without a command it serves; `serve` does the same with explicit options.
Administration commands open the same database as the running server.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from ocoserver import __version__
from ocoserver.cli import admin
from ocoserver.cli.common import (
    add_data_dir_option,
    escape_control_characters,
    load_cli_config,
    setup_logging,
)
from ocoserver.config import Config, ConfigError
from ocoserver.datalock import DataDirInUse
from ocoserver.db import SchemaError
from ocoserver.errors import AdminError
from ocoserver.server import ListenError, serve

log = logging.getLogger("ocoserver.cli")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ocoserver",
        description="Self-hosted server for OCO agents. Without a command it serves.",
    )
    parser.add_argument("--version", action="version", version=f"ocoserver {__version__}")
    _add_serve_options(parser)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve_parser = commands.add_parser("serve", help="serve agents (the default)")
    _add_serve_options(serve_parser)
    admin.add_commands(commands)
    return parser


def _add_serve_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="TCP port to listen on (default 8080)")
    # SUPPRESS keeps an option given before `serve` from being reset by the
    # subcommand's own default.
    parser.add_argument(
        "--tls-cert", metavar="FILE", default=argparse.SUPPRESS,
        help="PEM certificate file, full chain allowed; with --tls-key the "
        "server speaks HTTPS only",
    )  # fmt: skip
    parser.add_argument(
        "--tls-key", metavar="FILE", default=argparse.SUPPRESS,
        help="PEM file of the certificate's private key",
    )  # fmt: skip
    add_data_dir_option(parser)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return the process exit code."""
    arguments = sys.argv[1:] if argv is None else list(argv)
    problem = find_invalid_argument(arguments)
    if problem is not None:
        print(f"ocoserver: error: {problem}", file=sys.stderr)
        return 2

    parser = build_parser()
    args = parser.parse_args(arguments)
    try:
        config = load_cli_config(args)
        check_data_dir(config.server.data_dir)
        if args.command in (None, "serve"):
            setup_logging(config.server.log_level)
            asyncio.run(serve(config))
            return 0
        # An administration command reports on stdout; its stderr carries
        # only warnings and errors so that scripts see a clean result.
        setup_logging("warning")
        # backup and restore report a missing database themselves.
        if args.command not in ("backup", "restore"):
            _warn_if_new_database(config)
        return int(asyncio.run(args.run(args, config)) or 0)
    except (AdminError, ConfigError, SchemaError, DataDirInUse, ListenError) as error:
        print(f"ocoserver: error: {error}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader of stdout (such as `head`) has closed it. Point stdout
        # at /dev/null so that the final flush at exit raises nothing.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except OSError as error:
        print(f"ocoserver: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def find_invalid_argument(arguments: Sequence[str]) -> str | None:
    """Return an error message for the first argument that is not UTF-8, or None.

    Python decodes such an argument with surrogateescape, and the surrogates
    it leaves cannot be stored in the database or printed. Checking them
    here, before any command runs, gives one message for every command.
    """
    for position, argument in enumerate(arguments):
        try:
            argument.encode("utf-8")
        except UnicodeEncodeError:
            raw_text = os.fsencode(argument).decode("utf-8", "backslashreplace")
            escaped_text = escape_control_characters(raw_text)
            place = f"argument {position + 1}"
            if position > 0 and arguments[position - 1].startswith("-"):
                place += f" (after {arguments[position - 1]})"
            return (
                f"{place} '{escaped_text}' is not valid UTF-8: "
                "pass names, paths and other text as UTF-8"
            )
    return None


def check_data_dir(text: str) -> None:
    """Raise AdminError unless the data directory `text` can be used.

    It must be a non-empty UTF-8 path whose nearest existing part is a
    directory.

    Without this check a file given as the data directory fails late, with
    a bare "File exists" or "Not a directory" from the first mkdir. Missing
    write permission is still reported by that mkdir, as a one-line OSError.
    """
    if not text.strip():
        # Path("") is the working directory, which an empty value rarely means.
        raise AdminError(
            "data directory is empty: pass a directory with --data-dir, "
            "server.data_dir or OCOSERVER_DATA_DIR, such as ./ocoserver-data"
        )
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # OCOSERVER_DATA_DIR with bytes that are not UTF-8 arrives with
        # lone surrogates, which no message or log line can show.
        raise AdminError(
            f"data directory {text.encode('utf-8', 'backslashreplace').decode()} "
            "is not valid UTF-8: use a UTF-8 path"
        ) from None
    data_dir = Path(text)
    existing = data_dir
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    if existing.is_dir():
        return
    if existing == data_dir:
        problem = f"data directory {data_dir} is not a directory"
    else:
        problem = (
            f"{existing} is not a directory, so data directory {data_dir} "
            "cannot be created"
        )
    raise AdminError(f"{problem}: pass a directory with --data-dir or server.data_dir")


def _warn_if_new_database(config: Config) -> None:
    """Say so when a command is about to create a database instead of using one.

    A mistyped --data-dir or a command run from another directory would
    otherwise write to a database that the server does not use.
    """
    if not config.database_path.exists():
        print(
            f"ocoserver: creating a new database at {config.database_path}; "
            "if the server uses another one, pass its --data-dir",
            file=sys.stderr,
        )


def default_data_dir() -> Path:
    return Path("ocoserver-data")
