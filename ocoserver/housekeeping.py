"""Housekeeping: a background task that keeps jobs and history in bounds.

A pass runs when the server starts and then every `housekeeping.interval`
seconds. It expires jobs whose container has ended and fails jobs that have
executed longer than their package's deadline. Then it purges succeeded
jobs, other finished jobs, logins, events and unused package uploads older
than their configured ages. Tests and embedding code call `run_pass`
directly with a chosen time.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from ocoserver import depot, timefmt
from ocoserver.appkeys import STATE
from ocoserver.config import HousekeepingConfig
from ocoserver.db import Database
from ocoserver.store import housekeeping as store
from ocoserver.store import jobs, uploads

log = logging.getLogger("ocoserver.housekeeping")


@dataclass(frozen=True)
class PassReport:
    """Rows each step of one pass changed."""

    expired_jobs: int = 0
    overdue_jobs: int = 0
    purged_succeeded_jobs: int = 0
    purged_failed_jobs: int = 0
    purged_logins: int = 0
    purged_events: int = 0
    purged_uploads: int = 0

    def changed(self) -> bool:
        return any(vars(self).values())


async def run_pass(
    database: Database,
    config: HousekeepingConfig,
    depot_dir: Path,
    now: datetime.datetime | None = None,
) -> PassReport:
    """Run one housekeeping pass as of `now` (default: the current time)."""
    moment = now or datetime.datetime.now(datetime.UTC)
    now_text = timefmt.to_text(moment)
    async with database.transaction() as connection:
        expired = await store.expire_ended_jobs(connection, now_text)
        overdue = await store.fail_overdue_jobs(connection, now_text)
    purged = await _purge(database, config, moment)
    uploads_purged = await _purge_uploads(database, config, depot_dir, moment)
    report = PassReport(expired, overdue, *purged, uploads_purged)
    _log_report(report)
    return report


async def _purge(
    database: Database, config: HousekeepingConfig, moment: datetime.datetime
) -> tuple[int, int, int, int]:
    """Delete old records; return the counts in PassReport's order."""
    succeeded = failed = logins = events = 0
    async with database.transaction() as connection:
        if cutoff := _cutoff(config.purge_succeeded_jobs_after, moment):
            succeeded = await store.purge_jobs(connection, (jobs.SUCCEEDED,), cutoff)
        if cutoff := _cutoff(config.purge_failed_jobs_after, moment):
            failed = await store.purge_jobs(
                connection, store.UNSUCCESSFUL_STATES, cutoff
            )
        if cutoff := _cutoff(config.purge_logins_after, moment):
            logins = await store.purge_logins(connection, cutoff)
        if cutoff := _cutoff(config.purge_events_after, moment):
            events = await store.purge_events(connection, cutoff)
    return succeeded, failed, logins, events


async def _purge_uploads(
    database: Database,
    config: HousekeepingConfig,
    depot_dir: Path,
    moment: datetime.datetime,
) -> int:
    """Delete uploaded payloads that no package used in time and return the count."""
    cutoff = _cutoff(config.purge_uploads_after, moment)
    if cutoff is None:
        return 0
    async with database.transaction() as connection:
        rows = await uploads.purge_unused(connection, cutoff)
    for row in rows:
        depot.delete_payload(depot_dir, row["file_name"])
        log.info(
            "deleted upload %s of API key %r: no package used it within %d seconds",
            row["id"], row["key_name"], config.purge_uploads_after,
        )
    return len(rows)


def _cutoff(age: int, moment: datetime.datetime) -> str | None:
    """Return the UTC text `age` seconds before `moment`, or None when age is 0."""
    if age == 0:
        return None
    return timefmt.to_text(moment - datetime.timedelta(seconds=age))


def _log_report(report: PassReport) -> None:
    if not report.changed():
        log.debug("housekeeping pass changed nothing")
        return
    log.info(
        "housekeeping pass: %d jobs expired, %d jobs failed past their deadline, "
        "purged %d succeeded jobs, %d failed or expired jobs, %d logins, %d events, "
        "%d unused uploads",
        report.expired_jobs,
        report.overdue_jobs,
        report.purged_succeeded_jobs,
        report.purged_failed_jobs,
        report.purged_logins,
        report.purged_events,
        report.purged_uploads,
    )


async def housekeeping_context(app: web.Application) -> AsyncIterator[None]:
    """Run housekeeping passes in the background while the application runs.

    Append it to `cleanup_ctx` after the context that opens the database,
    so that the task stops before the database closes. On cleanup a running
    pass is finished, not cancelled: a statement cancelled midway could
    leave its cursor open and keep the database from closing.
    """
    state = app[STATE]
    stopping = asyncio.Event()
    task = asyncio.create_task(
        _run_periodically(
            state.database, state.config.housekeeping, state.config.depot_path,
            stopping,
        )
    )
    yield
    stopping.set()
    await task


async def _run_periodically(
    database: Database,
    config: HousekeepingConfig,
    depot_dir: Path,
    stopping: asyncio.Event,
) -> None:
    log.info("housekeeping runs every %g seconds", config.interval)
    while not stopping.is_set():
        try:
            await run_pass(database, config, depot_dir)
        except Exception:
            # The loop must outlive a failed pass (a locked database file, a
            # full disk), so the next pass can succeed; the cause is logged.
            log.exception(
                "housekeeping pass failed; next try in %g seconds", config.interval
            )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), timeout=config.interval)
