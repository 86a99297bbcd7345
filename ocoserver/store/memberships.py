"""Changes to what a group covers: members, parents and group removal.

Every change runs in one transaction together with `rule_jobs.sync`, so
the jobs of deployment rules follow the groups at once: a computer that
joins a group gets the rule's jobs, and unsent jobs of a computer that
left are deleted.
"""

from __future__ import annotations

import logging

import aiosqlite

from ocoserver.db import Database, Row, fetch_one
from ocoserver.errors import AdminError
from ocoserver.store import groups, rule_jobs
from ocoserver.store.groups import COMPUTER_GROUPS, GroupKind

log = logging.getLogger("ocoserver.groups")


async def add_member(database: Database, kind: GroupKind, ref: str, member: str) -> Row:
    """Add a computer (hostname) or package (id) to a group; return the group."""
    async with database.transaction() as connection:
        group = await groups.resolve(connection, kind, ref)
        member_id = await _resolve_member(connection, kind, member)
        exists = await fetch_one(
            connection,
            f"SELECT 1 FROM {kind.member_table} WHERE group_id = ? "
            f"AND {kind.member_column} = ?",
            (group["id"], member_id),
        )
        if exists is not None:
            raise AdminError(f"{member!r} is already a member of {kind.label} {ref!r}")
        await _insert_member(connection, kind, group["id"], member_id)
        await rule_jobs.sync(connection)
    log.info("%s %d: member %s added", kind.label, group["id"], member)
    return group


async def _insert_member(
    connection: aiosqlite.Connection, kind: GroupKind, group_id: int, member_id: int
) -> None:
    if kind is COMPUTER_GROUPS:
        await connection.execute(
            "INSERT INTO computer_group_member (group_id, computer_id) VALUES (?, ?)",
            (group_id, member_id),
        )
        return
    # A new package goes after the group's current packages.
    await connection.execute(
        "INSERT INTO package_group_member (group_id, package_id, position) "
        "SELECT :group, :package, COALESCE(MAX(position), 0) + 1 "
        "FROM package_group_member WHERE group_id = :group",
        {"group": group_id, "package": member_id},
    )


async def remove_member(
    database: Database, kind: GroupKind, ref: str, member: str
) -> Row:
    """Remove a direct member from a group; return the group."""
    async with database.transaction() as connection:
        group = await groups.resolve(connection, kind, ref)
        member_id = await _resolve_member(connection, kind, member)
        cursor = await connection.execute(
            f"DELETE FROM {kind.member_table} WHERE group_id = ? "
            f"AND {kind.member_column} = ?",
            (group["id"], member_id),
        )
        if not cursor.rowcount:
            raise AdminError(
                f"{member!r} is not a direct member of {kind.label} {ref!r}; "
                f"'ocoserver {kind.command} show {ref}' lists the members"
            )
        await rule_jobs.sync(connection)
    log.info("%s %d: member %s removed", kind.label, group["id"], member)
    return group


async def _resolve_member(
    connection: aiosqlite.Connection, kind: GroupKind, member: str
) -> int:
    if kind is COMPUTER_GROUPS:
        row = await fetch_one(
            connection, "SELECT id FROM computer WHERE hostname = ?", (member.strip(),)
        )
        if row is None:
            raise AdminError(
                f"computer {member!r} not found; 'ocoserver computer list' shows "
                "the hostnames"
            )
        return int(row["id"])
    package_id = int(member) if member.strip().isdigit() else 0
    row = await fetch_one(
        connection, "SELECT id FROM package WHERE id = ?", (package_id,)
    )
    if row is None:
        raise AdminError(
            f"package {member!r} not found; 'ocoserver package list' shows the ids"
        )
    return int(row["id"])


async def move(
    database: Database, kind: GroupKind, ref: str, parent: str | None
) -> Row:
    """Give a group a new parent (None: top level); reject cycles."""
    async with database.transaction() as connection:
        group = await groups.resolve(connection, kind, ref)
        parent_id = None
        if parent is not None:
            parent_row = await groups.resolve(connection, kind, parent)
            parent_id = parent_row["id"]
            subtree = await groups.subtree_ids(connection, kind, group["id"])
            if parent_id in subtree:
                raise AdminError(_cycle_message(kind, group, parent_row))
        await connection.execute(
            f"UPDATE {kind.table} SET parent_id = ? WHERE id = ?",
            (parent_id, group["id"]),
        )
        await rule_jobs.sync(connection)
    log.info("%s %d moved below %s", kind.label, group["id"], parent_id or "top level")
    return group


def _cycle_message(kind: GroupKind, group: Row, parent: Row) -> str:
    name = group["name"]
    if parent["id"] == group["id"]:
        return f"{kind.label} {name!r} cannot be its own parent; choose another group"
    return (
        f"{kind.label} {parent['name']!r} (id {parent['id']}) is a subgroup of "
        f"{name!r}, so it cannot become its parent: that would make a cycle; "
        f"choose a group outside {name!r}"
    )


async def remove(database: Database, kind: GroupKind, ref: str) -> Row:
    """Delete a group without subgroups that no deployment rule uses."""
    async with database.transaction() as connection:
        group = await groups.resolve(connection, kind, ref)
        child = await fetch_one(
            connection,
            f"SELECT name FROM {kind.table} WHERE parent_id = ? ORDER BY id",
            (group["id"],),
        )
        if child is not None:
            raise AdminError(
                f"{kind.label} {group['name']!r} has subgroups such as "
                f"{child['name']!r}; remove them or move them with "
                f"'ocoserver {kind.command} move' first"
            )
        await _reject_if_used_by_rule(connection, kind, group)
        await connection.execute(
            f"DELETE FROM {kind.table} WHERE id = ?", (group["id"],)
        )
    log.info("%s %d %r removed", kind.label, group["id"], group["name"])
    return group


async def _reject_if_used_by_rule(
    connection: aiosqlite.Connection, kind: GroupKind, group: Row
) -> None:
    column = "computer_group_id" if kind is COMPUTER_GROUPS else "package_group_id"
    rule = await fetch_one(
        connection,
        f"SELECT id, name FROM deployment_rule WHERE {column} = ? ORDER BY id",
        (group["id"],),
    )
    if rule is not None:
        raise AdminError(
            f"{kind.label} {group['name']!r} is used by deployment rule "
            f"{rule['name']!r} (id {rule['id']}); remove the rule first"
        )
