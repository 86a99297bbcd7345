"""The agent JSON-RPC methods, registered in METHODS.

Each method has a reader that validates the request's `data` before the
request is authenticated, so an invalid request changes nothing, and a
function that does the work in one database transaction and returns
`result.params`. A method whose validation needs the database (a job must
belong to the caller) also has a check, which runs inside authentication
before the request's timestamp is recorded.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiosqlite

from ocoserver import timefmt
from ocoserver.agent_auth import Authorizer, Caller
from ocoserver.config import AgentConfig
from ocoserver.db import Database, Row
from ocoserver.params import read_flag
from ocoserver.rpc import RpcRequest
from ocoserver.store import computers, events, inventory, jobs, passwords, rule_jobs
from ocoserver.store.inventory import column_value, read_list, require_list
from ocoserver.store.settings import read_agent_settings

log = logging.getLogger("ocoserver.agent")


@dataclass(frozen=True)
class MethodContext:
    database: Database
    caller: Caller
    request: RpcRequest
    # The agent's address, from client_address().
    remote: str
    # The server's password key file (Config.password_key_path).
    password_key_path: Path
    # What the method's reader returned for this request.
    arguments: Any = None
    agent_config: AgentConfig = AgentConfig()

    def delivery(self) -> jobs.Delivery:
        """Return the conditions for handing jobs to this request, at this moment."""
        return jobs.Delivery(
            address=self.remote,
            max_concurrent_downloads=self.agent_config.max_concurrent_downloads,
            download_timeout=self.agent_config.download_timeout,
        )


Reader = Callable[[RpcRequest], Any]
Runner = Callable[[MethodContext], Awaitable[dict[str, Any]]]
# Builds the database check of a method from its reader's result.
CheckBuilder = Callable[[Any], Authorizer]


@dataclass(frozen=True)
class AgentMethod:
    read: Reader
    run: Runner
    check: CheckBuilder | None = None


METHODS: dict[str, AgentMethod] = {}


def method(
    name: str, read: Reader, check: CheckBuilder | None = None
) -> Callable[[Runner], Runner]:
    def register(function: Runner) -> Runner:
        METHODS[name] = AgentMethod(read, function, check)
        return function

    return register


@dataclass(frozen=True)
class CheckIn:
    """The validated `data` of oco.agent.hello."""

    # Column values for computers.record_check_in, without the address.
    values: dict[str, Any]
    networks: list[dict[str, Any]] | None
    services: list[dict[str, Any]] | None
    force_update: bool


CHECK_IN_FIELDS = ("agent_version", "uptime", "battery_level", "battery_status")


def read_check_in(request: RpcRequest) -> CheckIn:
    """Validate the `data` of oco.agent.hello."""
    data = request.data()
    values = {
        field: column_value(data.get(field), f"data.{field}")
        for field in CHECK_IN_FIELDS
    }
    # An empty version is stored as unknown.
    if not data.get("agent_version"):
        values["agent_version"] = None

    force_update = False
    if data.get("force_update") is not None:
        force_update = read_flag(data["force_update"], "data.force_update")
    return CheckIn(
        values=values,
        networks=read_list(data, "networks", inventory.LIST_TABLES["networks"][1]),
        services=read_list(data, "services", inventory.SERVICE_FIELDS),
        force_update=force_update,
    )


@method("oco.agent.hello", read_check_in)
async def hello(context: MethodContext) -> dict[str, Any]:
    """Record a check-in and return keys, pending jobs and what to report."""
    check_in: CheckIn = context.arguments
    caller = context.caller
    settings = await read_agent_settings(context.database)
    async with context.database.transaction() as connection:
        await _record_check_in(connection, context, check_in)
        # Job selection stays in the write transaction, because handing out
        # a download under a download limit reserves a slot.
        pending, pending_rule_jobs = await rule_jobs.pending_for_check_in(
            connection, caller.computer_id, context.delivery()
        )
    # The rest only reads, so it runs after the commit and does not hold the
    # write lock that every concurrent check-in waits for.
    async with context.database.reader() as connection:
        logins_since = await inventory.newest_login_text(connection, caller.computer_id)
        event_rules = await events.rules_with_since(connection, caller.computer_id)
        due_passwords = []
        if caller.generation == 2:
            due_passwords = await passwords.due_rules(connection, caller.computer_id)

    params: dict[str, Any] = {
        **_key_params(caller),
        "update": int(
            _inventory_due(caller.computer, check_in, settings.update_interval)
        ),
        "logins-since": logins_since,
        "software-jobs": _software_jobs(pending, pending_rule_jobs),
        "events": event_rules,
    }
    if caller.generation == 2:
        params["update-passwords"] = due_passwords
    return params


def _software_jobs(pending: list[Row], rule_pending: list[Row]) -> list[dict[str, Any]]:
    """Return the hello's `software-jobs`: container jobs, then rule jobs."""
    entries = [jobs.to_agent_job(job) for job in pending]
    return entries + [rule_jobs.to_agent_job(job) for job in rule_pending]


def _key_params(caller: Caller) -> dict[str, Any]:
    """Build `server-key` and `agent-key` of the hello response.

    Generation 1 agents compare `server-key` with their configured key on
    every hello, so it is always sent; generation 2 agents get keys only
    when new and refuse to overwrite a non-empty key.
    """
    computer = caller.computer
    if caller.keys_issued:
        return {"server-key": computer["server_key"], "agent-key": computer["agent_key"]}
    if caller.generation == 1:
        return {"server-key": computer["server_key"], "agent-key": None}
    return {"server-key": None, "agent-key": None}


async def _record_check_in(
    connection: aiosqlite.Connection, context: MethodContext, check_in: CheckIn
) -> None:
    computer_id = context.caller.computer_id
    values = {"remote_address": context.remote, **check_in.values}
    await computers.record_check_in(connection, computer_id, values)
    if check_in.networks is not None:
        await inventory.store_networks_if_changed(
            connection, computer_id, check_in.networks
        )
    if check_in.services is not None:
        await inventory.store_services(connection, computer_id, check_in.services)


def _inventory_due(computer: Row, check_in: CheckIn, interval: int) -> bool:
    """Return True when the agent must send its inventory.

    `computer` is the row authentication read, whose `last_update` and
    `refresh_requested` the check-in does not change, so no second query
    is needed. An inventory or refresh request committed in between is
    seen at the next check-in.
    """
    if check_in.force_update or computer["refresh_requested"]:
        return True
    if computer["last_update"] is None:
        return True
    return bool(computer["last_update"] <= timefmt.seconds_ago_text(interval))


def read_inventory(request: RpcRequest) -> dict[str, Any]:
    data = request.data()
    inventory.check_inventory(data)
    return data


@method("oco.agent.update", read_inventory)
async def update(context: MethodContext) -> dict[str, Any]:
    """Replace the computer's stored inventory with the reported one."""
    data = context.arguments
    async with context.database.transaction() as connection:
        await inventory.replace_inventory(connection, context.caller.computer_id, data)
    log.info(
        "inventory of computer %s updated (%s software entries)",
        context.caller.hostname,
        len(data["software"]) if isinstance(data.get("software"), list) else "no",
    )
    params: dict[str, Any] = {}
    if context.caller.generation == 2:
        # Policy management is not implemented; agents accept an empty set.
        params["policies"] = {}
    return params


def read_state_report(request: RpcRequest) -> jobs.StateReport:
    return jobs.read_state_report(request.data())


def check_state_report(report: jobs.StateReport) -> Authorizer:
    fetch_own_job = rule_jobs.fetch_own_job if report.dynamic else jobs.fetch_own_job

    async def check(connection: aiosqlite.Connection, caller: Caller) -> None:
        await fetch_own_job(connection, caller.computer, report.job_id)

    return check


@method("oco.agent.update_job_state", read_state_report, check_state_report)
async def update_job_state(context: MethodContext) -> dict[str, Any]:
    """Apply a job progress report and return whether the job succeeded."""
    report: jobs.StateReport = context.arguments
    async with context.database.transaction() as connection:
        if report.dynamic:
            succeeded = await rule_jobs.apply_state_report(
                connection, context.caller.computer, report,
                context.agent_config.max_job_retries,
            )
        else:
            succeeded = await jobs.apply_state_report(
                connection, context.caller.computer, report,
                context.agent_config.max_job_retries,
            )
    return {"job-succeeded": succeeded}


def read_events(request: RpcRequest) -> list[dict[str, Any]]:
    entries = require_list(request.data(), "events") or []
    events.check_events(entries)
    return entries


@method("oco.agent.events", read_events)
async def report_events(context: MethodContext) -> dict[str, Any]:
    """Store event log entries, ignoring incomplete ones and duplicates."""
    entries = context.arguments
    async with context.database.transaction() as connection:
        stored = await events.store(connection, context.caller.computer_id, entries)
    log.debug("stored %d of %d events from %s", stored, len(entries),
              context.caller.hostname)
    return {}


def read_passwords(request: RpcRequest) -> list[passwords.PasswordEntry]:
    return passwords.read_entries(require_list(request.data(), "passwords") or [])


def check_passwords(entries: list[passwords.PasswordEntry]) -> Authorizer:
    async def check(connection: aiosqlite.Connection, caller: Caller) -> None:
        await passwords.check_reported(connection, caller, entries)

    return check


@method("oco.agent.passwords", read_passwords, check_passwords)
async def report_passwords(context: MethodContext) -> dict[str, Any]:
    """Store rotated local admin passwords (generation 2 password rotation)."""
    await passwords.store_reported(
        context.database, context.password_key_path, context.caller, context.arguments
    )
    return {}
