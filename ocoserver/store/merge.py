"""Merging two records of one machine into one computer.

A machine gets a second record when it was registered again under a new
hostname, or re-imaged and registered before its old record was removed.
`merge` keeps the target record, whose keys the agent uses, and moves the
history of the source record onto it before deleting the source:

- moved: jobs, events, logins, installed-package records, stored local
  admin passwords and password-rule memberships;
- kept from the target: hostname, uid, keys, signing state, the current
  inventory (hardware, software, networks and the other lists) and the
  check-in times;
- dropped: the source's current inventory, its unfinished jobs that repeat
  a job of the target (same job container, package and direction), and
  rows that would duplicate one of the target's events or logins.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import aiosqlite

from ocoserver.db import Database, Row
from ocoserver.errors import AdminError
from ocoserver.store.computers import get_by_hostname

log = logging.getLogger("ocoserver.computers")


@dataclass(frozen=True)
class MergeResult:
    source: Row
    target: Row
    jobs: int
    events: int
    passwords: int


async def merge(
    database: Database, source_hostname: str, target_hostname: str
) -> MergeResult:
    """Move the history of computer `source_hostname` onto the target, delete it."""
    source = await get_by_hostname(database, source_hostname)
    target = await get_by_hostname(database, target_hostname)
    if source["id"] == target["id"]:
        raise AdminError(
            f"source and target are both computer {source['hostname']!r}; "
            "name two different computers"
        )
    ids = {"source": source["id"], "target": target["id"]}
    async with database.transaction() as connection:
        jobs = await _move_jobs(connection, ids)
        events = await _move_unique_rows(connection, "event", ids)
        await _move_unique_rows(connection, "computer_login", ids)
        # The target's own record of an installed package is the newer one.
        await _move_unique_rows(connection, "computer_package", ids)
        passwords = await _move_passwords(connection, ids)
        await _merge_notes(connection, source, target)
        await connection.execute("DELETE FROM computer WHERE id = :source", ids)
    log.info(
        "computer %s (id %d) merged into %s (id %d): %d jobs, %d events and "
        "%d passwords moved; %s removed",
        source["hostname"], source["id"], target["hostname"], target["id"],
        jobs, events, passwords, source["hostname"],
    )
    return MergeResult(source, target, jobs, events, passwords)


async def _move_jobs(connection: aiosqlite.Connection, ids: dict[str, int]) -> int:
    # An unfinished job that the target also has would install twice.
    await connection.execute(
        "DELETE FROM job WHERE computer_id = :source AND state IN (0, 1, 2) "
        "AND EXISTS (SELECT 1 FROM job t WHERE t.computer_id = :target "
        "AND t.container_id = job.container_id AND t.package_id = job.package_id "
        "AND t.is_uninstall = job.is_uninstall)",
        ids,
    )
    cursor = await connection.execute(
        "UPDATE job SET computer_id = :target WHERE computer_id = :source", ids
    )
    return cursor.rowcount


async def _move_unique_rows(
    connection: aiosqlite.Connection, table: str, ids: dict[str, int]
) -> int:
    """Move rows of a table with a UNIQUE key that includes computer_id.

    `table` is a fixed table name from this module, never input. A row
    that the target already has stays with the source and is deleted with
    it.
    """
    cursor = await connection.execute(
        f"UPDATE OR IGNORE {table} SET computer_id = :target "
        "WHERE computer_id = :source",
        ids,
    )
    return cursor.rowcount


async def _move_passwords(
    connection: aiosqlite.Connection, ids: dict[str, int]
) -> int:
    await connection.execute(
        "INSERT OR IGNORE INTO password_rule_computer (rule_id, computer_id) "
        "SELECT rule_id, :target FROM password_rule_computer "
        "WHERE computer_id = :source",
        ids,
    )
    cursor = await connection.execute(
        "UPDATE computer_password SET computer_id = :target "
        "WHERE computer_id = :source",
        ids,
    )
    return cursor.rowcount


async def _merge_notes(
    connection: aiosqlite.Connection, source: Row, target: Row
) -> None:
    if not source["notes"]:
        return
    notes = "\n".join(text for text in (target["notes"], source["notes"]) if text)
    await connection.execute(
        "UPDATE computer SET notes = ? WHERE id = ?", (notes, target["id"])
    )
