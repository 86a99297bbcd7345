"""Job container administration: list, enable, disable, remove, renew."""

from __future__ import annotations

import logging

from ocoserver import timefmt
from ocoserver.db import Database, Row
from ocoserver.store import jobs

log = logging.getLogger("ocoserver.jobs")

_LIST_SQL = (
    "SELECT c.id, c.name, c.enabled, c.start_time, c.end_time, c.priority, "
    "c.sequence_mode, c.upgrade, c.created, COUNT(j.id) AS jobs, "
    "COALESCE(SUM(j.state = 0), 0) AS waiting, "
    "COALESCE(SUM(j.state IN (1, 2)), 0) AS running, "
    "COALESCE(SUM(j.state = 3), 0) AS succeeded, "
    "COALESCE(SUM(j.state = -1), 0) AS failed, "
    "COALESCE(SUM(j.state < -1), 0) AS not_sent "
    "FROM job_container c LEFT JOIN job j ON j.container_id = c.id"
)


async def list_all(database: Database) -> list[Row]:
    """Return every container with its job counts by state."""
    return await database.fetch_all(f"{_LIST_SQL} GROUP BY c.id ORDER BY c.id")


async def get_summary(database: Database, container_id: int) -> Row:
    """Return one container with its job counts, or raise AdminError."""
    await jobs.get_container(database, container_id)
    row = await database.fetch_one(
        f"{_LIST_SQL} WHERE c.id = ? GROUP BY c.id", (container_id,)
    )
    assert row is not None
    return row


async def set_enabled(database: Database, container_id: int, enabled: bool) -> Row:
    """Enable or disable a container; agents receive jobs of enabled ones only."""
    container = await jobs.get_container(database, container_id)
    async with database.transaction() as connection:
        await connection.execute(
            "UPDATE job_container SET enabled = ? WHERE id = ?",
            (int(enabled), container_id),
        )
    log.info("job container %d %s", container_id, "enabled" if enabled else "disabled")
    return container


async def remove(database: Database, container_id: int) -> Row:
    """Delete a container with all its jobs."""
    container = await jobs.get_container(database, container_id)
    async with database.transaction() as connection:
        await connection.execute(
            "DELETE FROM job_container WHERE id = ?", (container_id,)
        )
    log.info(
        "job container %d %r removed with its jobs", container_id, container["name"]
    )
    return container


async def renew_failed(database: Database, container_id: int) -> int:
    """Reset the container's failed jobs to waiting; return how many.

    The jobs keep their ids and order, and lose the return code, output,
    progress and times of the failed run, so agents run them again at the
    next check-in.
    """
    await jobs.get_container(database, container_id)
    async with database.transaction() as connection:
        cursor = await connection.execute(
            "UPDATE job SET state = 0, return_code = NULL, message = '', "
            "download_progress = NULL, download_started = NULL, "
            "execution_started = NULL, execution_finished = NULL, last_update = ? "
            "WHERE container_id = ? AND state = -1",
            (timefmt.now_text(), container_id),
        )
        count = cursor.rowcount
    log.info("job container %d: %d failed jobs renewed", container_id, count)
    return count
