"""Targets of a deployment: packages and computers given directly or by group.

Packages keep the order given, a package group standing for its packages in
group order; a package met again keeps its first place. Computers merge the
same way. The CLI and the client API both resolve their targets here.
"""

from __future__ import annotations

from ocoserver.db import Database
from ocoserver.errors import AdminError
from ocoserver.store import groups, packages

# An item of a package list: ("package", package id) or ("group", id or name).
PackageItem = tuple[str, int | str]


async def package_ids(database: Database, items: list[PackageItem]) -> list[int]:
    """Return the package ids of `items` in order, each once."""
    ordered: dict[int, None] = {}
    for kind, value in items:
        if kind == "package":
            await packages.get(database, int(value))
            ids = [int(value)]
        else:
            ids = await groups.expand(database, groups.PACKAGE_GROUPS, str(value))
            if not ids:
                raise AdminError(
                    f"package group {str(value)!r} has no packages; add some with "
                    "'ocoserver package-group add-member'"
                )
        for package_id in ids:
            ordered.setdefault(package_id, None)
    return list(ordered)


async def computer_ids(
    database: Database, direct_ids: list[int], group_refs: list[str]
) -> list[int]:
    """Return the given computer ids followed by those of the groups, each once."""
    ordered = dict.fromkeys(direct_ids)
    for ref in group_refs:
        ids = await groups.expand(database, groups.COMPUTER_GROUPS, ref)
        if not ids:
            raise AdminError(
                f"computer group {ref!r} has no computers; add some with "
                "'ocoserver computer-group add-member'"
            )
        ordered.update(dict.fromkeys(ids))
    return list(ordered)
