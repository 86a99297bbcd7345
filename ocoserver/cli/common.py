"""Options and helpers shared by the CLI commands."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson

from ocoserver import timefmt
from ocoserver.config import Config, load_config
from ocoserver.db import SQLITE_INTEGER_MAX
from ocoserver.errors import AdminError

# Signature of a command's `run` function. `cli.main` calls it with the
# parsed arguments and the loaded configuration and exits with its result.
RunFunction = Callable[[argparse.Namespace, Config], Awaitable[int]]


def add_data_dir_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir",
        default=argparse.SUPPRESS,
        help="directory with the database and package depot (default ./ocoserver-data)",
    )
    parser.add_argument(
        "--config",
        default=argparse.SUPPRESS,
        metavar="FILE",
        help="TOML configuration file (see config.example.toml)",
    )


def load_cli_config(args: argparse.Namespace) -> Config:
    """Load the config file and environment, then apply command-line options."""
    path = getattr(args, "config", None)
    config = load_config(Path(path) if path else None, os.environ)
    return config.with_overrides(
        host=getattr(args, "host", None),
        port=getattr(args, "port", None),
        data_dir=getattr(args, "data_dir", None),
        tls_cert=getattr(args, "tls_cert", None),
        tls_key=getattr(args, "tls_key", None),
    )


# Library loggers kept at WARNING whatever the server's level: aiosqlite's
# debug lines show SQL parameters (agent keys among them), and aiohttp's
# access log shows query strings (the agent key of a plain download).
QUIET_LOGGERS = ("aiosqlite", "aiohttp.access")


class OneLineFormatter(logging.Formatter):
    """Format a record as exactly one line.

    Log messages contain values that agents send, such as hostnames. Line
    breaks and other control characters in them are escaped so that no
    request can add a forged line to the log. Tracebacks keep their lines.
    """

    def formatMessage(self, record: logging.LogRecord) -> str:
        return escape_control_characters(super().formatMessage(record))


def escape_control_characters(text: str, keep: str = "") -> str:
    """Replace control characters, except those in `keep`, with escapes such as \\n."""
    if text.isprintable():
        return text
    return "".join(
        char
        if char.isprintable() or char in keep
        else char.encode("unicode_escape").decode("ascii")
        for char in text
    )


def setup_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        OneLineFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    logging.basicConfig(level=level.upper(), handlers=[handler])
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def print_json(value: Any) -> None:
    sys.stdout.write(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode() + "\n")


def print_table(rows: Iterable[Mapping[str, Any]], columns: list[str]) -> None:
    """Print rows as aligned text columns with a header line."""
    cells = [[_cell(row.get(column)) for column in columns] for row in rows]
    widths = [
        max([len(column)] + [len(line[index]) for line in cells])
        for index, column in enumerate(columns)
    ]
    header = "  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True))
    print(header.rstrip())
    for line in cells:
        print("  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip())


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    # Agents and API clients choose much of what a table shows; escaping
    # control characters keeps their text from driving the terminal.
    text = escape_control_characters(str(value).replace("\n", " "))
    return text if len(text) <= 60 else text[:57] + "..."


def print_fields(row: Mapping[str, Any]) -> None:
    """Print one record as 'name: value' lines, names aligned."""
    width = max((len(name) for name in row), default=0)
    for name, value in row.items():
        text = "-" if value is None else escape_control_characters(str(value))
        print(f"{name.ljust(width)}  {text}")


def print_section(title: str, rows: Sequence[Mapping[str, Any]]) -> None:
    """Print a titled table of rows, or '(none)' when there are no rows."""
    print()
    print(f"{title}:")
    if not rows:
        print("  (none)")
        return
    print_table(rows, list(rows[0]))


def parse_id(text: str, label: str, list_command: str) -> int:
    """Parse a database id given on the command line, or raise AdminError.

    `label` names the kind of id in the message ("package id"), and
    `list_command` is the command that shows the valid ids.
    """
    try:
        number = int(text)
    except ValueError:
        number = 0
    if not 1 <= number <= SQLITE_INTEGER_MAX:
        raise AdminError(
            f"invalid {label} {text!r}: use a positive whole number; "
            f"'{list_command}' shows the ids"
        )
    return number


def parse_integer(text: str, label: str, minimum: int | None = None) -> int:
    """Parse a whole number given on the command line, or raise AdminError."""
    try:
        number = int(text)
    except ValueError:
        raise AdminError(
            f"invalid {label} {text!r}: use a whole number such as 5"
        ) from None
    if minimum is not None and number < minimum:
        raise AdminError(
            f"invalid {label} {text!r}: use a number of at least {minimum}"
        )
    if abs(number) > SQLITE_INTEGER_MAX:
        raise AdminError(
            f"invalid {label} {text!r}: use a number between "
            f"-{SQLITE_INTEGER_MAX} and {SQLITE_INTEGER_MAX}"
        )
    return number


def parse_time(text: str, option: str) -> str:
    """Parse a command-line time into stored UTC text, or raise AdminError."""
    try:
        return timefmt.parse_admin_time(text)
    except ValueError as error:
        raise AdminError(f"{option}: {error}") from None


def add_command_group(commands: Any, name: str, help_text: str) -> Any:
    """Add a command such as `computer` whose subcommands do the work.

    Returns the group's subparsers object for `add_leaf_command`. A missing
    subcommand is a usage error, so argparse lists the choices.
    """
    group = commands.add_parser(name, help=help_text, description=help_text)
    add_data_dir_option(group)
    destination = name.replace("-", "_") + "_command"
    subcommands = group.add_subparsers(dest=destination, metavar="SUBCOMMAND")
    subcommands.required = True
    return subcommands


def add_leaf_command(
    commands: Any, name: str, help_text: str, run: RunFunction
) -> argparse.ArgumentParser:
    """Add a command that runs `run(args, config)` and returns its exit code."""
    parser: argparse.ArgumentParser = commands.add_parser(
        name, help=help_text, description=help_text
    )
    add_data_dir_option(parser)
    parser.set_defaults(run=run)
    return parser


def add_json_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--json", action="store_true", help="print JSON instead of a readable table"
    )
