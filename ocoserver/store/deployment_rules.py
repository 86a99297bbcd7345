"""Deployment rules: every computer of a computer group gets the packages of a
package group. Their jobs live in ocoserver.store.rule_jobs."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import aiosqlite

from ocoserver import timefmt
from ocoserver.db import Database, Row, execute, fetch_one, id_from_text
from ocoserver.errors import AdminError
from ocoserver.store import groups, rule_jobs

log = logging.getLogger("ocoserver.deployment_rules")

_LIST_SQL = (
    "SELECT r.id, r.name, r.enabled, r.priority, r.sequence_mode, "
    "r.computer_group_id, cg.name AS computer_group, "
    "r.package_group_id, pg.name AS package_group, r.created, "
    "(SELECT COUNT(*) FROM rule_job j WHERE j.rule_id = r.id) AS jobs "
    "FROM deployment_rule r JOIN computer_group cg ON cg.id = r.computer_group_id "
    "JOIN package_group pg ON pg.id = r.package_group_id"
)


@dataclass(frozen=True)
class RuleSpec:
    name: str
    computer_group: str
    package_group: str
    priority: int = 0
    sequence_mode: int = 0


async def add(database: Database, spec: RuleSpec) -> int:
    """Create a rule, create its jobs at once, and return the rule's id."""
    name = spec.name.strip()
    if not name or name.isdigit():
        raise AdminError(
            f"invalid deployment rule name {spec.name!r}: give a name with at "
            "least one character that is not a digit"
        )
    async with database.transaction() as connection:
        if await _find(connection, name) is not None:
            raise AdminError(
                f"deployment rule {name!r} already exists; choose another name"
            )
        computer_group = await groups.resolve(
            connection, groups.COMPUTER_GROUPS, spec.computer_group
        )
        package_group = await groups.resolve(
            connection, groups.PACKAGE_GROUPS, spec.package_group
        )
        rule_id = await execute(
            connection,
            "INSERT INTO deployment_rule (name, computer_group_id, package_group_id, "
            "enabled, priority, sequence_mode, created) VALUES (?, ?, ?, 1, ?, ?, ?)",
            (
                name,
                computer_group["id"],
                package_group["id"],
                spec.priority,
                spec.sequence_mode,
                timefmt.now_text(),
            ),
        )
        await rule_jobs.sync(connection)
    log.info(
        "deployment rule %d %r created: computer group %d, package group %d",
        rule_id,
        name,
        computer_group["id"],
        package_group["id"],
    )
    return rule_id


async def _find(connection: aiosqlite.Connection, ref: str) -> Row | None:
    ref = ref.strip()
    if ref.isdigit():
        rule_id = id_from_text(ref)
        if rule_id is None:
            return None
        return await fetch_one(
            connection, "SELECT * FROM deployment_rule WHERE id = ?", (rule_id,)
        )
    return await fetch_one(
        connection, "SELECT * FROM deployment_rule WHERE name = ?", (ref,)
    )


async def _resolve(connection: aiosqlite.Connection, ref: str) -> Row:
    row = await _find(connection, ref)
    if row is None:
        raise AdminError(
            f"deployment rule {ref!r} not found; 'ocoserver deployment-rule list' "
            "shows the ids and names"
        )
    return row


async def list_all(database: Database) -> list[Row]:
    return await database.fetch_all(f"{_LIST_SQL} ORDER BY r.priority DESC, r.id")


async def show(database: Database, ref: str) -> tuple[Row, list[Row]]:
    """Return a rule and its jobs."""
    async with database.reader() as connection:
        rule = await _resolve(connection, ref)
        row = await fetch_one(connection, f"{_LIST_SQL} WHERE r.id = ?", (rule["id"],))
        assert row is not None
        return row, await rule_jobs.list_for_rule(connection, rule["id"])


async def set_enabled(database: Database, ref: str, enabled: bool) -> Row:
    """Enable or disable a rule; enabling creates the jobs it is missing."""
    async with database.transaction() as connection:
        rule = await _resolve(connection, ref)
        await connection.execute(
            "UPDATE deployment_rule SET enabled = ? WHERE id = ?",
            (int(enabled), rule["id"]),
        )
        await rule_jobs.sync(connection)
    log.info("deployment rule %d %s", rule["id"], "enabled" if enabled else "disabled")
    return rule


async def remove(database: Database, ref: str) -> Row:
    """Delete a rule together with its jobs."""
    async with database.transaction() as connection:
        rule = await _resolve(connection, ref)
        await connection.execute(
            "DELETE FROM deployment_rule WHERE id = ?", (rule["id"],)
        )
    log.info("deployment rule %d %r removed with its jobs", rule["id"], rule["name"])
    return rule
