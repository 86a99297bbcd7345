"""Server configuration: TOML file, environment and command line.

Defaults are declared once, on the dataclass fields. `load_config` reads
a TOML file into these frozen dataclasses, rejects unknown keys, wrong
types and numbers outside each key's range (`NUMBER_RANGES`) with the full
key path, then applies `OCOSERVER_*` environment overrides. Command-line
options are applied last by the CLI through `Config.with_overrides`.
"""

from __future__ import annotations

import dataclasses
import datetime
import ipaddress
import json
import math
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

DEFAULT_DATA_DIR = "./ocoserver-data"

# The largest request body accepted. An inventory with 10,000 software
# entries is about 1.5 MB of JSON; 64 MiB leaves room for agents that send
# far more (Windows event batches) without letting one request fill memory.
DEFAULT_MAX_BODY_SIZE = 64 * 1024 * 1024


UTF8_BOM = b"\xef\xbb\xbf"


class ConfigError(ValueError):
    """An invalid configuration value, named by its TOML key path."""


@dataclasses.dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    # Directory for the database and the package depot, created on start.
    data_dir: str = DEFAULT_DATA_DIR
    # Database file; empty means `<data_dir>/ocoserver.sqlite3`.
    database: str = ""
    # Package depot directory; empty means `<data_dir>/depot`.
    depot: str = ""
    max_body_size: int = DEFAULT_MAX_BODY_SIZE
    # Seconds a client may take to send a request body. aiohttp itself
    # waits forever, so a client sending a byte now and then would keep
    # its connection and its slot open.
    body_timeout: float = 60.0
    log_level: str = "info"
    # PEM certificate file (the full chain) and its private key; both set
    # means the server speaks HTTPS only.
    tls_cert: str = ""
    tls_key: str = ""
    # Seconds that running requests and downloads get to finish after
    # SIGTERM or SIGINT before they are cancelled.
    shutdown_timeout: float = 30.0
    # Reverse proxies whose X-Forwarded-For header names the agent's address:
    # IP addresses or CIDR networks (see client_address.py).
    trusted_proxies: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class AgentConfig:
    # Seconds a signed request may be older than the newest accepted one of
    # the same computer and still be accepted once (see signing.py).
    replay_window: float = 10.0
    # Seconds a request timestamp may lie ahead of the server clock.
    max_clock_skew: float = 300.0
    # Times a job that failed in transport (agent error -9999 or a broken
    # download) is put back to waiting; installer exit codes are never retried.
    max_job_retries: int = 3
    # Computers that may download packages at the same time; 0: no limit.
    max_concurrent_downloads: int = 0
    # Seconds without a progress report after which a download no longer
    # counts against max_concurrent_downloads (its agent may have died).
    download_timeout: float = 600.0


@dataclasses.dataclass(frozen=True)
class HousekeepingConfig:
    # Seconds between housekeeping passes; the first runs at server start.
    interval: float = 60.0
    # Ages in seconds after which records are deleted; 0 keeps them forever.
    # Succeeded jobs: 4 hours after they finished.
    purge_succeeded_jobs_after: int = 4 * 3600
    # Failed, expired and other unsuccessful jobs: 2 days after they ended.
    purge_failed_jobs_after: int = 2 * 86400
    # Logins, by login time; the newest login of each computer is kept.
    purge_logins_after: int = 14 * 86400
    # Events, by event time; the newest event of each computer and log is kept.
    purge_events_after: int = 7 * 86400
    # Payloads uploaded over the client API that no package uses, by upload
    # time: 1 day, which leaves a script time to create its package.
    purge_uploads_after: int = 86400


@dataclasses.dataclass(frozen=True)
class SecurityConfig:
    # Failed agent authentications from one address, or for one hostname,
    # within auth_failure_window seconds that block the address (see
    # auth_throttle.py); 0 turns blocking off.
    auth_failure_limit: int = 10
    auth_failure_window: float = 60.0
    # Seconds a blocked address receives HTTP 429 for every agent request.
    auth_block_time: float = 300.0
    # Addresses, and separately hostnames, whose failures are kept in memory.
    max_tracked_clients: int = 10000


@dataclasses.dataclass(frozen=True)
class ClientApiConfig:
    # Largest package payload accepted by PUT /api-client/package-upload, in
    # bytes. The upload is streamed to disk, so this bounds disk use only.
    max_upload_size: int = 8 * 1024 * 1024 * 1024


@dataclasses.dataclass(frozen=True)
class WebConfig:
    # Seconds since its last check-in within which a computer counts as online.
    online_window: float = 300.0
    # Seconds since its last inventory after which a computer counts as stale.
    stale_inventory: float = 7 * 24 * 3600.0
    # Seconds a web console session lasts after login.
    session_lifetime: float = 12 * 3600.0
    # Largest package payload accepted by the upload form, in bytes.
    max_upload_size: int = 8 * 1024 * 1024 * 1024


@dataclasses.dataclass(frozen=True)
class Config:
    server: ServerConfig = dataclasses.field(default_factory=ServerConfig)
    agent: AgentConfig = dataclasses.field(default_factory=AgentConfig)
    security: SecurityConfig = dataclasses.field(default_factory=SecurityConfig)
    housekeeping: HousekeepingConfig = dataclasses.field(
        default_factory=HousekeepingConfig
    )
    client_api: ClientApiConfig = dataclasses.field(default_factory=ClientApiConfig)
    web: WebConfig = dataclasses.field(default_factory=WebConfig)

    @property
    def data_dir(self) -> Path:
        return Path(self.server.data_dir)

    @property
    def database_path(self) -> Path:
        if self.server.database:
            return Path(self.server.database)
        return self.data_dir / "ocoserver.sqlite3"

    @property
    def depot_path(self) -> Path:
        if self.server.depot:
            return Path(self.server.depot)
        return self.data_dir / "depot"

    @property
    def password_key_path(self) -> Path:
        return self.data_dir / "password.key"

    def with_overrides(self, **server_values: Any) -> Config:
        """Return a copy with the given `[server]` keys replaced, skipping None."""
        values = {k: v for k, v in server_values.items() if v is not None}
        raw = {"server": values}
        _check_section_types(raw)
        values = _freeze_lists(values)
        return dataclasses.replace(
            self, server=dataclasses.replace(self.server, **values)
        )

    @classmethod
    def for_tests(cls, data_dir: Path, **server_values: Any) -> Config:
        """Build a config for a test: its own data directory, port 0."""
        return cls().with_overrides(data_dir=str(data_dir), port=0, **server_values)


_SECTIONS: dict[str, type[Any]] = {
    "server": ServerConfig,
    "agent": AgentConfig,
    "security": SecurityConfig,
    "housekeeping": HousekeepingConfig,
    "client_api": ClientApiConfig,
    "web": WebConfig,
}

_ENVIRONMENT: dict[str, tuple[str, str]] = {
    "OCOSERVER_HOST": ("server", "host"),
    "OCOSERVER_PORT": ("server", "port"),
    "OCOSERVER_DATA_DIR": ("server", "data_dir"),
    "OCOSERVER_LOG_LEVEL": ("server", "log_level"),
}

LOG_LEVELS = ("debug", "info", "warning", "error")


def load_config(
    path: Path | None = None, environ: Mapping[str, str] = os.environ
) -> Config:
    """Read the TOML file at `path` (if any), then apply `OCOSERVER_*` variables.

    Raises ConfigError naming the key and the bad value.
    """
    raw: dict[str, dict[str, Any]] = {}
    if path is not None:
        raw = _read_toml(path)
    for variable, (section, key) in _ENVIRONMENT.items():
        if variable in environ:
            value: Any = environ[variable]
            if key == "port":
                value = _parse_port_variable(variable, value)
            raw.setdefault(section, {})[key] = value
    _check_section_types(raw)
    sections = {
        name: _SECTIONS[name](**_freeze_lists(values)) for name, values in raw.items()
    }
    return Config(**sections)


def _freeze_lists(values: Mapping[str, Any]) -> dict[str, Any]:
    """Turn TOML arrays into tuples, so that the frozen config stays hashable."""
    return {
        key: tuple(value) if isinstance(value, list) else value
        for key, value in values.items()
    }


def _read_toml(path: Path) -> dict[str, dict[str, Any]]:
    try:
        raw = path.read_bytes()
        if raw.startswith(UTF8_BOM):
            # Some Windows editors write one; TOML does not allow it.
            raise ConfigError(
                f"config file {path} starts with a UTF-8 byte order mark; "
                "save it as UTF-8 without BOM"
            )
        document = tomllib.loads(raw.decode("utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file {path} not found") from None
    except IsADirectoryError:
        raise ConfigError(
            f"config file {path} is a directory; give the path of a TOML file"
        ) from None
    except PermissionError:
        raise ConfigError(
            f"config file {path} cannot be read: permission denied"
        ) from None
    except UnicodeDecodeError as error:
        raise ConfigError(
            f"config file {path} is not valid UTF-8 (byte {error.start}); "
            "save it as UTF-8"
        ) from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"config file {path} is not valid TOML: {error}") from None
    for name, values in document.items():
        if name not in _SECTIONS:
            known = ", ".join(f"[{s}]" for s in _SECTIONS)
            raise ConfigError(f"unknown section [{name}] in {path}; known: {known}")
        if not isinstance(values, dict):
            raise ConfigError(f"{name} must be a table like [{name}], not a value")
    return document


def _parse_port_variable(variable: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ConfigError(
            f"{variable}={value!r} is not a port number: use 0 to 65535"
        ) from None


def _check_section_types(raw: Mapping[str, Mapping[str, Any]]) -> None:
    for section, values in raw.items():
        fields = {f.name: f for f in dataclasses.fields(_SECTIONS[section])}
        for key, value in values.items():
            if key not in fields:
                raise ConfigError(
                    f"unknown key {section}.{key}; known keys: {', '.join(fields)}"
                )
            _check_value(f"{section}.{key}", fields[key].default, value)


def _check_value(key: str, default: Any, value: Any) -> None:
    if isinstance(default, tuple):
        _check_address_list(key, value)
        return
    _check_type(key, default, value)
    if key == "server.log_level" and value not in LOG_LEVELS:
        raise ConfigError(
            f"server.log_level = {toml_text(value)} is invalid: "
            f"use one of {', '.join(LOG_LEVELS)}"
        )
    if key in NUMBER_RANGES:
        NUMBER_RANGES[key].check(key, value)


def _check_type(key: str, default: Any, value: Any) -> None:
    """Raise ConfigError unless `value` has the type of the key's default."""
    if isinstance(default, bool):
        valid = isinstance(value, bool)
        expected = "true or false"
    elif isinstance(default, int):
        valid = isinstance(value, int) and not isinstance(value, bool)
        expected = f"a whole number such as {default}"
    elif isinstance(default, float):
        valid = isinstance(value, int | float) and not isinstance(value, bool)
        expected = f"a number such as {default:g}"
    else:
        valid = isinstance(value, str)
        expected = "a string in double quotes"
    if not valid:
        raise ConfigError(f"{key} = {toml_text(value)} is invalid: use {expected}")


def toml_text(value: Any) -> str:
    """Write a value read from TOML as it would appear in the file."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    if isinstance(value, float) and math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_text(item) for item in value) + "]"
    if isinstance(value, dict):
        pairs = ", ".join(f"{name} = {toml_text(item)}" for name, item in value.items())
        return "{ " + pairs + " }"
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    return str(value)


# Ten years of 365 days, in seconds: the upper bound of every duration. It
# is far beyond any useful age or timeout, and a time that far from now
# stays well inside the years that datetime and the stored
# 'YYYY-MM-DD HH:MM:SS' text can represent.
MAX_SECONDS = 10 * 365 * 86400
MAX_SECONDS_TEXT = f"{MAX_SECONDS} seconds (10 years)"

# Request bodies are held in memory, so their bound stays far below the
# memory of a small server. Package payloads are streamed to disk.
MAX_BODY_SIZE = 1024 * 1024 * 1024
MAX_UPLOAD_SIZE = 1024**4


@dataclasses.dataclass(frozen=True)
class NumberRange:
    """The values a numeric key accepts, and how the error message names them."""

    minimum: float
    maximum: float
    # Text for the accepted values, such as "0 to 65535".
    description: str
    # True when the minimum itself is invalid (durations must be positive).
    above_minimum: bool = False

    def check(self, key: str, value: float) -> None:
        low_ok = value > self.minimum if self.above_minimum else value >= self.minimum
        # `not (...)` also rejects nan, for which every comparison is false.
        if not (low_ok and value <= self.maximum):
            raise ConfigError(
                f"{key} = {toml_text(value)} is invalid: use {self.description}"
            )


def _seconds(zero_allowed: bool = False) -> NumberRange:
    if zero_allowed:
        return NumberRange(0, MAX_SECONDS, f"0 to {MAX_SECONDS_TEXT}")
    return NumberRange(
        0, MAX_SECONDS, f"more than 0 and at most {MAX_SECONDS_TEXT}", True
    )


def _count(minimum: int, maximum: int, unit: str = "") -> NumberRange:
    return NumberRange(minimum, maximum, f"{minimum} to {maximum}{unit}")


# Every numeric key with its accepted values. A duration of 0 means "keep
# forever" for the purge ages, and every other duration must be positive.
NUMBER_RANGES: dict[str, NumberRange] = {
    "server.port": _count(0, 65535),
    "server.max_body_size": _count(
        1024 * 1024, MAX_BODY_SIZE, " bytes (1 MiB to 1 GiB)"
    ),
    "server.body_timeout": _seconds(),
    "server.shutdown_timeout": _seconds(),
    "agent.replay_window": _seconds(),
    "agent.max_clock_skew": _seconds(),
    "agent.max_job_retries": _count(0, 1000),
    "agent.max_concurrent_downloads": _count(0, 1_000_000, " (0 means no limit)"),
    "agent.download_timeout": _seconds(),
    "security.auth_failure_limit": _count(0, 1_000_000, " (0 turns blocking off)"),
    "security.auth_failure_window": _seconds(),
    "security.auth_block_time": _seconds(),
    "security.max_tracked_clients": _count(1, 1_000_000),
    # A shorter interval would keep the server busy with housekeeping.
    "housekeeping.interval": NumberRange(1, MAX_SECONDS, f"1 to {MAX_SECONDS_TEXT}"),
    "housekeeping.purge_succeeded_jobs_after": _seconds(zero_allowed=True),
    "housekeeping.purge_failed_jobs_after": _seconds(zero_allowed=True),
    "housekeeping.purge_logins_after": _seconds(zero_allowed=True),
    "housekeeping.purge_events_after": _seconds(zero_allowed=True),
    "housekeeping.purge_uploads_after": _seconds(zero_allowed=True),
    "client_api.max_upload_size": _count(1, MAX_UPLOAD_SIZE, " bytes (at most 1 TiB)"),
    "web.online_window": _seconds(),
    "web.stale_inventory": _seconds(),
    "web.session_lifetime": _seconds(),
    "web.max_upload_size": _count(1, MAX_UPLOAD_SIZE, " bytes (at most 1 TiB)"),
}


def _check_address_list(key: str, value: Any) -> None:
    """Check a list of IP addresses or CIDR networks, such as trusted proxies."""
    if not isinstance(value, list | tuple):
        raise ConfigError(
            f"{key} = {toml_text(value)} is invalid: use a list such as "
            '["127.0.0.1", "10.0.0.0/8"]'
        )
    for entry in value:
        if not isinstance(entry, str):
            raise ConfigError(
                f"{key} entry {toml_text(entry)} is invalid: use a string such as "
                '"10.0.0.0/8"'
            )
        try:
            ipaddress.ip_network(entry.strip())
        except ValueError as error:
            raise ConfigError(
                f"{key} entry {toml_text(entry)} is invalid ({error}): "
                "use an IP address or a CIDR network such as 10.0.0.0/8"
            ) from None
