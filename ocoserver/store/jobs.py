"""Job containers and jobs: creation, pending-job selection, state updates."""

from __future__ import annotations

import dataclasses
import datetime
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiosqlite

from ocoserver import compatibility, schedule, timefmt
from ocoserver.db import (
    SQLITE_INTEGER_MAX,
    Database,
    Row,
    execute,
    fetch_all,
    fetch_one,
)
from ocoserver.errors import AdminError, InvalidParams, NotPermitted, preview
from ocoserver.params import read_int, read_number
from ocoserver.store.inventory import to_text

log = logging.getLogger("ocoserver.jobs")

# Prefix of the ids under which jobs of deployment rules are sent to agents.
DYNAMIC_PREFIX = "dynamic-"

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

# Upgrade modes: the effect of a successful install on the other installed
# versions of its package family (job_container.upgrade in schema.sql).
UPGRADE_MODES = ("none", "replace", "uninstall-first")

# States an agent reports in oco.agent.update_job_state.
AGENT_ERROR = -1
AGENT_DOWNLOADING = 1
AGENT_EXECUTING = 2
AGENT_FINISHED = 3

AGENT_STATES = (AGENT_ERROR, AGENT_DOWNLOADING, AGENT_EXECUTING, AGENT_FINISHED)

# Maximum length of stored job output, in characters. The agent resends
# the whole output with every progress report. 4 Mi characters should fit
# the output of verbose installers (an estimate) and bounds one job row.
# Longer output is cut, not rejected: an agent never resends a rejected
# final report, so rejecting it would leave the job executing forever.
MAX_JOB_OUTPUT_LENGTH = 4 * 1024 * 1024
TRUNCATION_MARK = "[ocoserver: earlier output removed, {count} characters]\n"

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
    # Create jobs even for computers that have the package installed.
    force: bool = False
    upgrade: str = "none"
    # Run the packages' uninstall procedures instead of installing them.
    uninstall: bool = False

    # Canonical texts from schedule.format_time_frame and format_ip_range.
    time_frames: tuple[str, ...] = ()
    ip_ranges: tuple[str, ...] = ()


_NO_UNINSTALL_FIX = "add it again with --uninstall CMD, or leave it out"
_NO_UPGRADE_FIX = (
    "it is installed on a target computer, so deploy with --upgrade replace or none"
)


@dataclass(frozen=True)
class PlannedJob:
    computer_id: int
    package_id: int
    procedure: str
    is_uninstall: int
    state: int
    message: str


def validate_deployment(deployment: Deployment) -> Deployment:
    """Check every field and return the deployment in stored form.

    The CLI, the client API and the embedding API all create containers
    through here, so a value that passes cannot break a later check-in.
    Raises AdminError naming the field and the value.
    """
    if not isinstance(deployment.name, str) or not deployment.name.strip():
        raise AdminError("deployment name is empty: give --name")
    for name in ("package_ids", "computer_ids"):
        ids = getattr(deployment, name)
        if not ids or not all(_is_id(number) for number in ids):
            raise AdminError(
                f"invalid {name} {preview(ids)}: give at least one, as positive ids"
            )
    for name in ("priority", "sequence_mode"):
        value = getattr(deployment, name)
        if not _is_id(value, minimum=-(2**63)):
            raise AdminError(f"invalid {name} {preview(value)}: use a whole number")
    if deployment.sequence_mode not in (0, 1):
        raise AdminError(
            f"invalid sequence_mode {deployment.sequence_mode}: use 0 (continue) "
            "or 1 (abort the computer's remaining jobs)"
        )
    return dataclasses.replace(
        deployment,
        start_time=_stored_time(deployment.start_time, "start_time"),
        end_time=None if deployment.end_time is None else _stored_time(
            deployment.end_time, "end_time"
        ),
        time_frames=_canonical(deployment.time_frames, "time_frames",
                               schedule.parse_time_frame, schedule.format_time_frame),
        ip_ranges=_canonical(deployment.ip_ranges, "ip_ranges",
                             schedule.parse_ip_range, schedule.format_ip_range),
    )  # fmt: skip


def _is_id(value: Any, minimum: int = 1) -> bool:
    return (
        isinstance(value, int)
        and not isinstance(value, bool)
        and minimum <= value <= SQLITE_INTEGER_MAX
    )


def _stored_time(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise AdminError(f"invalid {name} {preview(value)}: give ISO 8601 text")
    try:
        return timefmt.parse_admin_time(value)
    except ValueError as error:
        raise AdminError(f"{name}: {error}") from None


def _canonical(
    texts: Any, name: str, parse: Callable[[str], Any], render: Callable[[Any], str]
) -> tuple[str, ...]:
    if isinstance(texts, str) or not isinstance(texts, list | tuple):
        raise AdminError(f"invalid {name} {preview(texts)}: give a list of texts")
    try:
        return tuple(render(parse(text)) for text in texts)
    except (TypeError, AttributeError):
        raise AdminError(
            f"invalid {name} {preview(texts)}: give a list of texts"
        ) from None
    except ValueError as error:
        raise AdminError(f"{name}: {error}") from None


async def create_container(database: Database, deployment: Deployment) -> int:
    """Create a job container with the jobs of a deployment, in order.

    Each computer gets one job per package. A package that does not fit the
    computer gets a job in state OS_INCOMPATIBLE. A package the computer has
    installed gets ALREADY_INSTALLED unless `force` is set. Agents never
    receive jobs in either state. With upgrade "uninstall-first", uninstall
    jobs for the other installed versions of the package family come right
    before the install job.
    """
    deployment = validate_deployment(deployment)
    if deployment.end_time is not None and deployment.end_time <= deployment.start_time:
        raise AdminError(
            f"end time {deployment.end_time} is not after start time "
            f"{deployment.start_time}; give a later --end"
        )
    if deployment.upgrade not in UPGRADE_MODES:
        raise AdminError(
            f"invalid upgrade mode {deployment.upgrade!r}: use one of "
            f"{', '.join(UPGRADE_MODES)}"
        )
    now = timefmt.now_text()
    async with database.transaction() as connection:
        container_id = await execute(
            connection,
            "INSERT INTO job_container (name, enabled, start_time, end_time, "
            "priority, sequence_mode, created, upgrade, time_frames, ip_ranges) "
            "VALUES (?, 1, ?, ?, ?, ?, ?, ?, ?, ?)",
            (deployment.name.strip(), deployment.start_time, deployment.end_time,
             deployment.priority, deployment.sequence_mode, now, deployment.upgrade,
             schedule.TIME_FRAME_SEPARATOR.join(deployment.time_frames),
             schedule.IP_RANGE_SEPARATOR.join(deployment.ip_ranges)),
        )
        planned = []
        for computer_id in deployment.computer_ids:
            planned += await _plan_computer(connection, deployment, computer_id)
        await _insert_planned(connection, container_id, planned, now)
    _log_created(container_id, deployment.name, planned)
    return container_id


async def _plan_computer(
    connection: aiosqlite.Connection, deployment: Deployment, computer_id: int
) -> list[PlannedJob]:
    planned: list[PlannedJob] = []
    for package_id in deployment.package_ids:
        package = await _get_package(connection, package_id)
        if deployment.uninstall:
            planned.append(uninstall_job(computer_id, package, _NO_UNINSTALL_FIX))
            continue
        state, message = await initial_state(
            connection, computer_id, package, deployment.force
        )
        # Uninstalling the old version only makes sense when the new one
        # will actually be installed.
        if deployment.upgrade == "uninstall-first" and state == WAITING:
            for old in await other_installed_versions(connection, computer_id, package):
                if not any(job.package_id == old["id"] for job in planned):
                    planned.append(uninstall_job(computer_id, old, _NO_UPGRADE_FIX))
        planned.append(PlannedJob(
            computer_id, package_id, package["install_procedure"], 0, state, message
        ))  # fmt: skip
    return planned


async def _get_package(connection: aiosqlite.Connection, package_id: int) -> Row:
    package = await fetch_one(
        connection, "SELECT * FROM package WHERE id = ?", (package_id,)
    )
    if package is None:
        raise AdminError(
            f"package {package_id} not found; 'ocoserver package list' shows the ids"
        )
    return package


def uninstall_job(computer_id: int, package: Row, fix: str) -> PlannedJob:
    """Plan a job that runs a package's uninstall procedure, or raise AdminError.

    `fix` ends the error message with the next step for the administrator.
    """
    if not package["uninstall_procedure"].strip():
        raise AdminError(
            f"package {package['family']} {package['version']} (id {package['id']}) "
            f"has no uninstall procedure; {fix}"
        )
    return PlannedJob(
        computer_id, package["id"], package["uninstall_procedure"], 1, WAITING, ""
    )


async def initial_state(
    connection: aiosqlite.Connection, computer_id: int, package: Row, force: bool
) -> tuple[int, str]:
    """Return the state and message a new install job starts with."""
    computer = await fetch_one(
        connection, "SELECT os, architecture FROM computer WHERE id = ?", (computer_id,)
    )
    if computer is None:
        raise AdminError(
            f"computer {computer_id} not found; 'ocoserver computer list' shows the ids"
        )
    reason = compatibility.incompatibility(package, computer)
    if reason:
        return OS_INCOMPATIBLE, reason
    installed = await fetch_one(
        connection,
        "SELECT installed FROM computer_package "
        "WHERE computer_id = ? AND package_id = ?",
        (computer_id, package["id"]),
    )
    if installed is not None and not force:
        return ALREADY_INSTALLED, (
            f"package installed since {installed['installed']}; deploy with "
            "--force to install it again"
        )
    return WAITING, ""


async def other_installed_versions(
    connection: aiosqlite.Connection, computer_id: int, package: Row
) -> list[Row]:
    """Return the computer's installed packages of the same family, other versions."""
    return await fetch_all(
        connection,
        "SELECT p.* FROM computer_package cp JOIN package p ON p.id = cp.package_id "
        "WHERE cp.computer_id = ? AND p.family = ? AND p.id <> ? ORDER BY p.id",
        (computer_id, package["family"], package["id"]),
    )


async def _insert_planned(
    connection: aiosqlite.Connection,
    container_id: int,
    planned: list[PlannedJob],
    now: str,
) -> None:
    rows = []
    sequences: dict[int, int] = {}
    for job in planned:
        sequence = sequences.get(job.computer_id, 0) + 1
        sequences[job.computer_id] = sequence
        rows.append((container_id, job.computer_id, job.package_id, job.procedure,
                     job.is_uninstall, sequence, job.state, job.message, now))
    await connection.executemany(
        "INSERT INTO job (container_id, computer_id, package_id, procedure, "
        "is_uninstall, sequence, state, message, created) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )


def _log_created(container_id: int, name: str, planned: list[PlannedJob]) -> None:
    not_sent = [job for job in planned if job.state != WAITING]
    log.info(
        "job container %d %r created with %d jobs (%d uninstall, %d OS "
        "incompatible, %d already installed)",
        container_id, name, len(planned),
        sum(job.is_uninstall for job in planned),
        sum(job.state == OS_INCOMPATIBLE for job in not_sent),
        sum(job.state == ALREADY_INSTALLED for job in not_sent),
    )


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


@dataclass(frozen=True)
class JobKind:
    """A job table, with the column and statement that the download cap uses."""

    # The row key whose jobs run in sequence: a container or a rule.
    sequence_key: str
    # An UPDATE that sets `offered` to a time (first parameter) on one job
    # (second parameter).
    offer_statement: str


CONTAINER_JOBS = JobKind("container_id", "UPDATE job SET offered = ? WHERE id = ?")


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
    admitted = await admitted_jobs(connection, computer_id, delivery)
    [kept] = await withhold_capped_downloads(
        connection, computer_id, [(CONTAINER_JOBS, admitted)], delivery
    )
    return kept


async def admitted_jobs(
    connection: aiosqlite.Connection, computer_id: int, delivery: Delivery
) -> list[Row]:
    """Return the pending jobs before the download cap, in execution order."""
    candidates = await _candidate_jobs(connection, computer_id, delivery.now_text)
    return admit_candidates(candidates, delivery)


async def _candidate_jobs(
    connection: aiosqlite.Connection, computer_id: int, now_text: str
) -> list[Row]:
    return await fetch_all(
        connection,
        "SELECT j.id, j.container_id, j.package_id, j.procedure, j.state, "
        "c.sequence_mode, c.time_frames, c.ip_ranges, "
        "p.file_name, p.post_action, p.post_action_timeout, "
        "j.is_uninstall, p.uninstall_post_action "
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
    selections: list[tuple[JobKind, list[Row]]],
    delivery: Delivery,
) -> list[list[Row]]:
    """Hold back waiting download jobs while other computers fill the download cap.

    `selections` pairs each kind of job with the computer's pending jobs of
    that kind, and one cap covers all of them. The result has the kept jobs
    of each selection, in the same order. A held-back job's later jobs in
    the same container or rule are held back too, so that its sequence is
    kept. Jobs handed out with their download are marked as offered, which
    reserves a slot until the agent reports progress or `download_timeout`
    passes.
    """
    selected = [rows for _, rows in selections]
    waiting = [(kind, _waiting_downloads(rows)) for kind, rows in selections]
    if delivery.max_concurrent_downloads == 0 or not any(rows for _, rows in waiting):
        return selected

    if not await _download_slot_free(connection, computer_id, delivery):
        return [
            _without_download_jobs(rows, kind.sequence_key) for kind, rows in selections
        ]

    for kind, rows in waiting:
        await connection.executemany(
            kind.offer_statement, [(delivery.now_text, row["id"]) for row in rows]
        )
    return selected


def _waiting_downloads(rows: list[Row]) -> list[Row]:
    return [row for row in rows if _is_waiting_download(row)]


def _is_waiting_download(row: Row) -> bool:
    return bool(row["state"] == WAITING and row["file_name"])


async def _download_slot_free(
    connection: aiosqlite.Connection, computer_id: int, delivery: Delivery
) -> bool:
    cap = delivery.max_concurrent_downloads
    cutoff = timefmt.to_text(
        delivery.now - datetime.timedelta(seconds=delivery.download_timeout)
    )
    busy = await count_downloading_computers(connection, computer_id, cutoff)
    if busy >= cap:
        log.debug(
            "computer %d waits for a download slot: %d of %d in use",
            computer_id, busy, cap,
        )
        return False
    return True


# The join and filter of count_downloading_computers for either job table
# (alias j). Both tables name the columns it uses alike.
_SLOT_CONDITION = (
    "JOIN package p ON p.id = j.package_id "
    "WHERE j.state IN (0, 1) AND j.computer_id <> :computer "
    "AND p.file_name IS NOT NULL AND CASE j.state "
    "WHEN 1 THEN COALESCE(j.last_update, j.download_started) "
    "ELSE j.offered END > :cutoff"
)


async def count_downloading_computers(
    connection: aiosqlite.Connection, computer_id: int, cutoff: str
) -> int:
    """Count other computers that hold a download slot since `cutoff`.

    A slot is held by a container job or rule job reported as downloading,
    or by a waiting one offered with its download, whose last activity is
    after `cutoff`.
    """
    row = await fetch_one(
        connection,
        "SELECT COUNT(DISTINCT computer_id) AS busy FROM ("
        f"SELECT j.computer_id FROM job j {_SLOT_CONDITION} "
        f"UNION ALL SELECT j.computer_id FROM rule_job j {_SLOT_CONDITION})",
        {"computer": computer_id, "cutoff": cutoff},
    )
    assert row is not None
    return int(row["busy"])


def _without_download_jobs(rows: list[Row], sequence_key: str) -> list[Row]:
    held_sequences: set[int] = set()
    kept = []
    for row in rows:
        if row[sequence_key] in held_sequences:
            continue
        if _is_waiting_download(row):
            held_sequences.add(row[sequence_key])
            continue
        kept.append(row)
    return kept


def to_agent_job(row: Row) -> dict[str, Any]:
    """Build one `software-jobs` entry of the hello response.

    The post action is the package's install or uninstall post action, so
    at most one of `restart`, `shutdown` and `exit` carries a timeout.
    """
    timeout = row["post_action_timeout"]
    action = row["uninstall_post_action"] if row["is_uninstall"] else row["post_action"]
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
    # True for a job of a deployment rule, sent to the agent as "dynamic-N".
    dynamic: bool = False


def parse_job_id(value: Any) -> tuple[int, bool]:
    """Return (id, dynamic) for a job id: an integer, its decimal string or
    "dynamic-N", the form in which jobs of deployment rules are sent."""
    if isinstance(value, str) and value.startswith(DYNAMIC_PREFIX):
        number = value[len(DYNAMIC_PREFIX):]
        try:
            return read_int(number, "data.job-id", minimum=1), True
        except InvalidParams:
            raise InvalidParams(
                f"data.job-id {preview(value)} is not a job id: use dynamic-<number>"
            ) from None
    return read_int(value, "data.job-id", minimum=1), False


def read_state_report(data: dict[str, Any]) -> StateReport:
    """Validate and normalise the `data` of oco.agent.update_job_state."""
    if "job-id" not in data:
        raise InvalidParams("data.job-id is missing")
    state = read_int(data.get("state"), "data.state")
    if state not in AGENT_STATES:
        raise InvalidParams(f"data.state {state} is invalid: use -1, 1, 2 or 3")
    return_code = data.get("return-code")
    progress = data.get("download-progress")
    message = to_text(data.get("message"))
    job_id, dynamic = parse_job_id(data["job-id"])
    return StateReport(
        job_id=job_id,
        state=state,
        return_code=None if return_code is None else read_int(
            return_code, "data.return-code"
        ),
        message=truncate_output(message),
        download_progress=None if progress is None else read_number(
            progress, "data.download-progress"
        ),
        dynamic=dynamic,
    )


def truncate_output(output: str) -> str:
    """Keep the end of an over-long job output, where the result usually is."""
    if len(output) <= MAX_JOB_OUTPUT_LENGTH:
        return output
    removed = len(output) - MAX_JOB_OUTPUT_LENGTH
    return TRUNCATION_MARK.format(count=removed) + output[removed:]


async def fetch_own_job(
    connection: aiosqlite.Connection, computer: Row, job_id: int
) -> Row:
    """Return a job with its package's success codes, if it is the computer's.

    Raises InvalidParams for an unknown job and NotPermitted for a job of
    another computer.
    """
    job = await fetch_one(
        connection,
        "SELECT j.*, p.success_codes, c.sequence_mode, c.upgrade FROM job j "
        "JOIN package p ON p.id = j.package_id "
        "JOIN job_container c ON c.id = j.container_id WHERE j.id = ?",
        (job_id,),
    )
    return check_own_job(job, computer, str(job_id))


def check_own_job(job: Row | None, computer: Row, label: str) -> Row:
    """Return the job if it is the computer's; `label` is the id the agent sent.

    Raises InvalidParams for an unknown job and NotPermitted for a job of
    another computer.
    """
    if job is None:
        raise InvalidParams(f"job {label} not found")
    if job["computer_id"] != computer["id"]:
        raise NotPermitted(f"job {label} belongs to another computer")
    return job


async def apply_state_report(
    connection: aiosqlite.Connection,
    computer: Row,
    report: StateReport,
    max_retries: int = 0,
) -> bool:
    """Apply an agent's job state report; return whether the job succeeded.

    A transport failure is retried up to `max_retries` times in all (see
    `is_transport_failure`). A success report for an expired job records
    the installation but keeps the job expired.
    """
    job = await fetch_own_job(connection, computer, report.job_id)
    if job["state"] == EXPIRED and stored_state(job, report) == SUCCEEDED:
        await _record_late_success(connection, computer, job)
        return True
    if job["state"] not in ACTIVE_STATES:
        # A terminal job never moves back; late output reports are ignored.
        log.debug("job %d is already %s; report ignored", job["id"], job["state"])
        return bool(job["state"] == SUCCEEDED)

    new_state = stored_state(job, report)
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


async def _record_late_success(
    connection: aiosqlite.Connection, computer: Row, job: Row
) -> None:
    """Record what a job did that finished successfully after it expired.

    The agent ran the installer, so the installed-package record must match
    the computer. The job stays expired, because its container ended first.
    """
    await _record_installed(connection, job, timefmt.now_text())
    action = "uninstalled" if job["is_uninstall"] else "installed"
    log.info(
        "job %d for computer %s succeeded after it expired: package %d recorded "
        "as %s, job state kept", job["id"], computer["hostname"],
        job["package_id"], action,
    )


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
    await connection.execute(
        "UPDATE job SET state = 0, retries = :attempt, return_code = :code, "
        "message = :message, download_progress = NULL, offered = NULL, "
        "last_update = :now WHERE id = :id",
        retry_values(job, report, max_retries, now),
    )
    log.info(
        "job %d failed in transport (return code %s); waiting again, retry %d of %d",
        job["id"], report.return_code, job["retries"] + 1, max_retries,
    )


def retry_values(
    job: Row, report: StateReport, max_retries: int, now: str
) -> dict[str, Any]:
    """Return the statement values that put a job back to waiting for a retry."""
    attempt = job["retries"] + 1
    message = (
        f"retry {attempt} of {max_retries} after a transport failure "
        f"(return code {report.return_code}): {report.message}"
    )
    return {"attempt": attempt, "code": report.return_code, "message": message,
            "now": now, "id": job["id"]}  # fmt: skip


def stored_state(job: Row, report: StateReport) -> int:
    """Map an agent-reported state to the stored one, given the success codes."""
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
    if job["upgrade"] == "replace":
        await forget_other_versions(connection, job["computer_id"], job["package_id"])


async def forget_other_versions(
    connection: aiosqlite.Connection, computer_id: int, package_id: int
) -> None:
    """Delete the installed records of the package family's other versions.

    The installer of the new version replaced them, so the computer no
    longer has them.
    """
    cursor = await connection.execute(
        "DELETE FROM computer_package WHERE computer_id = :computer "
        "AND package_id IN (SELECT o.id FROM package o JOIN package n "
        "ON n.family = o.family WHERE n.id = :package AND o.id <> :package)",
        {"computer": computer_id, "package": package_id},
    )
    if cursor.rowcount:
        log.info(
            "computer %d: %d other versions of package %d no longer recorded as "
            "installed (replaced)", computer_id, cursor.rowcount, package_id,
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
    "j.created, j.download_started, j.execution_started, j.execution_finished, "
    "j.is_uninstall"
)


async def list_jobs(
    database: Database,
    container_id: int | None = None,
    computer_id: int | None = None,
    state: int | None = None,
) -> list[Row]:
    return await database.fetch_all(
        f"SELECT {_JOB_LIST_COLUMNS} FROM job j "
        "JOIN job_container c ON c.id = j.container_id "
        "JOIN computer k ON k.id = j.computer_id "
        "JOIN package p ON p.id = j.package_id "
        "WHERE (:container IS NULL OR j.container_id = :container) "
        "AND (:computer IS NULL OR j.computer_id = :computer) "
        "AND (:state IS NULL OR j.state = :state) "
        "ORDER BY j.container_id, k.hostname, j.sequence, j.id",
        {"container": container_id, "computer": computer_id, "state": state},
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
            f"job container {container_id} not found; 'ocoserver job-container "
            "list' shows the ids"
        )
    return row
