"""Jobs of deployment rules: creation, pending selection and state reports.

A deployment rule gives every computer of a computer group a job for every
package of a package group. `sync` brings the rule_job table in line with
the rules and group memberships. The administration commands that change
a rule, a group's members or a group's parent call it in their transaction,
so a computer that joins a group later gets its jobs at once. Agents
receive these jobs with the id "dynamic-<id>" and the container id
"dynamic-<rule id>", and report their state under the same id.
"""

from __future__ import annotations

import itertools
import logging
from typing import Any

import aiosqlite

from ocoserver import timefmt
from ocoserver.db import Row, fetch_all, fetch_one
from ocoserver.store import groups, jobs

log = logging.getLogger("ocoserver.rule_jobs")

DYNAMIC_PREFIX = jobs.DYNAMIC_PREFIX

# States of jobs that agents never received; sync deletes such jobs when the
# computer or package is no longer covered by the rule.
_UNSENT_STATES = (jobs.WAITING, jobs.OS_INCOMPATIBLE, jobs.ALREADY_INSTALLED)


async def sync(connection: aiosqlite.Connection) -> None:
    """Create missing rule jobs and delete unsent ones no longer covered."""
    rules = await fetch_all(connection, "SELECT * FROM deployment_rule ORDER BY id")
    for rule in rules:
        covered: dict[tuple[int, int], int] = {}
        if rule["enabled"]:
            computers = await groups.computer_ids(connection, rule["computer_group_id"])
            packages = await groups.package_ids(connection, rule["package_group_id"])
            for computer_id, (index, package_id) in itertools.product(
                computers, enumerate(packages, start=1)
            ):
                covered[(computer_id, package_id)] = index
        await _sync_rule(connection, rule, covered)


async def _sync_rule(
    connection: aiosqlite.Connection, rule: Row, covered: dict[tuple[int, int], int]
) -> None:
    existing = await fetch_all(
        connection,
        "SELECT id, computer_id, package_id, state FROM rule_job WHERE rule_id = ?",
        (rule["id"],),
    )
    present = {(row["computer_id"], row["package_id"]) for row in existing}
    for row in existing:
        key = (row["computer_id"], row["package_id"])
        if key not in covered and row["state"] in _UNSENT_STATES and rule["enabled"]:
            await connection.execute("DELETE FROM rule_job WHERE id = ?", (row["id"],))
            log.info(
                "rule job %d of deployment rule %d deleted: computer %d or package "
                "%d left the rule's groups",
                row["id"],
                rule["id"],
                *key,
            )
    for (computer_id, package_id), sequence in covered.items():
        if (computer_id, package_id) not in present:
            await _create(connection, rule, computer_id, package_id, sequence)


async def _create(
    connection: aiosqlite.Connection,
    rule: Row,
    computer_id: int,
    package_id: int,
    sequence: int,
) -> None:
    package = await fetch_one(
        connection, "SELECT * FROM package WHERE id = ?", (package_id,)
    )
    assert package is not None
    state, message = await jobs.initial_state(connection, computer_id, package, False)
    cursor = await connection.execute(
        "INSERT INTO rule_job (rule_id, computer_id, package_id, procedure, sequence, "
        "state, message, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            rule["id"],
            computer_id,
            package_id,
            package["install_procedure"],
            sequence,
            state,
            message,
            timefmt.now_text(),
        ),
    )
    log.info(
        "rule job %d created by deployment rule %d: computer %d, package %d, %s",
        cursor.lastrowid,
        rule["id"],
        computer_id,
        package_id,
        jobs.STATE_NAMES[state],
    )


RULE_JOBS = jobs.JobKind("rule_id", "UPDATE rule_job SET offered = ? WHERE id = ?")


async def pending_for_check_in(
    connection: aiosqlite.Connection, computer_id: int, delivery: jobs.Delivery
) -> tuple[list[Row], list[Row]]:
    """Select the pending container jobs and rule jobs that a hello hands out.

    One download cap covers both kinds (see `jobs.withhold_capped_downloads`).
    Rule jobs have no IP ranges or time frames. With a download cap in
    `delivery`, `connection` must be able to write, because handing out a
    download job reserves a slot.
    """
    container_rows = await jobs.admitted_jobs(connection, computer_id, delivery)
    rule_rows = await pending_for_computer(connection, computer_id)
    container_kept, rule_kept = await jobs.withhold_capped_downloads(
        connection,
        computer_id,
        [(jobs.CONTAINER_JOBS, container_rows), (RULE_JOBS, rule_rows)],
        delivery,
    )
    return container_kept, rule_kept


async def pending_for_computer(
    connection: aiosqlite.Connection, computer_id: int
) -> list[Row]:
    """Return the computer's pending rule jobs in execution order.

    Pending: waiting, downloading or executing, of an enabled rule. Order:
    rule priority (highest first), rule id, then the package's place in the
    package group. The download cap is not applied here.
    """
    return await fetch_all(
        connection,
        "SELECT j.id, j.rule_id, j.package_id, j.procedure, j.state, "
        "r.sequence_mode, p.file_name, p.post_action, p.post_action_timeout "
        "FROM rule_job j JOIN deployment_rule r ON r.id = j.rule_id "
        "JOIN package p ON p.id = j.package_id "
        "WHERE j.computer_id = ? AND j.state IN (0, 1, 2) AND r.enabled = 1 "
        "ORDER BY r.priority DESC, r.id, j.sequence, j.id",
        (computer_id,),
    )


def to_agent_job(row: Row) -> dict[str, Any]:
    """Build the `software-jobs` entry of a rule job: ids carry "dynamic-"."""
    entry = jobs.to_agent_job(
        {**row, "container_id": 0, "is_uninstall": 0, "uninstall_post_action": "none"}
    )
    entry["id"] = f"{DYNAMIC_PREFIX}{row['id']}"
    entry["container-id"] = f"{DYNAMIC_PREFIX}{row['rule_id']}"
    return entry


async def has_pending_job_for_package(
    connection: aiosqlite.Connection, computer_id: int, package_id: int
) -> bool:
    rows = await pending_for_computer(connection, computer_id)
    return any(row["package_id"] == package_id for row in rows)


async def fetch_own_job(
    connection: aiosqlite.Connection, computer: Row, job_id: int
) -> Row:
    """Return rule job N of "dynamic-N" with its package's success codes.

    Raises InvalidParams for an unknown job and NotPermitted for a job of
    another computer.
    """
    job = await fetch_one(
        connection,
        "SELECT j.*, p.success_codes, r.sequence_mode FROM rule_job j "
        "JOIN package p ON p.id = j.package_id "
        "JOIN deployment_rule r ON r.id = j.rule_id WHERE j.id = ?",
        (job_id,),
    )
    return jobs.check_own_job(job, computer, f"{DYNAMIC_PREFIX}{job_id}")


async def apply_state_report(
    connection: aiosqlite.Connection,
    computer: Row,
    report: jobs.StateReport,
    max_retries: int = 0,
) -> bool:
    """Apply an agent's report for a rule job; return whether the job succeeded.

    `report.job_id` is the N of the agent's "dynamic-N". Transport failures
    are retried as for container jobs.
    """
    job_id = report.job_id
    job = await fetch_own_job(connection, computer, job_id)
    if job["state"] not in jobs.ACTIVE_STATES:
        log.debug("rule job %d is already %s; report ignored", job_id, job["state"])
        return bool(job["state"] == jobs.SUCCEEDED)

    new_state = jobs.stored_state(job, report)
    now = timefmt.now_text()
    if jobs.is_transport_failure(job, report) and job["retries"] < max_retries:
        await connection.execute(
            "UPDATE rule_job SET state = 0, retries = :attempt, return_code = :code, "
            "message = :message, download_progress = NULL, offered = NULL, "
            "last_update = :now WHERE id = :id",
            jobs.retry_values(job, report, max_retries, now),
        )
        log.info(
            "rule job %d failed in transport (return code %s); waiting again, "
            "retry %d of %d", job_id, report.return_code, job["retries"] + 1,
            max_retries,
        )
        return False
    await _update(connection, job_id, new_state, report, now)
    if new_state == jobs.SUCCEEDED:
        await _record_installed(connection, job, now)
    if new_state == jobs.FAILED and job["sequence_mode"] == 1:
        await _abort_remaining(connection, job, now)
    if new_state != job["state"] and new_state in (jobs.SUCCEEDED, jobs.FAILED):
        log.info(
            "rule job %d for computer %s finished: %s (return code %s)",
            job_id,
            computer["hostname"],
            jobs.STATE_NAMES[new_state],
            report.return_code,
        )
    return new_state == jobs.SUCCEEDED


async def _update(
    connection: aiosqlite.Connection,
    job_id: int,
    state: int,
    report: jobs.StateReport,
    now: str,
) -> None:
    # The same columns and rules as for container jobs in store/jobs.py.
    progress = None
    if report.download_progress is not None:
        progress = min(report.download_progress, 100.0)
    await connection.execute(
        "UPDATE rule_job SET state = :state, "
        "return_code = COALESCE(:code, return_code), message = :message, "
        "download_progress = COALESCE(:progress, download_progress), "
        "download_started = CASE WHEN :state = 1 THEN COALESCE(download_started, :now) "
        "ELSE download_started END, "
        "execution_started = CASE WHEN :state = 2 THEN COALESCE(execution_started, :now) "
        "ELSE execution_started END, "
        "execution_finished = CASE WHEN :state IN (3, -1) THEN :now "
        "ELSE execution_finished END, last_update = :now WHERE id = :id",
        {
            "state": state,
            "code": report.return_code,
            "message": report.message,
            "progress": progress,
            "now": now,
            "id": job_id,
        },
    )


async def _record_installed(
    connection: aiosqlite.Connection, job: Row, now: str
) -> None:
    await connection.execute(
        "INSERT INTO computer_package (computer_id, package_id, installed, rule_job_id) "
        "VALUES (?, ?, ?, ?) ON CONFLICT (computer_id, package_id) DO UPDATE SET "
        "installed = excluded.installed, job_id = NULL, "
        "rule_job_id = excluded.rule_job_id",
        (job["computer_id"], job["package_id"], now, job["id"]),
    )


async def _abort_remaining(
    connection: aiosqlite.Connection, job: Row, now: str
) -> None:
    """Fail the computer's later waiting jobs of the same rule (sequence mode 1)."""
    cursor = await connection.execute(
        "UPDATE rule_job SET state = -1, execution_finished = :now, last_update = :now, "
        "message = :message WHERE rule_id = :rule AND computer_id = :computer "
        "AND state = 0 AND id <> :id",
        {
            "now": now,
            "message": f"aborted because job dynamic-{job['id']} failed",
            "rule": job["rule_id"],
            "computer": job["computer_id"],
            "id": job["id"],
        },
    )
    if cursor.rowcount:
        log.info(
            "aborted %d waiting jobs of deployment rule %d after rule job %d failed",
            cursor.rowcount,
            job["rule_id"],
            job["id"],
        )


async def list_for_rule(connection: aiosqlite.Connection, rule_id: int) -> list[Row]:
    """Return a rule's jobs with computer and package names, for the CLI."""
    return await fetch_all(
        connection,
        "SELECT j.id, 'dynamic-' || j.id AS agent_job_id, k.hostname AS computer, "
        "j.package_id, p.family AS package, "
        "p.version AS package_version, j.state, j.download_progress, j.return_code, "
        "j.message, j.created, j.execution_finished FROM rule_job j "
        "JOIN computer k ON k.id = j.computer_id JOIN package p ON p.id = j.package_id "
        "WHERE j.rule_id = ? ORDER BY k.hostname, j.sequence, j.id",
        (rule_id,),
    )
