"""Read-only views for the client API: computers and packages by id, group
contents one level deep, installations, and jobs with the ids of their
computer, package and container."""

from __future__ import annotations

from ocoserver.db import Database, Row
from ocoserver.errors import AdminError
from ocoserver.store import jobs
from ocoserver.store.groups import COMPUTER_GROUPS, GroupKind

_JOB_COLUMNS = (
    "j.id, j.container_id AS job_container_id, c.name AS job_container_name, "
    "j.computer_id, k.hostname AS computer_hostname, j.package_id, "
    "p.family AS package_family_name, p.version AS package_version, j.procedure, "
    "j.is_uninstall, j.sequence, j.state, j.download_progress, j.return_code, "
    "j.message, j.created, j.download_started, j.execution_started, "
    "j.execution_finished, j.last_update"
)
_JOB_JOINS = (
    "FROM job j JOIN job_container c ON c.id = j.container_id "
    "JOIN computer k ON k.id = j.computer_id JOIN package p ON p.id = j.package_id"
)
_ACTIVE = ", ".join(str(state) for state in jobs.ACTIVE_STATES)

# Computer columns never sent over the client API: the agent's credentials.
SECRET_COLUMNS = ("agent_key", "server_key")


async def get_computer(database: Database, computer_id: int) -> Row:
    """Return a computer row without its keys, or raise AdminError."""
    row = await database.fetch_one(
        "SELECT * FROM computer WHERE id = ?", (computer_id,)
    )
    if row is None:
        raise AdminError(
            f"computer {computer_id} not found; 'ocoserver computer list' shows "
            "the computers"
        )
    return {
        column: value for column, value in row.items() if column not in SECRET_COLUMNS
    }


async def container_jobs(database: Database, container_id: int) -> list[Row]:
    return await database.fetch_all(
        f"SELECT {_JOB_COLUMNS} {_JOB_JOINS} WHERE j.container_id = ? "
        "ORDER BY k.hostname, j.sequence, j.id",
        (container_id,),
    )


async def pending_jobs_of_computer(database: Database, computer_id: int) -> list[Row]:
    return await database.fetch_all(
        f"SELECT {_JOB_COLUMNS} {_JOB_JOINS} WHERE j.computer_id = ? "
        f"AND j.state IN ({_ACTIVE}) ORDER BY j.container_id, j.sequence, j.id",
        (computer_id,),
    )


async def pending_jobs_of_package(database: Database, package_id: int) -> list[Row]:
    return await database.fetch_all(
        f"SELECT {_JOB_COLUMNS} {_JOB_JOINS} WHERE j.package_id = ? "
        f"AND j.state IN ({_ACTIVE}) ORDER BY j.container_id, k.hostname, j.id",
        (package_id,),
    )


async def installations(database: Database, package_id: int) -> list[Row]:
    """Return the computers that have the package recorded as installed."""
    return await database.fetch_all(
        "SELECT cp.computer_id, k.hostname AS computer_hostname, cp.installed, "
        "cp.job_id FROM computer_package cp JOIN computer k ON k.id = cp.computer_id "
        "WHERE cp.package_id = ? ORDER BY k.hostname",
        (package_id,),
    )


async def groups_of_member(
    database: Database, kind: GroupKind, member_id: int
) -> list[Row]:
    """Return the groups that list a computer or package as a direct member."""
    return await database.fetch_all(
        f"SELECT g.id, g.name, g.parent_id FROM {kind.table} g "
        f"JOIN {kind.member_table} m ON m.group_id = g.id "
        f"WHERE m.{kind.member_column} = ? ORDER BY g.name",
        (member_id,),
    )


async def child_groups(
    database: Database, kind: GroupKind, parent_id: int | None
) -> list[Row]:
    """Return the groups directly below `parent_id`, or the top-level ones."""
    return await database.fetch_all(
        f"SELECT id, name, parent_id FROM {kind.table} "
        "WHERE parent_id IS :parent ORDER BY name",
        {"parent": parent_id},
    )


async def get_group(database: Database, kind: GroupKind, group_id: int) -> Row:
    row = await database.fetch_one(
        f"SELECT id, name, parent_id FROM {kind.table} WHERE id = ?", (group_id,)
    )
    if row is None:
        raise AdminError(
            f"{kind.label} {group_id} not found; 'ocoserver {kind.command} list' "
            "shows the ids"
        )
    return row


async def direct_members(
    database: Database, kind: GroupKind, group_id: int
) -> list[Row]:
    """Return a group's own members, without those of its subgroups."""
    if kind is COMPUTER_GROUPS:
        return await database.fetch_all(
            "SELECT k.id, k.hostname, k.os, k.os_version, k.agent_version, "
            "k.last_seen, k.last_update, k.notes FROM computer k "
            "JOIN computer_group_member m ON m.computer_id = k.id "
            "WHERE m.group_id = ? ORDER BY k.hostname",
            (group_id,),
        )
    return await database.fetch_all(
        "SELECT p.* FROM package p JOIN package_group_member m ON m.package_id = p.id "
        "WHERE m.group_id = ? ORDER BY m.position, p.id",
        (group_id,),
    )
