"""Computer groups and package groups: names, nesting and member expansion.

Both kinds work alike, so one `GroupKind` value per kind carries its table
names. A group may have a parent, and the members of a group include the
members of every subgroup below it. Changes that alter which computers or
packages a group covers live in ocoserver.store.memberships, because they
also update the jobs of deployment rules.

Package order inside a group: the group's own packages by position (the
order in which they were added), then the packages of each subgroup in
subgroup id order, each subgroup expanded the same way. A package reached
twice keeps its first place.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import aiosqlite

from ocoserver import timefmt
from ocoserver.db import Database, Row, execute, fetch_all, fetch_one, id_from_text
from ocoserver.errors import AdminError

log = logging.getLogger("ocoserver.groups")

MAX_NAME_LENGTH = 200


@dataclass(frozen=True)
class GroupKind:
    """The tables and wording of one kind of group."""

    label: str
    table: str
    member_table: str
    member_column: str
    command: str


COMPUTER_GROUPS = GroupKind(
    "computer group", "computer_group", "computer_group_member", "computer_id",
    "computer-group",
)  # fmt: skip
PACKAGE_GROUPS = GroupKind(
    "package group", "package_group", "package_group_member", "package_id",
    "package-group",
)  # fmt: skip

# The SQL below formats table and column names from the two GroupKind
# constants above only, never from input; values are always bound.


def validate_name(kind: GroupKind, name: str) -> str:
    """Return the name stripped, or raise AdminError naming the problem."""
    name = name.strip()
    if not name or len(name) > MAX_NAME_LENGTH:
        raise AdminError(
            f"invalid {kind.label} name {name!r}: use 1 to {MAX_NAME_LENGTH} characters"
        )
    if name.isdigit():
        # Commands take an id or a name; an all-digit name would read as an id.
        raise AdminError(
            f"invalid {kind.label} name {name!r}: a name needs at least one "
            "character that is not a digit"
        )
    return name


async def find(
    connection: aiosqlite.Connection, kind: GroupKind, ref: str
) -> Row | None:
    """Find a group by id (all digits) or by name (case-insensitive)."""
    ref = ref.strip()
    if ref.isdigit():
        group_id = id_from_text(ref)
        if group_id is None:
            return None
        sql = f"SELECT * FROM {kind.table} WHERE id = ?"
        return await fetch_one(connection, sql, (group_id,))
    sql = f"SELECT * FROM {kind.table} WHERE name = ?"
    return await fetch_one(connection, sql, (ref,))


async def resolve(connection: aiosqlite.Connection, kind: GroupKind, ref: str) -> Row:
    """Return the group that `ref` names, or raise AdminError."""
    row = await find(connection, kind, ref)
    if row is None:
        raise AdminError(
            f"{kind.label} {ref!r} not found; 'ocoserver {kind.command} list' "
            "shows the ids and names"
        )
    return row


async def add(
    database: Database, kind: GroupKind, name: str, parent: str | None
) -> int:
    """Create a group, optionally below a parent group, and return its id."""
    name = validate_name(kind, name)
    async with database.transaction() as connection:
        if await find(connection, kind, name) is not None:
            raise AdminError(
                f"{kind.label} {name!r} already exists; choose another name"
            )
        parent_id = None
        if parent is not None:
            parent_id = (await resolve(connection, kind, parent))["id"]
        group_id = await execute(
            connection,
            f"INSERT INTO {kind.table} (name, parent_id, created) VALUES (?, ?, ?)",
            (name, parent_id, timefmt.now_text()),
        )
    log.info("%s %d %r created (parent %s)", kind.label, group_id, name, parent_id)
    return group_id


async def list_all(database: Database, kind: GroupKind) -> list[Row]:
    """Return every group with its parent and its direct member count."""
    return await database.fetch_all(
        f"SELECT g.id, g.name, g.parent_id, p.name AS parent, "
        f"(SELECT COUNT(*) FROM {kind.member_table} m WHERE m.group_id = g.id) "
        f"AS members, g.created FROM {kind.table} g "
        f"LEFT JOIN {kind.table} p ON p.id = g.parent_id ORDER BY g.name"
    )


async def subtree_ids(
    connection: aiosqlite.Connection, kind: GroupKind, group_id: int
) -> list[int]:
    """Return the group's id and the ids of all groups below it."""
    rows = await fetch_all(
        connection,
        f"WITH RECURSIVE tree (id) AS (SELECT ? UNION "
        f"SELECT g.id FROM {kind.table} g JOIN tree t ON g.parent_id = t.id) "
        "SELECT id FROM tree ORDER BY id",
        (group_id,),
    )
    return [row["id"] for row in rows]


async def computer_ids(connection: aiosqlite.Connection, group_id: int) -> list[int]:
    """Return the ids of the computers in a computer group and its subgroups."""
    rows = await fetch_all(
        connection,
        "WITH RECURSIVE tree (id) AS (SELECT ? UNION "
        "SELECT g.id FROM computer_group g JOIN tree t ON g.parent_id = t.id) "
        "SELECT DISTINCT m.computer_id FROM computer_group_member m "
        "JOIN tree t ON t.id = m.group_id ORDER BY m.computer_id",
        (group_id,),
    )
    return [row["computer_id"] for row in rows]


async def package_ids(connection: aiosqlite.Connection, group_id: int) -> list[int]:
    """Return the package ids of a package group in deployment order.

    The order is described in the module docstring. The walk keeps a set of
    visited groups, so even a damaged parent chain cannot loop forever.
    """
    ordered: dict[int, None] = {}
    visited: set[int] = set()
    stack = [group_id]
    while stack:
        current = stack.pop()
        if current in visited:
            continue
        visited.add(current)
        for package_id in await _own_package_ids(connection, current):
            ordered.setdefault(package_id, None)
        children = await fetch_all(
            connection,
            "SELECT id FROM package_group WHERE parent_id = ? ORDER BY id",
            (current,),
        )
        # Reversed, so that the stack pops the lowest id first.
        stack.extend(row["id"] for row in reversed(children))
    return list(ordered)


async def _own_package_ids(
    connection: aiosqlite.Connection, group_id: int
) -> list[int]:
    rows = await fetch_all(
        connection,
        "SELECT package_id FROM package_group_member WHERE group_id = ? "
        "ORDER BY position, package_id",
        (group_id,),
    )
    return [row["package_id"] for row in rows]


async def members(
    database: Database, kind: GroupKind, ref: str
) -> tuple[Row, list[Row]]:
    """Return a group and its members, including those of its subgroups."""
    async with database.reader() as connection:
        group = await resolve(connection, kind, ref)
        if kind is COMPUTER_GROUPS:
            ids = await computer_ids(connection, group["id"])
            rows = await _computer_rows(connection, ids)
        else:
            ids = await package_ids(connection, group["id"])
            rows = await _package_rows(connection, ids)
    return group, rows


async def _computer_rows(connection: aiosqlite.Connection, ids: list[int]) -> list[Row]:
    rows = []
    for computer_id in ids:
        row = await fetch_one(
            connection, "SELECT id, hostname FROM computer WHERE id = ?", (computer_id,)
        )
        if row is not None:
            rows.append(row)
    return rows


async def _package_rows(connection: aiosqlite.Connection, ids: list[int]) -> list[Row]:
    rows = []
    for package_id in ids:
        row = await fetch_one(
            connection,
            "SELECT id, family AS name, version FROM package WHERE id = ?",
            (package_id,),
        )
        if row is not None:
            rows.append(row)
    return rows


async def expand(database: Database, kind: GroupKind, ref: str) -> list[int]:
    """Return the member ids of the group `ref` names, with its subgroups'.

    Computer ids come sorted; package ids in deployment order.
    """
    async with database.reader() as connection:
        group = await resolve(connection, kind, ref)
        if kind is COMPUTER_GROUPS:
            return await computer_ids(connection, group["id"])
        return await package_ids(connection, group["id"])
