"""SQL of the housekeeping pass: expire, fail overdue jobs, purge old records."""

from __future__ import annotations

import logging

import aiosqlite

from ocoserver.db import Row, fetch_all
from ocoserver.store import jobs

log = logging.getLogger("ocoserver.housekeeping")

# States whose jobs are purged after housekeeping.purge_failed_jobs_after:
# every terminal state other than succeeded.
UNSUCCESSFUL_STATES = (
    jobs.FAILED, jobs.EXPIRED, jobs.OS_INCOMPATIBLE, jobs.PACKAGE_CONFLICT,
    jobs.ALREADY_INSTALLED,
)  # fmt: skip

# The end time of a job, for purging: when it finished, else its last change.
_FINISHED = "COALESCE(execution_finished, last_update, created)"


async def expire_ended_jobs(connection: aiosqlite.Connection, now: str) -> int:
    """Mark active jobs whose container's end time has passed as expired."""
    rows = await fetch_all(
        connection,
        "SELECT j.id, j.computer_id, j.container_id, c.end_time FROM job j "
        "JOIN job_container c ON c.id = j.container_id "
        "WHERE j.state IN (0, 1, 2) AND c.end_time IS NOT NULL AND c.end_time <= ?",
        (now,),
    )
    for row in rows:
        note = (
            f"expired: job container {row['container_id']} ended at "
            f"{row['end_time']} UTC before the job finished"
        )
        await _finish(connection, row["id"], jobs.EXPIRED, note, now)
        log.info(
            "job %d of computer %d expired: %s", row["id"], row["computer_id"], note
        )
    return len(rows)


async def fail_overdue_jobs(connection: aiosqlite.Connection, now: str) -> int:
    """Fail executing jobs that have run longer than their package's deadline."""
    rows = await fetch_all(
        connection,
        "SELECT j.id, j.computer_id, j.container_id, j.execution_started, "
        "p.deadline, c.sequence_mode FROM job j "
        "JOIN package p ON p.id = j.package_id "
        "JOIN job_container c ON c.id = j.container_id "
        "WHERE j.state = 2 AND p.deadline IS NOT NULL "
        "AND datetime(j.execution_started, '+' || p.deadline || ' minutes') <= ?",
        (now,),
    )
    for row in rows:
        await _fail_overdue(connection, row, now)
    return len(rows)


async def _fail_overdue(connection: aiosqlite.Connection, row: Row, now: str) -> None:
    note = (
        f"failed: still executing {row['deadline']} minutes after it started at "
        f"{row['execution_started']} UTC (the package's deadline)"
    )
    await _finish(connection, row["id"], jobs.FAILED, note, now)
    log.info("job %d of computer %d %s", row["id"], row["computer_id"], note)
    if row["sequence_mode"] == 1:
        await jobs.abort_remaining(connection, row, now)


async def _finish(
    connection: aiosqlite.Connection, job_id: int, state: int, note: str, now: str
) -> None:
    # The note is appended, so the agent's output so far is kept.
    await connection.execute(
        "UPDATE job SET state = :state, execution_finished = :now, "
        "last_update = :now, message = CASE WHEN message = '' THEN :note "
        "ELSE message || char(10) || :note END WHERE id = :id",
        {"state": state, "now": now, "note": note, "id": job_id},
    )


async def purge_jobs(
    connection: aiosqlite.Connection, states: tuple[int, ...], cutoff: str
) -> int:
    """Delete jobs in the given terminal states that ended at or before `cutoff`.

    NOTE: job containers stay, even when the purge leaves them without jobs.
    """
    placeholders = ", ".join("?" for _ in states)
    cursor = await connection.execute(
        f"DELETE FROM job WHERE state IN ({placeholders}) AND {_FINISHED} <= ?",
        (*states, cutoff),
    )
    return cursor.rowcount


async def purge_logins(connection: aiosqlite.Connection, cutoff: str) -> int:
    """Delete logins at or before `cutoff`, except each computer's newest.

    The newest login is the `logins-since` of the hello response; without it
    the agent would send its whole login history again.
    """
    cursor = await connection.execute(
        "DELETE FROM computer_login WHERE timestamp <= :cutoff AND timestamp < "
        "(SELECT MAX(newest.timestamp) FROM computer_login newest "
        "WHERE newest.computer_id = computer_login.computer_id)",
        {"cutoff": cutoff},
    )
    return cursor.rowcount


async def purge_events(connection: aiosqlite.Connection, cutoff: str) -> int:
    """Delete events at or before `cutoff`, except the newest per computer and log.

    The newest event is the `since` of the hello's event rules; without it the
    agent would query its whole event log again.
    """
    cursor = await connection.execute(
        "DELETE FROM event WHERE timestamp <= :cutoff AND timestamp < "
        "(SELECT MAX(newest.timestamp) FROM event newest "
        "WHERE newest.computer_id = event.computer_id AND newest.log = event.log)",
        {"cutoff": cutoff},
    )
    return cursor.rowcount
