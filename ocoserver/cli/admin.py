"""Administration commands: one module per command group, registered here."""

from __future__ import annotations

from typing import Any

from ocoserver.cli import (
    accounts,
    api_keys,
    backup,
    computers,
    containers,
    deployment_rules,
    deployments,
    event_rules,
    groups,
    packages,
    passwords,
    settings,
)


def add_commands(commands: Any) -> None:
    """Add every administration command to the top-level `commands` subparsers."""
    computer_commands = computers.add_commands(commands)
    # `computer passwords` lives with the password commands it belongs to.
    passwords.add_computer_subcommands(computer_commands)

    packages.add_commands(commands)
    deployments.add_commands(commands)
    containers.add_commands(commands)
    groups.add_commands(commands)
    deployment_rules.add_commands(commands)
    event_rules.add_commands(commands)
    settings.add_commands(commands)
    passwords.add_commands(commands)
    backup.add_commands(commands)
    api_keys.add_commands(commands)
    accounts.add_commands(commands)
