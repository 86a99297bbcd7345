"""Server settings kept in the database, changed with `ocoserver setting set`."""

from __future__ import annotations

import logging
import time
import weakref
from dataclasses import dataclass

from ocoserver.db import Database
from ocoserver.errors import AdminError

log = logging.getLogger("ocoserver.settings")

SELF_REGISTRATION = "agent-self-registration-enabled"
REGISTRATION_KEY = "agent-registration-key"
UPDATE_INTERVAL = "agent-update-interval"

# Bounds of agent-update-interval in seconds. A year is far beyond any
# useful inventory age and keeps time arithmetic far from overflow.
MIN_UPDATE_INTERVAL = 60
MAX_UPDATE_INTERVAL = 366 * 24 * 3600

# Internal value, not listed or settable: the reserve of response timestamps.
_RESPONSE_TIMESTAMP_RESERVE = "response-timestamp-reserve"

# Seconds for which `read_agent_settings` reuses the settings it read. Every
# agent request needs them, and a query costs a trip to a connection thread.
# A change through the same Database object (`set_value`) takes effect at
# once. A change from another process, such as `ocoserver setting set` while
# the server runs, takes effect within this time.
AGENT_SETTINGS_MAX_AGE = 1.0


@dataclass(frozen=True)
class SettingDefinition:
    key: str
    default: str
    description: str
    secret: bool = False


DEFINITIONS = {
    definition.key: definition
    for definition in (
        SettingDefinition(
            SELF_REGISTRATION,
            "0",
            "1 lets unknown computers register with the registration key, 0 rejects them",
        ),
        SettingDefinition(
            REGISTRATION_KEY,
            "",
            "key that unknown computers present to register themselves",
            secret=True,
        ),
        SettingDefinition(
            UPDATE_INTERVAL,
            "7200",
            "seconds after which an agent is asked for a new inventory",
        ),
    )
}


@dataclass(frozen=True)
class AgentSettings:
    self_registration: bool
    registration_key: str
    update_interval: int


async def read_all(database: Database) -> dict[str, str]:
    """Return every defined setting, stored value or default."""
    rows = await database.fetch_all("SELECT key, value FROM setting")
    stored = {row["key"]: row["value"] for row in rows}
    return {key: stored.get(key, d.default) for key, d in DEFINITIONS.items()}


# The agent settings each open Database read last, with the monotonic time
# at which that read began, and the time of its last `set_value`. A read
# that began before a change is never reused, because it may have seen the
# old values.
_agent_settings_cache: weakref.WeakKeyDictionary[
    Database, tuple[float, AgentSettings]
] = weakref.WeakKeyDictionary()
_settings_changed: weakref.WeakKeyDictionary[Database, float] = (
    weakref.WeakKeyDictionary()
)


async def read_agent_settings(database: Database) -> AgentSettings:
    """Return the settings agent requests use, at most AGENT_SETTINGS_MAX_AGE old.

    NOTE: the age limit is time-based because `PRAGMA data_version` on a
    reader connection also changes with the server's own commits, and
    checking it on every request would cost the same trip as reading the
    settings.
    """
    now = time.monotonic()
    cached = _agent_settings_cache.get(database)
    if (
        cached is not None
        and now - cached[0] < AGENT_SETTINGS_MAX_AGE
        and cached[0] > _settings_changed.get(database, float("-inf"))
    ):
        return cached[1]
    values = await read_all(database)
    agent_settings = AgentSettings(
        self_registration=values[SELF_REGISTRATION] == "1",
        registration_key=values[REGISTRATION_KEY],
        update_interval=int(values[UPDATE_INTERVAL]),
    )
    _agent_settings_cache[database] = (now, agent_settings)
    return agent_settings


def validate(key: str, value: str) -> str:
    """Return the normalized value, or raise AdminError naming the problem."""
    if key not in DEFINITIONS:
        raise AdminError(
            f"unknown setting {key!r}; known settings: {', '.join(DEFINITIONS)}"
        )
    if key == SELF_REGISTRATION:
        normalized = {"1": "1", "true": "1", "on": "1", "yes": "1",
                      "0": "0", "false": "0", "off": "0", "no": "0"}
        if value.lower() not in normalized:
            raise AdminError(f"{key} = {value!r} is invalid: use 1 or 0")
        return normalized[value.lower()]
    if key == UPDATE_INTERVAL:
        if not value.isascii() or not value.isdigit() or not (
            MIN_UPDATE_INTERVAL <= int(value) <= MAX_UPDATE_INTERVAL
        ):
            raise AdminError(
                f"{key} = {value!r} is invalid: use a whole number of seconds "
                f"from {MIN_UPDATE_INTERVAL} to {MAX_UPDATE_INTERVAL}"
            )
        return str(int(value))
    if key == REGISTRATION_KEY and value and len(value) < 8:
        raise AdminError(
            f"{key} is too short ({len(value)} characters): use at least 8, "
            "or an empty value to disable self-registration"
        )
    return value


async def set_value(database: Database, key: str, value: str) -> str:
    """Validate and store a setting; return the stored value."""
    value = validate(key, value)
    async with database.transaction() as connection:
        await connection.execute(
            "INSERT INTO setting (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )
    _settings_changed[database] = time.monotonic()
    log.info("setting %s changed to %s", key, display_value(key, value))
    return value


def display_value(key: str, value: str) -> str:
    """Return a setting's value for output and logs, with a secret hidden.

    An empty value is shown as "(empty)", also for a secret, because an
    empty secret reveals nothing and means the secret is unset.
    """
    if value == "":
        return "(empty)"
    if DEFINITIONS[key].secret:
        return "(hidden)"
    return value


async def get_response_timestamp_reserve(database: Database) -> float:
    value = await database.fetch_value(
        "SELECT value FROM setting WHERE key = ?", (_RESPONSE_TIMESTAMP_RESERVE,)
    )
    return float(value) if value is not None else 0.0


async def set_response_timestamp_reserve(database: Database, reserve: float) -> None:
    async with database.transaction() as connection:
        await connection.execute(
            "INSERT INTO setting (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (_RESPONSE_TIMESTAMP_RESERVE, repr(reserve)),
        )
