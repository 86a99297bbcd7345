"""Event query rules and the event log entries agents report."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import aiosqlite
import orjson

from ocoserver import timefmt
from ocoserver.db import Database, Row, execute, fetch_all
from ocoserver.errors import AdminError, preview
from ocoserver.logtext import quote
from ocoserver.params import check_length
from ocoserver.store.inventory import (
    column_value,
    reported_time,
    timed_entries,
    to_column,
    to_text,
)

log = logging.getLogger("ocoserver.events")

EVENT_FIELDS = ("log", "timestamp", "provider", "level", "event_id")
# An event's `data` object is stored as one JSON text. Typical events carry
# a few kilobytes; the limit bounds what one stored event can hold.
MAX_EVENT_DATA_LENGTH = 1024 * 1024


# Limits of an event rule, which every check-in response carries. They are
# estimates with room to spare: a log name such as
# "Microsoft-Windows-PowerShell/Operational" has tens of characters, and a
# query is one XPath filter or journalctl match.
MAX_RULE_LOG_LENGTH = 256
MAX_RULE_QUERY_LENGTH = 4096
_QUERY_WHITESPACE = str.maketrans("\t\r\n", "   ")


async def add_rule(database: Database, log_name: str, query: str) -> int:
    if not log_name.strip():
        raise AdminError("event log name is empty: give --log, such as System")
    if not query.strip():
        raise AdminError("event query is empty: give --query")
    name = log_name.strip()
    if len(name) > MAX_RULE_LOG_LENGTH or not name.isprintable():
        raise AdminError(
            f"event log name {preview(name)} is invalid: use at most "
            f"{MAX_RULE_LOG_LENGTH} printable characters on one line"
        )
    # A pasted XPath query can span lines, so line breaks and tabs are kept.
    if len(query) > MAX_RULE_QUERY_LENGTH or not query.translate(
        _QUERY_WHITESPACE
    ).isprintable():
        raise AdminError(
            f"event query {preview(query)} is invalid: use at most "
            f"{MAX_RULE_QUERY_LENGTH} printable characters"
        )
    async with database.transaction() as connection:
        rule_id = await execute(
            connection,
            "INSERT INTO event_rule (log, query, created) VALUES (?, ?, ?)",
            (name, query, timefmt.now_text()),
        )
    log.info("event rule %d added for log %s", rule_id, quote(name))
    return rule_id


async def list_rules(database: Database) -> list[Row]:
    return await database.fetch_all(
        "SELECT id, log, query, created FROM event_rule ORDER BY id"
    )


async def remove_rule(database: Database, rule_id: int) -> None:
    async with database.transaction() as connection:
        cursor = await connection.execute(
            "DELETE FROM event_rule WHERE id = ?", (rule_id,)
        )
        if cursor.rowcount == 0:
            raise AdminError(
                f"event rule {rule_id} not found; 'ocoserver event-rule list' "
                "shows the ids"
            )
    log.info("event rule %d removed", rule_id)


async def rules_with_since(
    connection: aiosqlite.Connection, computer_id: int
) -> list[dict[str, str]]:
    """Return the hello's `events` list: each rule with the newest stored time."""
    rows = await fetch_all(
        connection,
        "SELECT r.log, r.query, (SELECT MAX(e.timestamp) FROM event e "
        "WHERE e.computer_id = :id AND e.log = r.log) AS since "
        "FROM event_rule r ORDER BY r.id",
        {"id": computer_id},
    )
    return [
        {"since": row["since"] or timefmt.EPOCH_TEXT, "log": row["log"],
         "query": row["query"]}
        for row in rows
    ]


def check_events(events: list[dict[str, Any]]) -> None:
    """Raise InvalidParams when a reported event has an invalid value.

    A time out of range is not an error here: `store` skips that event.
    """
    for index, event in enumerate(events):
        where = f"data.events[{index}]"
        for field in EVENT_FIELDS:
            column_value(event.get(field), f"{where}.{field}")
        check_length(_data_text(event), f"{where}.data", MAX_EVENT_DATA_LENGTH)
        if event.get("timestamp"):
            try:
                _event_time(event, index)
            except timefmt.AgentTimeOutOfRange:
                pass


def _event_time(event: dict[str, Any], index: int) -> str:
    """Return an event's time as stored UTC text (see `reported_time`)."""
    return reported_time(event["timestamp"], f"data.events[{index}].timestamp")


def _is_stored_event(event: Mapping[str, Any]) -> bool:
    """Return True for an event that is stored: one with a log name and a time."""
    return bool(event.get("log")) and bool(event.get("timestamp"))


def _data_text(event: dict[str, Any]) -> str:
    return orjson.dumps(event.get("data"), option=orjson.OPT_SORT_KEYS).decode()


async def store(
    connection: aiosqlite.Connection, computer_id: int, events: list[dict[str, Any]]
) -> int:
    """Store reported events, skipping incomplete entries and duplicates."""
    received = timefmt.now_text()
    rows = [
        (
            computer_id,
            to_text(event["log"]),
            timestamp,
            to_text(event.get("provider")),
            to_column(event.get("level")),
            to_column(event.get("event_id")),
            _data_text(event),
            received,
        )
        for event, timestamp in timed_entries(
            events, "events", _is_stored_event, computer_id
        )
    ]
    before = connection.total_changes
    await connection.executemany(
        "INSERT OR IGNORE INTO event (computer_id, log, timestamp, provider, level, "
        "event_id, data, received) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    return connection.total_changes - before


async def list_for_computer(
    database: Database, computer_id: int, limit: int = 100
) -> list[Row]:
    return await database.fetch_all(
        "SELECT log, timestamp, provider, level, event_id, data FROM event "
        "WHERE computer_id = ? ORDER BY timestamp DESC LIMIT ?",
        (computer_id, limit),
    )
