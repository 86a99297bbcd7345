"""Job containers and jobs: creation, pending-job selection, state updates."""

from __future__ import annotations

import datetime
import logging
from dataclasses import dataclass, field
from typing import Any

import aiosqlite

from ocoserver import schedule, timefmt
from ocoserver.db import Database, Row, execute, fetch_all, fetch_one
from ocoserver.errors import AdminError, InvalidParams, Unauthorized

log = logging.getLogger("ocoserver.jobs")

# Stored job states.
WAITING = 0
DOWNLOADING = 1
EXECUTING = 2
SUCCEEDED = 3
FAILED = -1
EXPIRED = -2
OS_INCOMPATIBLE = -3
PACKAGE_CONFLICT = -4
ALREADY_INSTALLED = -5

STATE_NAMES = {
    WAITING: "waiting",
    DOWNLOADING: "downloading",
    EXECUTING: "executing",
    SUCCEEDED: "succeeded",
    FAILED: "failed",
    EXPIRED: "expired",
    OS_INCOMPATIBLE: "os incompatible",
    PACKAGE_CONFLICT: "package conflict",
    ALREADY_INSTALLED: "already installed",
}
ACTIVE_STATES = (WAITING, DOWNLOADING, EXECUTING)

# States an agent reports in oco.agent.update_job_state.
AGENT_ERROR = -1
AGENT_DOWNLOADING = 1
AGENT_EXECUTING = 2
AGENT_FINISHED = 3

# The agent's return code for an exception inside the agent itself.
AGENT_EXCEPTION_CODE = -9999


@dataclass(frozen=True)
class Deployment:
    name: str
    package_ids: list[int]
    computer_ids: list[int]
    start_time: str
    end_time: str | None = None
    priority: int = 0
    sequence_mode: int = 0
    # Canonical texts from schedule.format_time_frame and format_ip_range.
    time_frames: tuple[str, ...] = ()
    ip_ranges: tuple[str, ...] = ()


async def create_container(database: Database, deployment: Deployment) -> int:
    """Create a job container with one job per computer and package, in order."""
    if not deployment.name.strip():
        raise AdminError("deployment name is empty: give --name")
    if deployment.end_time is not None and deployment.end_time <= deployment.start_time:
        raise AdminError(
            f"end time {deployment.end_time} is not after start time "
            f"{deployment.start_time}; give a later --end"
        )
    now = timefmt.now_text()
    async with database.transaction() as connection:
        container_id = await execute(
            connection,
            "INSERT INTO job_container (name, enabled, start_time, end_time, "
            "priority, sequence_mode, created, time_frames, ip_ranges) "
            "VALUES (?, 1, ?, ?, ?, ?, ?, ?, ?)",
            (deployment.name.strip(), deployment.start_time, deployment.end_time,
             deployment.priority, deployment.sequence_mode, now,
             schedule.TIME_FRAME_SEPARATOR.join(deployment.time_frames),
             schedule.IP_RANGE_SEPARATOR.join(deployment.ip_ranges)),
        )
        jobs = []
        for computer_id in deployment.computer_ids:
            for sequence, package_id in enumerate(deployment.package_ids, start=1):
                package = await fetch_one(
                    connection,
                    "SELECT install_procedure FROM package WHERE id = ?",
                    (package_id,),
                )
                if package is None:
                    raise AdminError(
                        f"package {package_id} not found; 'ocoserver package list' "
                        "shows the ids"
                    )
                jobs.append((container_id, computer_id, package_id,
                             package["install_procedure"], sequence, now))
        await connection.executemany(
            "INSERT INTO job (container_id, computer_id, package_id, procedure, "
            "sequence, created) VALUES (?, ?, ?, ?, ?, ?)",
            jobs,
        )
    log.info(
        "job container %d %r created with %d jobs", container_id, deployment.name,
        len(jobs),
    )
    return container_id


@dataclass(frozen=True)
class Delivery:
    """The facts of one request that decide which pending jobs it receives."""

    # An aware datetime; tests pass chosen times instead of waiting for them.
    now: datetime.datetime = field(
        default_factory=lambda: datetime.datetime.now(datetime.UTC)
    )
    # The agent's address from client_address(); None fails every IP range.
    address: str | None = None
    # agent.max_concurrent_downloads (0: no limit) and agent.download_timeout.
    max_concurrent_downloads: int = 0
    download_timeout: float = 600.0

    @property
    def now_text(self) -> str:
        return timefmt.to_text(self.now)


async def pending_for_computer(
    connection: aiosqlite.Connection,
    computer_id: int,
    delivery: Delivery | None = None,
) -> list[Row]:
    """Return the computer's pending jobs in execution order.

    Pending: waiting, downloading or executing, in an enabled container whose
    start/end window contains the current time, and admitted by the
    container's conditions (see `admit_candidates`). Order: container
    priority (highest first), container creation, then the job's sequence.
    With a download cap in `delivery`, `connection` must be able to write,
    because handing out a download job reserves a slot.
    """
    delivery = delivery or Delivery()
    candidates = await _candidate_jobs(connection, computer_id, delivery.now_text)
    admitted = admit_candidates(candidates, delivery)
    return await withhold_capped_downloads(connection, computer_id, admitted, delivery)


async def _candidate_jobs(
    connection: aiosqlite.Connection, computer_id: int, now_text: str
) -> list[Row]:
    return await fetch_all(
        connection,
        "SELECT j.id, j.container_id, j.package_id, j.procedure, j.state, "
        "c.sequence_mode, c.time_frames, c.ip_ranges, "
        "p.file_name, p.post_action, p.post_action_timeout "
        "FROM job j JOIN job_container c ON c.id = j.container_id "
        "JOIN package p ON p.id = j.package_id "
        "WHERE j.computer_id = :computer AND j.state IN (0, 1, 2) "
        "AND c.enabled = 1 AND c.start_time <= :now "
        "AND (c.end_time IS NULL OR c.end_time > :now) "
        "ORDER BY c.priority DESC, c.created, c.id, j.sequence, j.id",
        {"computer": computer_id, "now": now_text},
    )


def admit_candidates(rows: list[Row], delivery: Delivery) -> list[Row]:
    """Keep the jobs whose container's IP ranges and time frames admit the request.

    IP ranges apply to every job. Time frames decide only when a waiting job
    starts: a job the agent is already downloading or executing goes on.
    """
    admitted = []
    for row in rows:
        if not schedule.in_ip_ranges(row["ip_ranges"], delivery.address):
            continue
        if row["state"] == WAITING and not schedule.in_time_frames(
            row["time_frames"], delivery.now
        ):
            continue
        admitted.append(row)
    return admitted


async def withhold_capped_downloads(
    connection: aiosqlite.Connection,
    computer_id: int,
    rows: list[Row],
    delivery: Delivery,
) -> list[Row]:
    """Hold back waiting download jobs while other computers fill the download cap.

    A held-back job's later jobs in the same container are held back too,
    so that the container's sequence is kept. Jobs handed out with their
    download are marked as offered, which reserves a slot until the agent
    reports progress or `download_timeout` passes.
    """
    cap = delivery.max_concurrent_downloads
    waiting = [row for row in rows if row["state"] == WAITING and row["file_name"]]
    if cap == 0 or not waiting:
        return rows
    cutoff = timefmt.to_text(
        delivery.now - datetime.timedelta(seconds=delivery.download_timeout)
    )
    busy = await count_downloading_computers(
        connection, computer_id, cutoff
    )
    if busy >= cap:
        log.debug(
            "computer %d waits for a download slot: %d of %d in use",
            computer_id, busy, cap,
        )
        return _without_download_jobs(rows)
    await mark_offered(
        connection, [row["id"] for row in waiting], delivery.now_text
    )
    return rows


async def count_downloading_computers(
    connection: aiosqlite.Connection, computer_id: int, cutoff: str
) -> int:
    """Count other computers that hold a download slot since `cutoff`.

    A slot is held by a job reported as downloading, or by a waiting job
    offered with its download, whose last activity is after `cutoff`.
    """
    row = await fetch_one(
        connection,
        "SELECT COUNT(DISTINCT j.computer_id) AS busy FROM job j "
        "JOIN package p ON p.id = j.package_id "
        "WHERE j.state IN (0, 1) AND j.computer_id <> :computer "
        "AND p.file_name IS NOT NULL AND CASE j.state "
        "WHEN 1 THEN COALESCE(j.last_update, j.download_started) "
        "ELSE j.offered END > :cutoff",
        {"computer": computer_id, "cutoff": cutoff},
    )
    assert row is not None
    return int(row["busy"])


async def mark_offered(
    connection: aiosqlite.Connection, job_ids: list[int], now_text: str
) -> None:
    await connection.executemany(
        "UPDATE job SET offered = ? WHERE id = ?",
        [(now_text, job_id) for job_id in job_ids],
    )


def _without_download_jobs(rows: list[Row]) -> list[Row]:
    held_containers: set[int] = set()
    kept = []
    for row in rows:
        if row["container_id"] in held_containers:
            continue
        if row["state"] == WAITING and row["file_name"]:
            held_containers.add(row["container_id"])
            continue
        kept.append(row)
    return kept


def to_agent_job(row: Row) -> dict[str, Any]:
    """Build one `software-jobs` entry of the hello response."""
    timeout = row["post_action_timeout"]
    action = row["post_action"]
    return {
        "id": row["id"],
        "container-id": row["container_id"],
        "package-id": row["package_id"],
        "download": row["file_name"] is not None,
        "procedure": row["procedure"],
        "sequence-mode": row["sequence_mode"],
        "restart": timeout if action == "restart" else None,
        "shutdown": timeout if action == "shutdown" else None,
        "exit": timeout if action == "exit" else None,
    }


async def has_pending_job_for_package(
    connection: aiosqlite.Connection,
    computer_id: int,
    package_id: int,
    address: str | None = None,
) -> bool:
    """Tell whether the computer may download the package now.

    Start, end and IP ranges apply. Time frames and the download cap only
    decide when a hello hands a job out, so they do not stop the download of
    a job already handed out.
    """
    now_text = timefmt.now_text()
    rows = await _candidate_jobs(connection, computer_id, now_text)
    admitted = [
        row for row in rows if schedule.in_ip_ranges(row["ip_ranges"], address)
    ]
    return any(row["package_id"] == package_id for row in admitted)


@dataclass(frozen=True)
class StateReport:
    """One oco.agent.update_job_state report, validated."""

    job_id: int
    state: int
    return_code: int | None
    message: str
    download_progress: float | None


def parse_job_id(value: Any) -> int:
    """Accept an integer job id or its decimal string."""
    if isinstance(value, bool):
        raise InvalidParams(f"data.job-id {value!r} is not a job id")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    if isinstance(value, str) and value.startswith("dynamic-"):
        raise InvalidParams(f"job {value} not found")
    raise InvalidParams(f"data.job-id {value!r} is not a job id")


async def apply_state_report(
    connection: aiosqlite.Connection,
    computer: Row,
    report: StateReport,
    max_retries: int = 0,
) -> bool:
    """Apply an agent's job state report; return whether the job succeeded.

    A transport failure is retried up to `max_retries` times in all (see
    `is_transport_failure`).
    """
    job = await fetch_one(
        connection,
        "SELECT j.*, p.success_codes, c.sequence_mode FROM job j "
        "JOIN package p ON p.id = j.package_id "
        "JOIN job_container c ON c.id = j.container_id WHERE j.id = ?",
        (report.job_id,),
    )
    if job is None:
        raise InvalidParams(f"job {report.job_id} not found")
    if job["computer_id"] != computer["id"]:
        raise Unauthorized(f"job {report.job_id} belongs to another computer")
    if job["state"] not in ACTIVE_STATES:
        # A terminal job never moves back; late output reports are ignored.
        log.debug("job %d is already %s; report ignored", job["id"], job["state"])
        return job["state"] == SUCCEEDED

    new_state = _stored_state(job, report)
    now = timefmt.now_text()
    if is_transport_failure(job, report) and job["retries"] < max_retries:
        await _retry(connection, job, report, max_retries, now)
        return False
    progress = None
    if report.download_progress is not None:
        progress = min(report.download_progress, 100.0)
    await connection.execute(
        "UPDATE job SET state = :state, return_code = COALESCE(:code, return_code), "
        "message = :message, "
        "download_progress = COALESCE(:progress, download_progress), "
        "download_started = CASE WHEN :state = 1 THEN COALESCE(download_started, :now) "
        "ELSE download_started END, "
        "execution_started = CASE WHEN :state = 2 THEN COALESCE(execution_started, :now) "
        "ELSE execution_started END, "
        "execution_finished = CASE WHEN :state IN (3, -1) THEN :now "
        "ELSE execution_finished END, last_update = :now WHERE id = :id",
        {"state": new_state, "code": report.return_code, "message": report.message,
         "progress": progress, "now": now, "id": job["id"]},
    )
    if new_state == SUCCEEDED:
        await _record_installed(connection, job, now)
    if new_state == FAILED and job["sequence_mode"] == 1:
        await abort_remaining(connection, job, now)
    if new_state != job["state"] and new_state in (SUCCEEDED, FAILED):
        log.info(
            "job %d for computer %s finished: %s (return code %s)", job["id"],
            computer["hostname"], STATE_NAMES[new_state], report.return_code,
        )
    return new_state == SUCCEEDED


def is_transport_failure(job: Row, report: StateReport) -> bool:
    """Tell whether a report is an error of the agent, not of the installer.

    That is an agent error with return code -9999 (an exception in the agent,
    such as a failed HTTP request), or any agent error while the job was
    still downloading. A finished report with an installer's own exit code
    is never one.
    """
    if report.state != AGENT_ERROR:
        return False
    return report.return_code == AGENT_EXCEPTION_CODE or bool(
        job["state"] == DOWNLOADING
    )


async def _retry(
    connection: aiosqlite.Connection,
    job: Row,
    report: StateReport,
    max_retries: int,
    now: str,
) -> None:
    attempt = job["retries"] + 1
    message = (
        f"retry {attempt} of {max_retries} after a transport failure "
        f"(return code {report.return_code}): {report.message}"
    )
    await connection.execute(
        "UPDATE job SET state = 0, retries = :attempt, return_code = :code, "
        "message = :message, download_progress = NULL, offered = NULL, "
        "last_update = :now WHERE id = :id",
        {"attempt": attempt, "code": report.return_code, "message": message,
         "now": now, "id": job["id"]},
    )
    log.info(
        "job %d failed in transport (return code %s); waiting again, retry %d of %d",
        job["id"], report.return_code, attempt, max_retries,
    )


def _stored_state(job: Row, report: StateReport) -> int:
    if report.state == AGENT_ERROR:
        return FAILED
    if report.state == AGENT_DOWNLOADING:
        return DOWNLOADING
    if report.state == AGENT_EXECUTING:
        return EXECUTING
    if report.state == AGENT_FINISHED:
        codes = {int(code) for code in job["success_codes"].split(",")}
        return SUCCEEDED if report.return_code in codes else FAILED
    raise InvalidParams(
        f"data.state {report.state} is invalid: use -1, 1, 2 or 3"
    )


async def _record_installed(
    connection: aiosqlite.Connection, job: Row, now: str
) -> None:
    if job["is_uninstall"]:
        await connection.execute(
            "DELETE FROM computer_package WHERE computer_id = ? AND package_id = ?",
            (job["computer_id"], job["package_id"]),
        )
        return
    await connection.execute(
        "INSERT INTO computer_package (computer_id, package_id, installed, job_id) "
        "VALUES (?, ?, ?, ?) ON CONFLICT (computer_id, package_id) "
        "DO UPDATE SET installed = excluded.installed, job_id = excluded.job_id",
        (job["computer_id"], job["package_id"], now, job["id"]),
    )


async def abort_remaining(
    connection: aiosqlite.Connection, job: Row, now: str
) -> None:
    """Fail the computer's waiting jobs in the container (sequence mode 1).

    Only this computer's jobs are failed; other computers in the same
    container go on.
    """
    cursor = await connection.execute(
        "UPDATE job SET state = -1, execution_finished = :now, last_update = :now, "
        "message = :message WHERE container_id = :container "
        "AND computer_id = :computer AND state = 0 AND id <> :id",
        {"now": now, "message": f"aborted because job {job['id']} failed",
         "container": job["container_id"], "computer": job["computer_id"],
         "id": job["id"]},
    )
    if cursor.rowcount:
        log.info(
            "aborted %d waiting jobs of container %d after job %d failed",
            cursor.rowcount, job["container_id"], job["id"],
        )


# Administration

_JOB_LIST_COLUMNS = (
    "j.id, j.container_id, c.name AS container, k.hostname AS computer, "
    "j.package_id, p.family AS package, p.version AS package_version, "
    "j.procedure, j.state, j.download_progress, j.return_code, j.message, "
    "j.created, j.download_started, j.execution_started, j.execution_finished"
)


async def list_jobs(
    database: Database,
    container_id: int | None = None,
    computer_id: int | None = None,
) -> list[Row]:
    return await database.fetch_all(
        f"SELECT {_JOB_LIST_COLUMNS} FROM job j "
        "JOIN job_container c ON c.id = j.container_id "
        "JOIN computer k ON k.id = j.computer_id "
        "JOIN package p ON p.id = j.package_id "
        "WHERE (:container IS NULL OR j.container_id = :container) "
        "AND (:computer IS NULL OR j.computer_id = :computer) "
        "ORDER BY j.container_id, k.hostname, j.sequence, j.id",
        {"container": container_id, "computer": computer_id},
    )


async def get_job(database: Database, job_id: int) -> Row:
    row = await database.fetch_one(
        f"SELECT {_JOB_LIST_COLUMNS}, j.last_update FROM job j "
        "JOIN job_container c ON c.id = j.container_id "
        "JOIN computer k ON k.id = j.computer_id "
        "JOIN package p ON p.id = j.package_id WHERE j.id = ?",
        (job_id,),
    )
    if row is None:
        raise AdminError(f"job {job_id} not found; 'ocoserver job list' shows the ids")
    return row


async def recent_for_computer(
    database: Database, computer_id: int, limit: int = 20
) -> list[Row]:
    return await database.fetch_all(
        f"SELECT {_JOB_LIST_COLUMNS} FROM job j "
        "JOIN job_container c ON c.id = j.container_id "
        "JOIN computer k ON k.id = j.computer_id "
        "JOIN package p ON p.id = j.package_id WHERE j.computer_id = ? "
        "ORDER BY j.id DESC LIMIT ?",
        (computer_id, limit),
    )


async def installed_packages(database: Database, computer_id: int) -> list[Row]:
    return await database.fetch_all(
        "SELECT p.id, p.family AS name, p.version, cp.installed, cp.job_id "
        "FROM computer_package cp JOIN package p ON p.id = cp.package_id "
        "WHERE cp.computer_id = ? ORDER BY p.family, p.version",
        (computer_id,),
    )


async def get_container(database: Database, container_id: int) -> Row:
    """Return a job container row or raise AdminError."""
    row = await database.fetch_one(
        "SELECT id, name, enabled, start_time, end_time, priority, sequence_mode, "
        "created FROM job_container WHERE id = ?",
        (container_id,),
    )
    if row is None:
        raise AdminError(
            f"job container {container_id} not found; 'ocoserver job list' shows "
            "the containers of existing jobs"
        )
    return row
