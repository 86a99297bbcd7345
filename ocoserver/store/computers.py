"""Computers: identity, keys, check-ins and administration."""

from __future__ import annotations

import logging
import secrets
import string
import unicodedata
from typing import Any

import aiosqlite

from ocoserver import timefmt
from ocoserver.db import Database, Row, execute, fetch_all, fetch_one
from ocoserver.errors import AdminError

log = logging.getLogger("ocoserver.computers")

KEY_ALPHABET = string.ascii_lowercase + string.digits
# 32 characters, because the agent derives its AES-256 password key from the
# first 32 characters of its agent key.
KEY_LENGTH = 32

MAX_HOSTNAME_LENGTH = 255

_AGENT_COLUMNS = (
    "id, hostname, uid, agent_key, server_key, keys_confirmed, signed, "
    "agent_timestamp, last_update, refresh_requested"
)


def generate_key() -> str:
    return "".join(secrets.choice(KEY_ALPHABET) for _ in range(KEY_LENGTH))


def validate_hostname(hostname: str) -> str:
    """Return the hostname stripped, or raise AdminError naming the problem."""
    hostname = hostname.strip()
    if not hostname or len(hostname) > MAX_HOSTNAME_LENGTH:
        raise AdminError(
            f"invalid hostname {hostname!r}: use 1 to {MAX_HOSTNAME_LENGTH} characters"
        )
    if any(ch.isspace() or ord(ch) < 32 for ch in hostname):
        raise AdminError(
            f"invalid hostname {hostname!r}: spaces and control characters "
            "are not allowed"
        )
    # Format characters are invisible: a zero-width space makes a name look
    # empty, and a right-to-left override shows its letters reversed.
    if any(unicodedata.category(ch) == "Cf" for ch in hostname):
        raise AdminError(
            f"invalid hostname {hostname!r}: invisible format characters, such "
            "as U+200B or U+202E, are not allowed"
        )
    return hostname


async def find_by_uid(connection: aiosqlite.Connection, uid: str) -> Row | None:
    """Find the computer that stores this uid; the caller still checks its key."""
    # `uid <> ''` lets SQLite use the partial index on uid; with `uid = ?`
    # alone it scans every computer.
    return await fetch_one(
        connection,
        f"SELECT {_AGENT_COLUMNS} FROM computer WHERE uid = ? AND uid <> ''",
        (uid,),
    )


async def find_by_hostname(
    connection: aiosqlite.Connection, hostname: str
) -> Row | None:
    """Find a computer by hostname, ignoring ASCII case (the column's NOCASE)."""
    return await fetch_one(
        connection,
        f"SELECT {_AGENT_COLUMNS} FROM computer WHERE hostname = ?",
        (hostname,),
    )


async def set_uid(
    connection: aiosqlite.Connection, computer_id: int, uid: str
) -> Row | None:
    """Store the uid a computer reports, unless another computer has it.

    Returns that other computer's row (and changes nothing), or None once
    stored. The unique index computer_uid enforces the same rule.
    """
    holder = await fetch_one(
        connection,
        "SELECT id, hostname FROM computer WHERE uid = ? AND uid <> '' AND id <> ?",
        (uid, computer_id),
    )
    if holder is not None:
        return holder
    await connection.execute(
        "UPDATE computer SET uid = ? WHERE id = ?", (uid, computer_id)
    )
    return None


async def insert(
    connection: aiosqlite.Connection, hostname: str, uid: str = "", notes: str = ""
) -> int:
    return await execute(
        connection,
        "INSERT INTO computer (hostname, uid, notes, created) VALUES (?, ?, ?, ?)",
        (hostname, uid, notes, timefmt.now_text()),
    )


async def issue_keys(connection: aiosqlite.Connection, computer_id: int) -> None:
    """Store a fresh agent key and server key, not yet confirmed by the agent."""
    await connection.execute(
        "UPDATE computer SET agent_key = ?, server_key = ?, keys_confirmed = 0 "
        "WHERE id = ?",
        (generate_key(), generate_key(), computer_id),
    )


async def update_identity(
    connection: aiosqlite.Connection,
    computer_id: int,
    *,
    confirm_keys: bool,
    signed: bool,
    uid: str,
) -> None:
    """Record that the agent used its issued key, signed, or sent a new uid."""
    await connection.execute(
        "UPDATE computer SET keys_confirmed = MAX(keys_confirmed, :confirm), "
        "signed = MAX(signed, :signed), "
        "uid = CASE WHEN :uid <> '' THEN :uid ELSE uid END WHERE id = :id",
        {"confirm": int(confirm_keys), "signed": int(signed), "uid": uid,
         "id": computer_id},
    )


async def rename(
    connection: aiosqlite.Connection, computer_id: int, old: str, new: str
) -> bool:
    """Rename a computer whose agent reports a new hostname for the same uid.

    Returns False (and changes nothing) when another computer has that name.
    """
    taken = await fetch_one(
        connection,
        "SELECT id FROM computer WHERE hostname = ? AND id <> ?",
        (new, computer_id),
    )
    if taken is not None:
        log.warning(
            "computer %s (id %d) reports hostname %s, which computer id %d has; "
            "name kept",
            old, computer_id, new, taken["id"],
        )
        return False
    await connection.execute(
        "UPDATE computer SET hostname = ? WHERE id = ?", (new, computer_id)
    )
    log.info("computer id %d renamed from %s to %s", computer_id, old, new)
    return True


async def get_keys(connection: aiosqlite.Connection, computer_id: int) -> Row:
    row = await fetch_one(
        connection,
        f"SELECT {_AGENT_COLUMNS} FROM computer WHERE id = ?",
        (computer_id,),
    )
    assert row is not None
    return row


async def record_check_in(
    connection: aiosqlite.Connection, computer_id: int, values: dict[str, Any]
) -> None:
    """Store the hello's check-in time, remote address and reported values."""
    await connection.execute(
        "UPDATE computer SET last_seen = :last_seen, "
        "remote_address = :remote_address, agent_version = :agent_version, "
        "uptime = COALESCE(:uptime, uptime), "
        "battery_level = COALESCE(:battery_level, battery_level), "
        "battery_status = COALESCE(:battery_status, battery_status) "
        "WHERE id = :id",
        {**values, "id": computer_id, "last_seen": timefmt.now_text()},
    )


async def clear_refresh(connection: aiosqlite.Connection, computer_id: int) -> None:
    await connection.execute(
        "UPDATE computer SET refresh_requested = 0 WHERE id = ? "
        "AND refresh_requested <> 0",
        (computer_id,),
    )


# Administration


async def add(database: Database, hostname: str, notes: str = "") -> int:
    """Pre-register a computer; its agent receives keys on first contact."""
    hostname = validate_hostname(hostname)
    async with database.transaction() as connection:
        existing = await fetch_one(
            connection, "SELECT hostname FROM computer WHERE hostname = ?", (hostname,)
        )
        if existing is not None:
            raise AdminError(
                f"computer {existing['hostname']!r} already exists; "
                "use 'ocoserver computer show' to see it"
            )
        computer_id = await insert(connection, hostname, notes=notes)
    log.info("computer %s pre-registered (id %d)", hostname, computer_id)
    return computer_id


async def get_by_hostname(database: Database, hostname: str) -> Row:
    """Return a computer row by hostname (case-insensitive) or raise AdminError."""
    row = await database.fetch_one(
        "SELECT * FROM computer WHERE hostname = ?", (hostname.strip(),)
    )
    if row is None:
        raise AdminError(
            f"computer {hostname!r} not found; 'ocoserver computer list' shows "
            "the known hostnames"
        )
    return row


async def list_all(database: Database) -> list[Row]:
    return await database.fetch_all(
        "SELECT id, hostname, uid, os, os_version, agent_version, remote_address, "
        "last_seen, last_update, created, notes FROM computer ORDER BY hostname"
    )


async def remove(database: Database, hostname: str) -> Row:
    """Delete a computer with its inventory, jobs and events."""
    row = await get_by_hostname(database, hostname)
    async with database.transaction() as connection:
        await connection.execute("DELETE FROM computer WHERE id = ?", (row["id"],))
    log.info("computer %s (id %d) removed", row["hostname"], row["id"])
    return row


async def request_refresh(database: Database, hostname: str) -> Row:
    """Ask the computer's agent for a new inventory at its next check-in."""
    row = await get_by_hostname(database, hostname)
    async with database.transaction() as connection:
        await connection.execute(
            "UPDATE computer SET refresh_requested = 1 WHERE id = ?", (row["id"],)
        )
    log.info("inventory refresh requested for computer %s", row["hostname"])
    return row


async def reset_keys(database: Database, hostname: str) -> Row:
    """Return a computer to trust on first use: no keys, no signing history.

    Its next request with an empty key or the registration key receives new
    keys, as after `computer add`.
    """
    row = await get_by_hostname(database, hostname)
    async with database.transaction() as connection:
        await connection.execute(
            "UPDATE computer SET agent_key = '', server_key = '', keys_confirmed = 0, "
            "signed = 0, agent_timestamp = NULL WHERE id = ?",
            (row["id"],),
        )
        await connection.execute(
            "DELETE FROM seen_signature WHERE computer_id = ?", (row["id"],)
        )
    log.info("keys and request timestamp of computer %s reset", row["hostname"])
    return row


async def list_by_ids(
    connection: aiosqlite.Connection, ids: list[int]
) -> list[Row]:
    placeholders = ", ".join("?" for _ in ids)
    return await fetch_all(
        connection, f"SELECT id, hostname FROM computer WHERE id IN ({placeholders})", ids
    )
