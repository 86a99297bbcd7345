"""The agent JSON-RPC methods, one function each, registered in METHODS.

Each method receives the authenticated caller and the request, does its
work in one database transaction, and returns `result.params`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiosqlite

from ocoserver import timefmt
from ocoserver.agent_auth import Caller
from ocoserver.config import AgentConfig
from ocoserver.db import Database, fetch_one
from ocoserver.errors import InvalidParams
from ocoserver.rpc import RpcRequest
from ocoserver.store import computers, events, inventory, jobs, passwords
from ocoserver.store.inventory import require_list, to_column
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
    agent_config: AgentConfig = AgentConfig()

    def delivery(self) -> jobs.Delivery:
        """Return the conditions for handing jobs to this request, at this moment."""
        return jobs.Delivery(
            address=self.remote,
            max_concurrent_downloads=self.agent_config.max_concurrent_downloads,
            download_timeout=self.agent_config.download_timeout,
        )


Method = Callable[[MethodContext], Awaitable[dict[str, Any]]]
METHODS: dict[str, Method] = {}


def method(name: str) -> Callable[[Method], Method]:
    def register(function: Method) -> Method:
        METHODS[name] = function
        return function

    return register


@method("oco.agent.hello")
async def hello(context: MethodContext) -> dict[str, Any]:
    """Record a check-in and return keys, pending jobs and what to report."""
    data = context.request.data()
    caller = context.caller
    networks = require_list(data, "networks")
    services = require_list(data, "services")
    settings = await read_agent_settings(context.database)
    async with context.database.transaction() as connection:
        await _record_check_in(connection, context, data, networks, services)
        row = await _fetch_update_state(connection, caller.computer_id)
        pending = await jobs.pending_for_computer(
            connection, caller.computer_id, context.delivery()
        )
        logins_since = await inventory.newest_login_text(connection, caller.computer_id)
        event_rules = await events.rules_with_since(connection, caller.computer_id)
        due_passwords = []
        if caller.generation == 2:
            due_passwords = await passwords.due_rules(connection, caller.computer_id)

    params: dict[str, Any] = {
        **_key_params(caller),
        "update": int(_inventory_due(row, data, settings.update_interval)),
        "logins-since": logins_since,
        "software-jobs": [jobs.to_agent_job(job) for job in pending],
        "events": event_rules,
    }
    if caller.generation == 2:
        params["update-passwords"] = due_passwords
    return params


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
    connection: aiosqlite.Connection,
    context: MethodContext,
    data: dict[str, Any],
    networks: list[dict[str, Any]] | None,
    services: list[dict[str, Any]] | None,
) -> None:
    computer_id = context.caller.computer_id
    await _store_check_in(connection, computer_id, context.remote, data)
    if networks is not None:
        await inventory.store_networks_if_changed(connection, computer_id, networks)
    if services is not None:
        await inventory.store_services(connection, computer_id, services)


async def _store_check_in(
    connection: aiosqlite.Connection, computer_id: int, remote: str, data: dict[str, Any]
) -> None:
    agent_version = data.get("agent_version")
    values = {
        "remote_address": remote,
        "agent_version": to_column(agent_version) if agent_version else None,
        "uptime": to_column(data.get("uptime")),
        "battery_level": to_column(data.get("battery_level")),
        "battery_status": to_column(data.get("battery_status")),
    }
    await computers.record_check_in(connection, computer_id, values)


async def _fetch_update_state(connection: aiosqlite.Connection, computer_id: int) -> dict[str, Any]:
    row = await fetch_one(
        connection,
        "SELECT last_update, refresh_requested FROM computer WHERE id = ?",
        (computer_id,),
    )
    assert row is not None
    return row


def _inventory_due(row: dict[str, Any], data: dict[str, Any], interval: int) -> bool:
    if data.get("force_update") is True or row["refresh_requested"]:
        return True
    if row["last_update"] is None:
        return True
    return bool(row["last_update"] <= timefmt.seconds_ago_text(interval))


@method("oco.agent.update")
async def update(context: MethodContext) -> dict[str, Any]:
    """Replace the computer's stored inventory with the reported one."""
    data = context.request.data()
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


@method("oco.agent.update_job_state")
async def update_job_state(context: MethodContext) -> dict[str, Any]:
    """Apply a job progress report and say whether the job succeeded."""
    report = _parse_state_report(context.request.data())
    async with context.database.transaction() as connection:
        succeeded = await jobs.apply_state_report(
            connection, context.caller.computer, report,
            context.agent_config.max_job_retries,
        )
    return {"job-succeeded": succeeded}


def _parse_state_report(data: dict[str, Any]) -> jobs.StateReport:
    if "job-id" not in data:
        raise InvalidParams("data.job-id is missing")
    state = data.get("state")
    if isinstance(state, bool) or not isinstance(state, int):
        raise InvalidParams(f"data.state {state!r} is invalid: use -1, 1, 2 or 3")
    return jobs.StateReport(
        job_id=jobs.parse_job_id(data["job-id"]),
        state=state,
        return_code=_parse_return_code(data.get("return-code")),
        message=inventory.to_text(data.get("message")),
        download_progress=_parse_progress(data.get("download-progress")),
    )


def _parse_return_code(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidParams(f"data.return-code {value!r} is not an integer")
    return value


def _parse_progress(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidParams(f"data.download-progress {value!r} is not a number")
    return float(value)


@method("oco.agent.events")
async def report_events(context: MethodContext) -> dict[str, Any]:
    """Store event log entries, ignoring incomplete ones and duplicates."""
    entries = require_list(context.request.data(), "events") or []
    async with context.database.transaction() as connection:
        stored = await events.store(connection, context.caller.computer_id, entries)
    log.debug("stored %d of %d events from %s", stored, len(entries),
              context.caller.hostname)
    return {}


@method("oco.agent.passwords")
async def report_passwords(context: MethodContext) -> dict[str, Any]:
    """Store rotated local admin passwords (generation 2 password rotation)."""
    entries = require_list(context.request.data(), "passwords") or []
    await passwords.store_reported(
        context.database, context.password_key_path, context.caller, entries
    )
    return {}
