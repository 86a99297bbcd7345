"""Counts of the rows a removal deletes with a computer, package or container.

The web console shows these on the confirmation page of a removal.
Each count follows an ON DELETE CASCADE in schema.sql, so it lists what
the DELETE takes along.
"""

from __future__ import annotations

from ocoserver.db import Database

# The inventory lists of a computer, each a table with a computer_id column.
_INVENTORY_TABLES = (
    "computer_network", "computer_screen", "computer_printer", "computer_partition",
    "computer_software", "computer_login", "computer_user", "computer_device",
    "computer_service",
)  # fmt: skip


async def computer_counts(database: Database, computer_id: int) -> dict[str, int]:
    """Return how many inventory entries, events, jobs and so on go with a computer."""
    inventory = " + ".join(
        f"(SELECT COUNT(*) FROM {table} WHERE computer_id = :id)"
        for table in _INVENTORY_TABLES
    )
    row = await database.fetch_one(
        f"SELECT {inventory} AS inventory, "
        "(SELECT COUNT(*) FROM event WHERE computer_id = :id) AS events, "
        "(SELECT COUNT(*) FROM job WHERE computer_id = :id) AS jobs, "
        "(SELECT COUNT(*) FROM rule_job WHERE computer_id = :id) AS rule_jobs, "
        "(SELECT COUNT(*) FROM computer_password WHERE computer_id = :id) "
        "AS passwords, "
        "(SELECT COUNT(*) FROM computer_group_member WHERE computer_id = :id) "
        "AS groups",
        {"id": computer_id},
    )
    assert row is not None
    return dict(row)


async def package_counts(database: Database, package_id: int) -> dict[str, int]:
    """Return how many jobs, rule jobs and installations go with a package."""
    row = await database.fetch_one(
        "SELECT (SELECT COUNT(*) FROM job WHERE package_id = :id) AS jobs, "
        "(SELECT COUNT(*) FROM rule_job WHERE package_id = :id) AS rule_jobs, "
        "(SELECT COUNT(*) FROM computer_package WHERE package_id = :id) "
        "AS installations, "
        "(SELECT COUNT(*) FROM package_group_member WHERE package_id = :id) "
        "AS groups",
        {"id": package_id},
    )
    assert row is not None
    return dict(row)
