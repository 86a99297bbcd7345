"""Computer inventory: hardware and OS values, lists, software and logins.

An `oco.agent.update` replaces the stored inventory inside the caller's
transaction, so a crash never leaves half of it. A list missing from the
report means "not reported" and keeps what is stored; an empty list empties
it. Software entries that did not change keep their row and first-seen
time, so an unchanged software list costs no writes at all.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import aiosqlite
import orjson

from ocoserver import timefmt
from ocoserver.db import Database, Row, fetch_all
from ocoserver.errors import InvalidParams
from ocoserver.params import check_length

log = logging.getLogger("ocoserver.inventory")

# Maximum length of one stored inventory value, in characters. Real values
# are typically a few kilobytes at most (package descriptions), and the
# limit keeps one field from filling a row with megabytes. Nested values
# count as the JSON text they are stored as.
MAX_VALUE_LENGTH = 65536

SCALAR_FIELDS = (
    "agent_version", "os", "os_version", "os_license", "os_language",
    "kernel_version", "architecture", "cpu", "gpu", "ram", "serial",
    "manufacturer", "model", "bios_version", "uptime", "boot_type",
    "secure_boot", "domain", "battery_level", "battery_status",
)  # fmt: skip

# Stored column -> keys the agent may use for it, first match wins.
LIST_TABLES: dict[str, tuple[str, dict[str, tuple[str, ...]]]] = {
    "networks": ("computer_network", {
        "address": ("addr", "address"), "netmask": ("netmask",),
        "broadcast": ("broadcast",), "mac": ("mac",), "interface": ("interface",),
    }),
    "screens": ("computer_screen", {
        key: (key,) for key in ("name", "manufacturer", "manufactured",
                                "resolution", "size", "type", "serialno",
                                "technology")
    }),
    "printers": ("computer_printer", {
        key: (key,) for key in ("name", "driver", "paper", "dpi", "uri", "status")
    }),
    "partitions": ("computer_partition", {
        key: (key,) for key in ("device", "mountpoint", "filesystem", "size",
                                "free", "name", "serial", "uuid", "encrypted")
    }),
    "users": ("computer_user", {
        key: (key,) for key in ("username", "display_name", "uid", "gid", "home",
                                "shell", "disabled")
    }),
    "devices": ("computer_device", {
        key: (key,) for key in ("subclass", "vendor", "product", "serial", "name")
    }),
}  # fmt: skip


def to_column(value: Any) -> Any:
    """Convert a JSON value into what one SQLite column stores faithfully."""
    if isinstance(value, bool):
        return int(value)
    if value is None or isinstance(value, int | float | str):
        return value
    return orjson.dumps(value).decode("utf-8")


def to_text(value: Any) -> str:
    """Convert a JSON value into text for a NOT NULL text column."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return str(to_column(value))


def require_list(data: Mapping[str, Any], key: str) -> list[dict[str, Any]] | None:
    """Return `data[key]` as a list of objects, None when absent."""
    if key not in data or data[key] is None:
        return None
    items = data[key]
    if not isinstance(items, list):
        raise InvalidParams(f"data.{key} must be a list, not {type(items).__name__}")
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise InvalidParams(
                f"data.{key}[{index}] must be an object, not {type(item).__name__}"
            )
    return items


SOFTWARE_FIELDS = {key: (key,) for key in ("name", "version", "description")}
LOGIN_FIELDS = {
    key: (key,) for key in ("username", "display_name", "console", "timestamp", "guid")
}
SERVICE_FIELDS = {
    "name": ("name",), "status": ("status",), "metrics": ("metrics", "merics"),
    "details": ("details",),
}  # fmt: skip


def column_value(value: Any, where: str) -> Any:
    """Return to_column(value), raising InvalidParams when its text is too long."""
    stored = to_column(value)
    if isinstance(stored, str):
        check_length(stored, where, MAX_VALUE_LENGTH)
    return stored


def check_fields(data: Mapping[str, Any], fields: tuple[str, ...], where: str) -> None:
    """Check the stored length of each of `fields` that `data` contains."""
    for field in fields:
        if field in data:
            column_value(data[field], f"{where}.{field}")


def read_list(
    data: Mapping[str, Any], key: str, fields: Mapping[str, tuple[str, ...]]
) -> list[dict[str, Any]] | None:
    """Return `data[key]` like require_list, checking each stored field's length."""
    items = require_list(data, key)
    for index, item in enumerate(items or []):
        for column, keys in fields.items():
            column_value(_pick(item, keys), f"data.{key}[{index}].{column}")
    return items


def check_inventory(data: Mapping[str, Any]) -> None:
    """Validate everything replace_inventory stores, before any of it is written."""
    check_fields(data, SCALAR_FIELDS, "data")
    for name, (_, columns) in LIST_TABLES.items():
        read_list(data, name, columns)
    read_list(data, "software", SOFTWARE_FIELDS)
    for index, login in enumerate(read_list(data, "logins", LOGIN_FIELDS) or []):
        if _is_stored_login(login):
            try:
                login_time(login, index)
            except timefmt.AgentTimeOutOfRange:
                # `_append_logins` leaves this login out, so that a computer
                # with a wrong clock does not have its inventory rejected.
                pass


def _is_stored_login(login: Mapping[str, Any]) -> bool:
    """Return True for a login entry that is stored: one with a username and a time."""
    return bool(login.get("username")) and bool(login.get("timestamp"))


def reported_time(value: Any, where: str) -> str:
    """Return a time an agent reported as stored UTC text.

    Raises InvalidParams naming `where` for a value that is not a time, and
    lets timefmt.AgentTimeOutOfRange pass for a time out of range. One
    stored form makes the newest login or event the largest text, which
    `logins-since`, the `since` of event rules and the purges rely on.
    """
    try:
        return timefmt.parse_agent_time(value)
    except timefmt.AgentTimeOutOfRange:
        raise
    except ValueError as error:
        raise InvalidParams(f"{where} {error}") from None


def timed_entries(
    entries: list[dict[str, Any]],
    section: str,
    is_stored: Callable[[Mapping[str, Any]], bool],
    computer_id: int,
) -> Iterator[tuple[dict[str, Any], str]]:
    """Yield each entry to store with its time as stored text.

    Entries whose time is out of range are left out, and one warning for
    all of them is logged once the entries are consumed.
    """
    skipped = []
    for index, entry in enumerate(entries):
        if not is_stored(entry):
            continue
        where = f"data.{section}[{index}].timestamp"
        try:
            timestamp = reported_time(entry["timestamp"], where)
        except timefmt.AgentTimeOutOfRange as error:
            skipped.append(f"{section}[{index}] {error}")
            continue
        yield entry, timestamp
    if skipped:
        log.warning(
            "skipped %d %s of computer %d with a time out of range, such as %s; "
            "check the computer's clock",
            len(skipped), section, computer_id, skipped[0],
        )


def login_time(login: Mapping[str, Any], index: int) -> str:
    """Return a login's time as stored UTC text (see `reported_time`)."""
    return reported_time(login["timestamp"], f"data.logins[{index}].timestamp")


def _pick(item: Mapping[str, Any], keys: tuple[str, ...]) -> Any:
    for key in keys:
        if key in item:
            return item[key]
    return None


async def replace_list(
    connection: aiosqlite.Connection,
    computer_id: int,
    name: str,
    items: list[dict[str, Any]],
) -> None:
    """Replace one inventory list (networks, screens, ...) of a computer."""
    table, columns = LIST_TABLES[name]
    column_names = list(columns)
    rows = [
        [computer_id, *(to_column(_pick(item, columns[c])) for c in column_names)]
        for item in items
    ]
    await connection.execute(f"DELETE FROM {table} WHERE computer_id = ?", (computer_id,))
    placeholders = ", ".join("?" for _ in range(len(column_names) + 1))
    await connection.executemany(
        f"INSERT INTO {table} (computer_id, {', '.join(column_names)}) "
        f"VALUES ({placeholders})",
        rows,
    )


async def store_networks_if_changed(
    connection: aiosqlite.Connection, computer_id: int, networks: list[dict[str, Any]]
) -> None:
    """Replace the networks a hello reports, writing only when they differ."""
    _, columns = LIST_TABLES["networks"]
    wanted = [tuple(to_column(_pick(n, columns[c])) for c in columns) for n in networks]
    stored_rows = await fetch_all(
        connection,
        "SELECT address, netmask, broadcast, mac, interface FROM computer_network "
        "WHERE computer_id = ? ORDER BY id",
        (computer_id,),
    )
    stored = [tuple(row.values()) for row in stored_rows]
    if stored != wanted:
        await replace_list(connection, computer_id, "networks", networks)


async def replace_inventory(
    connection: aiosqlite.Connection, computer_id: int, data: Mapping[str, Any]
) -> None:
    """Store a full inventory report; lists missing from `data` are kept."""
    lists = {name: require_list(data, name) for name in LIST_TABLES}
    software = require_list(data, "software")
    logins = require_list(data, "logins")

    scalars = {f: to_column(data[f]) for f in SCALAR_FIELDS if f in data}
    assignments = "".join(f"{field} = :{field}, " for field in scalars)
    await connection.execute(
        f"UPDATE computer SET {assignments}last_update = :now, refresh_requested = 0 "
        "WHERE id = :id",
        {**scalars, "now": timefmt.now_text(), "id": computer_id},
    )

    for name, items in lists.items():
        if items is not None:
            await replace_list(connection, computer_id, name, items)
    if software is not None:
        await _merge_software(connection, computer_id, software)
    if logins is not None:
        await _append_logins(connection, computer_id, logins)


def _software_key(item: Mapping[str, Any]) -> tuple[str, str, str]:
    return (
        to_text(item.get("name")),
        to_text(item.get("version")),
        to_text(item.get("description")),
    )


async def _merge_software(
    connection: aiosqlite.Connection, computer_id: int, software: list[dict[str, Any]]
) -> None:
    stored = await fetch_all(
        connection,
        "SELECT id, name, version, description FROM computer_software "
        "WHERE computer_id = ?",
        (computer_id,),
    )
    # A computer can report the same entry twice, so match as a multiset.
    unmatched: dict[tuple[str, str, str], list[int]] = defaultdict(list)
    for row in stored:
        unmatched[(row["name"], row["version"], row["description"])].append(row["id"])
    new_entries = []
    for item in software:
        key = _software_key(item)
        if unmatched.get(key):
            unmatched[key].pop()
        else:
            new_entries.append(key)
    removed = [(row_id,) for ids in unmatched.values() for row_id in ids]

    if removed:
        await connection.executemany(
            "DELETE FROM computer_software WHERE id = ?", removed
        )
    if new_entries:
        now = timefmt.now_text()
        await connection.executemany(
            "INSERT INTO computer_software "
            "(computer_id, name, version, description, first_seen) "
            "VALUES (?, ?, ?, ?, ?)",
            [(computer_id, *key, now) for key in new_entries],
        )


async def _append_logins(
    connection: aiosqlite.Connection, computer_id: int, logins: list[dict[str, Any]]
) -> None:
    rows = [
        (
            computer_id,
            to_text(login.get("username")),
            to_text(login.get("display_name")),
            to_text(login.get("console")),
            timestamp,
            to_column(login.get("guid")),
        )
        for login, timestamp in timed_entries(
            logins, "logins", _is_stored_login, computer_id
        )
    ]
    await connection.executemany(
        "INSERT OR IGNORE INTO computer_login "
        "(computer_id, username, display_name, console, timestamp, guid) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        rows,
    )


async def newest_login_text(connection: aiosqlite.Connection, computer_id: int) -> str:
    """Return the newest stored login time, or the epoch the agent expects."""
    rows = await fetch_all(
        connection,
        "SELECT MAX(timestamp) AS newest FROM computer_login WHERE computer_id = ?",
        (computer_id,),
    )
    newest = rows[0]["newest"]
    return newest if newest else timefmt.EPOCH_TEXT


async def store_services(
    connection: aiosqlite.Connection, computer_id: int, services: list[dict[str, Any]]
) -> None:
    """Replace the service checks a hello reports, keeping each one's change time.

    Agent 1.2.0 spells the metrics key `merics`; both spellings are read.
    """
    stored = {
        row["name"]: row
        for row in await fetch_all(
            connection,
            "SELECT name, status, metrics, details, last_change FROM computer_service "
            "WHERE computer_id = ?",
            (computer_id,),
        )
    }
    now = timefmt.now_text()
    rows = []
    for service in services:
        name = to_text(service.get("name"))
        status = to_text(service.get("status"))
        metrics = to_text(service.get("metrics", service.get("merics")))
        details = to_text(service.get("details"))
        previous = stored.get(name)
        unchanged = previous is not None and (
            previous["status"], previous["metrics"], previous["details"]
        ) == (status, metrics, details)
        last_change = previous["last_change"] if unchanged and previous else now
        rows.append((computer_id, name, status, metrics, details, last_change))
    await connection.execute(
        "DELETE FROM computer_service WHERE computer_id = ?", (computer_id,)
    )
    await connection.executemany(
        "INSERT OR REPLACE INTO computer_service "
        "(computer_id, name, status, metrics, details, last_change) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        rows,
    )


_SECTION_QUERIES: dict[str, str] = {
    "networks": "SELECT address, netmask, broadcast, mac, interface "
    "FROM computer_network WHERE computer_id = ? ORDER BY id",
    "screens": "SELECT name, manufacturer, manufactured, resolution, size, type, "
    "serialno, technology FROM computer_screen WHERE computer_id = ? ORDER BY id",
    "printers": "SELECT name, driver, paper, dpi, uri, status FROM computer_printer "
    "WHERE computer_id = ? ORDER BY id",
    "partitions": "SELECT device, mountpoint, filesystem, size, free, name, serial, "
    "uuid, encrypted FROM computer_partition WHERE computer_id = ? ORDER BY id",
    "software": "SELECT name, version, description, first_seen "
    "FROM computer_software WHERE computer_id = ? ORDER BY name, version",
    "logins": "SELECT username, display_name, console, timestamp, guid "
    "FROM computer_login WHERE computer_id = ? ORDER BY timestamp DESC",
    "users": "SELECT username, display_name, uid, gid, home, shell, disabled "
    "FROM computer_user WHERE computer_id = ? ORDER BY id",
    "devices": "SELECT subclass, vendor, product, serial, name FROM computer_device "
    "WHERE computer_id = ? ORDER BY id",
    "services": "SELECT name, status, metrics, details, last_change "
    "FROM computer_service WHERE computer_id = ? ORDER BY name",
}


async def read_sections(database: Database, computer_id: int) -> dict[str, list[Row]]:
    """Return every inventory list of a computer, keyed by section name."""
    async with database.reader() as connection:
        return {
            name: await fetch_all(connection, sql, (computer_id,))
            for name, sql in _SECTION_QUERIES.items()
        }

