"""Administration commands: one module per command group, registered here."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ocoserver.cli import computers, deployments, event_rules, packages, settings

# Functions that add more `computer` subcommands from other modules. Each is
# called with the `computer` subparsers object and adds its subcommands with
# `common.add_leaf_command`.
COMPUTER_SUBCOMMAND_HOOKS: list[Callable[[Any], None]] = []


def add_commands(commands: Any) -> None:
    """Add every administration command to the top-level `commands` subparsers."""
    computer_commands = computers.add_commands(commands)
    for add_computer_subcommands in COMPUTER_SUBCOMMAND_HOOKS:
        add_computer_subcommands(computer_commands)

    packages.add_commands(commands)
    deployments.add_commands(commands)
    event_rules.add_commands(commands)
    settings.add_commands(commands)
