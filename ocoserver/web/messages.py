"""Rewording of shared validation messages for the web console.

The store modules validate input once for the CLI, the client API and the
console, and their messages name CLI options ('give --name') and CLI
commands. A browser user sees form fields and pages instead, so the
console passes every such message through `console_message` before it
shows it. The CLI and the client API keep the original wording.
"""

from __future__ import annotations

import re

from ocoserver.store import settings

# Console form field labels of the CLI options that shared messages name.
FIELD_LABELS = {
    "--name": "Name",
    "--version": "Version",
    "--install": "Install procedure",
    "--uninstall": "Uninstall procedure",
    "--start": "Start",
    "--end": "End",
    "--log": "Log",
    "--query": "Query",
    "--length": "Length",
    "--valid-days": "Valid days",
    "--history": "History",
    "--force": "Install even where the same version is installed",
}

# Console pages for the CLI commands that shared messages suggest.
_COMMAND_REWRITES = (
    (
        "remove their job containers with 'ocoserver job-container remove ID' "
        "('ocoserver job list --state waiting' shows them)",
        "remove their job containers on the Jobs page",
    ),
    ("'ocoserver computer list'", "the Computers page"),
    ("'ocoserver package list'", "the Packages page"),
    ("'ocoserver job-container list'", "the Jobs page"),
    ("'ocoserver event-rule list'", "the Settings page"),
    ("'ocoserver password-rule list'", "the Settings page"),
)
_PASSWORD_RULE_REMOVE = re.compile(r"with 'ocoserver password-rule remove \d+'")

# Keys that shared messages start with, and their form labels. The setting
# keys come from settings.validate, the deployment fields from
# jobs.validate_deployment.
_KEY_LABELS = {
    settings.UPDATE_INTERVAL: "Update interval",
    settings.REGISTRATION_KEY: "New registration key",
    settings.SELF_REGISTRATION: "Let unknown computers register",
    "start_time": "Start",
    "end_time": "End",
}

_OPTION = re.compile(r"(give a later |choose another |give )?(--[a-z][a-z-]*)( CMD)?")


def console_message(message: str) -> str:
    """Return `message` with CLI options and commands replaced by form terms."""
    for cli_text, console_text in _COMMAND_REWRITES:
        message = message.replace(cli_text, console_text)
    message = _PASSWORD_RULE_REMOVE.sub("with its Remove button in Settings", message)
    message = _OPTION.sub(_field_text, message)
    for key, label in _KEY_LABELS.items():
        if message.startswith((f"{key} ", f"{key}:")):
            message = f'"{label}"{message[len(key) :]}'
    return message


def _field_text(match: re.Match[str]) -> str:
    label = FIELD_LABELS.get(match.group(2))
    if label is None:
        return match.group(0)
    verb = match.group(1)
    if verb == "give ":
        return f'fill in "{label}"'
    if verb == "give a later ":
        return f'enter a later "{label}"'
    if verb == "choose another ":
        return f'enter another "{label}"'
    return f'"{label}"'
