"""Local admin password rotation: due rules, reported passwords and history.

The hello response of a generation 2 agent lists the rules that are due
for its computer (`update-passwords`). The agent sets a new password for
each account, reports it with `oco.agent.passwords`, and, when it fails
to apply the password locally, reports it again with `revoke: true`.
Reported passwords are stored encrypted with the server's password key
(see ocoserver/passwordkey.py) and never logged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiosqlite

from ocoserver import passwordkey, timefmt
from ocoserver.agent_crypto import AgentCryptoError, decrypt_reported
from ocoserver.db import Database, Row, execute, fetch_all, fetch_one
from ocoserver.errors import AdminError, InternalError, InvalidParams
from ocoserver.params import read_flag, read_name
from ocoserver.passwordkey import PasswordKeyError
from ocoserver.store import computers, password_rules

if TYPE_CHECKING:
    from ocoserver.agent_auth import Caller

log = logging.getLogger("ocoserver.passwords")

# A revoke deletes only a password stored this many seconds ago or less, so
# an agent can undo the password it failed to apply but not older history.
REVOKE_WINDOW_SECONDS = 300

# Rules allow at most 256 characters. The margin admits passwords set by
# other means and reported as plain strings, while bounding what is stored.
MAX_PASSWORD_LENGTH = 1024

MAX_USERNAME_LENGTH = password_rules.MAX_USERNAME_LENGTH

SECONDS_PER_DAY = 86400


@dataclass(frozen=True)
class ReportedPassword:
    """One entry of `data.passwords`, decrypted."""

    username: str
    password: str = field(repr=False)
    revoke: bool


async def due_rules(
    connection: aiosqlite.Connection, computer_id: int
) -> list[dict[str, Any]]:
    """Return the `update-passwords` entries due for a computer.

    A rule is due when no password of its user is stored for the computer
    under that rule, or the newest one is more than `valid_days` days old.
    """
    due: list[dict[str, Any]] = []
    for rule in await password_rules.applicable(connection, computer_id):
        newest = await _newest_under_rule(connection, computer_id, rule["id"])
        cutoff = timefmt.seconds_ago_text(rule["valid_days"] * SECONDS_PER_DAY)
        if newest is None or newest < cutoff:
            due.append(
                {"username": rule["username"], "alphabet": rule["alphabet"],
                 "length": rule["length"]}
            )
    return due


async def _newest_under_rule(
    connection: aiosqlite.Connection, computer_id: int, rule_id: int
) -> str | None:
    row = await fetch_one(
        connection,
        "SELECT MAX(created) AS newest FROM computer_password "
        "WHERE computer_id = ? AND rule_id = ?",
        (computer_id, rule_id),
    )
    return None if row is None else row["newest"]


@dataclass(frozen=True)
class PasswordEntry:
    """One entry of `data.passwords` with valid types, not yet decrypted."""

    username: str
    password: Any = field(repr=False)
    revoke: bool


def read_entries(entries: list[dict[str, Any]]) -> list[PasswordEntry]:
    """Validate the types of `data.passwords`, raising InvalidParams on a bad entry."""
    return [_read_entry(index, entry) for index, entry in enumerate(entries)]


def _read_entry(index: int, entry: dict[str, Any]) -> PasswordEntry:
    where = f"data.passwords[{index}]"
    username = read_name(entry.get("username"), f"{where}.username", MAX_USERNAME_LENGTH)
    if not username:
        raise InvalidParams(f"{where}.username is empty")

    revoke = entry.get("revoke")
    revoke = False if revoke is None else read_flag(revoke, f"{where}.revoke")

    password = entry.get("password")
    if password is None:
        raise InvalidParams(f"{where}.password for user {username!r} is missing")
    if not isinstance(password, str | dict):
        raise InvalidParams(
            f"{where}.password for user {username!r} must be a string or an "
            f"object with iv and data, not {type(password).__name__}"
        )
    return PasswordEntry(username, password, revoke)


def decrypt_entries(
    entries: list[PasswordEntry], agent_key: str
) -> list[ReportedPassword]:
    """Decrypt validated entries, raising InvalidParams when one does not decrypt."""
    return [
        _decrypt_entry(index, entry, agent_key) for index, entry in enumerate(entries)
    ]


def _decrypt_entry(index: int, entry: PasswordEntry, agent_key: str) -> ReportedPassword:
    where = f"data.passwords[{index}]"
    try:
        password = decrypt_reported(entry.password, agent_key)
    except AgentCryptoError as error:
        raise InvalidParams(f"{where} for user {entry.username!r}: {error}") from None

    if not password:
        raise InvalidParams(f"{where}.password for user {entry.username!r} is empty")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidParams(
            f"{where}.password for user {entry.username!r} is longer than "
            f"{MAX_PASSWORD_LENGTH} characters"
        )
    return ReportedPassword(entry.username, password, entry.revoke)


async def check_reported(
    connection: aiosqlite.Connection, caller: Caller, entries: list[PasswordEntry]
) -> None:
    """Raise InvalidParams unless every entry decrypts and a rule applies to it.

    Runs during authentication, so a report that store_reported would
    reject changes nothing, not even the request's timestamp record.
    """
    reports = decrypt_entries(entries, caller.computer["agent_key"])
    for report in reports:
        if not report.revoke:
            await _rule_for(connection, caller, report)


async def store_reported(
    database: Database, key_path: Path, caller: Caller, entries: list[PasswordEntry]
) -> None:
    """Store the passwords an agent reports after rotating them, or revoke them.

    All entries are validated first and applied in one transaction, so an
    invalid entry or a username without a rule for this computer stores
    nothing (InvalidParams). A revoke deletes the matching password stored
    within REVOKE_WINDOW_SECONDS.
    """
    reports = decrypt_entries(entries, caller.computer["agent_key"])
    if not reports:
        return
    key = _load_server_key(key_path, caller)

    # Outcomes are logged after the commit, so a rolled-back request logs none.
    outcomes: list[tuple[int, str]] = []
    async with database.transaction() as connection:
        for report in reports:
            if report.revoke:
                outcome = await _revoke(connection, key, caller, report)
            else:
                outcome = await _store(connection, key, caller, report)
            outcomes.append(outcome)

    for level, message in outcomes:
        log.log(level, "%s", message)


async def _rule_for(
    connection: aiosqlite.Connection, caller: Caller, report: ReportedPassword
) -> Row:
    matching = await password_rules.applicable(
        connection, caller.computer_id, report.username
    )
    if not matching:
        raise InvalidParams(
            f"no password rule for user {report.username!r} applies to computer "
            f"{caller.hostname}; no password was stored"
        )
    return matching[0]


def _load_server_key(key_path: Path, caller: Caller) -> bytes:
    try:
        return passwordkey.load_or_create_key(key_path)
    except (PasswordKeyError, OSError) as error:
        log.error(
            "cannot store passwords reported by computer %s: %s", caller.hostname, error
        )
        raise InternalError(
            "the server failed to store passwords because its password key file "
            "is unusable; the server log names the problem"
        ) from None


async def _store(
    connection: aiosqlite.Connection, key: bytes, caller: Caller, report: ReportedPassword
) -> tuple[int, str]:
    rule = await _rule_for(connection, caller, report)
    username = rule["username"]
    ciphertext = passwordkey.encrypt(key, caller.computer_id, username, report.password)
    await execute(
        connection,
        "INSERT INTO computer_password (computer_id, rule_id, username, ciphertext, "
        "created) VALUES (?, ?, ?, ?, ?)",
        (caller.computer_id, rule["id"], username, ciphertext, timefmt.now_text()),
    )
    trimmed = await _trim_history(connection, caller.computer_id, username, rule["history"])
    return logging.INFO, (
        f"password of user {username} on computer {caller.hostname} stored under "
        f"rule {rule['id']}; {trimmed} older removed (history {rule['history']})"
    )


async def _trim_history(
    connection: aiosqlite.Connection, computer_id: int, username: str, history: int
) -> int:
    """Delete passwords beyond the history depth and return the deleted count.

    Kept are the newest `history` passwords and also the newest `history`
    stored before the revoke window. The agent may still revoke a password
    inside the window, and then the one before it is the password the
    computer uses, so it must survive even with `history` 1. The history
    therefore contains up to twice `history` passwords for a few minutes.
    """
    cursor = await connection.execute(
        "DELETE FROM computer_password WHERE computer_id = :computer_id "
        "AND username = :username AND id NOT IN ("
        "  SELECT id FROM computer_password"
        "  WHERE computer_id = :computer_id AND username = :username"
        "  ORDER BY created DESC, id DESC LIMIT :history"
        ") AND id NOT IN ("
        "  SELECT id FROM computer_password"
        "  WHERE computer_id = :computer_id AND username = :username"
        "  AND created < :window_start"
        "  ORDER BY created DESC, id DESC LIMIT :history"
        ")",
        {
            "computer_id": computer_id, "username": username, "history": history,
            "window_start": timefmt.seconds_ago_text(REVOKE_WINDOW_SECONDS),
        },
    )  # fmt: skip
    return cursor.rowcount


async def _revoke(
    connection: aiosqlite.Connection, key: bytes, caller: Caller, report: ReportedPassword
) -> tuple[int, str]:
    """Delete the newest recent password of the user equal to the reported one."""
    rows = await fetch_all(
        connection,
        "SELECT id, username, ciphertext, created FROM computer_password "
        "WHERE computer_id = ? AND username = ? AND created >= ? "
        "ORDER BY created DESC, id DESC",
        (caller.computer_id, report.username,
         timefmt.seconds_ago_text(REVOKE_WINDOW_SECONDS)),
    )
    for row in rows:
        if _stored_equals(key, caller, row, report.password):
            await connection.execute(
                "DELETE FROM computer_password WHERE id = ?", (row["id"],)
            )
            return logging.INFO, (
                f"password of user {row['username']} on computer {caller.hostname} "
                f"stored at {row['created']} revoked by the agent"
            )

    return logging.WARNING, (
        f"revoke of a password of user {report.username} on computer "
        f"{caller.hostname} matched no password stored in the last "
        f"{REVOKE_WINDOW_SECONDS} seconds; nothing deleted"
    )


def _stored_equals(key: bytes, caller: Caller, row: Row, password: str) -> bool:
    try:
        return passwordkey.matches(
            key, caller.computer_id, row["username"], row["ciphertext"], password
        )
    except PasswordKeyError as error:
        log.error("cannot check a revoke from computer %s: %s", caller.hostname, error)
        raise InternalError(
            "the server cannot read its stored passwords; see the server log"
        ) from None


async def history_for_computer(
    database: Database, key_path: Path, hostname: str
) -> tuple[Row, list[Row]]:
    """Return a computer and its stored passwords, decrypted, for the CLI.

    Rows are grouped by username, newest first. Raises AdminError for an
    unknown hostname or an unusable key file.
    """
    computer = await computers.get_by_hostname(database, hostname)
    rows = await database.fetch_all(
        "SELECT id, username, ciphertext, created, rule_id FROM computer_password "
        "WHERE computer_id = ? ORDER BY username, created DESC, id DESC",
        (computer["id"],),
    )
    if not rows:
        return computer, []

    try:
        key = passwordkey.load_key(key_path)
        history = [_decrypt_row(key, computer["id"], row) for row in rows]
    except PasswordKeyError as error:
        raise AdminError(str(error)) from None

    log.info(
        "stored passwords of computer %s displayed (%d entries)",
        computer["hostname"], len(history),
    )
    return computer, history


def _decrypt_row(key: bytes, computer_id: int, row: Row) -> Row:
    return {
        "username": row["username"],
        "password": passwordkey.decrypt(key, computer_id, row["username"], row["ciphertext"]),
        "created": row["created"],
        "rule_id": row["rule_id"],
    }
