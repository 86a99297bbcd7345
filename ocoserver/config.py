"""Server configuration: TOML file, environment and command line.

Defaults are declared once, on the dataclass fields. `load_config` reads
a TOML file into these frozen dataclasses, rejects unknown keys and wrong
types with the full key path, then applies `OCOSERVER_*` environment
overrides. Command-line options are applied last by the CLI through
`Config.with_overrides`.
"""

from __future__ import annotations

import dataclasses
import ipaddress
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
        with path.open("rb") as file:
            document = tomllib.load(file)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} not found") from None
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
        raise ConfigError(f"{variable}={value!r} is not a port number") from None


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
    expected = type(default)
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, expected) or isinstance(value, bool) != isinstance(
        default, bool
    ):
        raise ConfigError(
            f"{key} = {value!r} is invalid: expected {expected.__name__}"
        )
    if key == "server.port" and not 0 <= value <= 65535:
        raise ConfigError(f"server.port = {value} is invalid: use 0 to 65535")
    if key == "server.max_body_size" and value < 1024 * 1024:
        raise ConfigError(
            f"server.max_body_size = {value} is invalid: use at least 1048576 bytes"
        )
    if key == "client_api.max_upload_size" and value < 1:
        raise ConfigError(f"{key} = {value} is invalid: use a positive number of bytes")
    if key == "server.log_level" and value not in LOG_LEVELS:
        raise ConfigError(
            f"server.log_level = {value!r} is invalid: use one of {', '.join(LOG_LEVELS)}"
        )
    if key in ("server.shutdown_timeout", "server.body_timeout") and value <= 0:
        raise ConfigError(f"{key} = {value} is invalid: use a positive number of seconds")
    if key == "security.auth_failure_limit" and value < 0:
        raise ConfigError(
            f"{key} = {value} is invalid: use 0 (no blocking) or a positive number"
        )
    if key.startswith(("security.", "web.")) and key != "security.auth_failure_limit":
        if value <= 0:
            raise ConfigError(f"{key} = {value} is invalid: use a positive number")
    _check_number_range(key, value)


# Keys where 0 is meaningful (no retries, no limit, keep forever); every
# other number in [agent] and [housekeeping] must be positive.
_ZERO_ALLOWED = {
    "agent.max_job_retries",
    "agent.max_concurrent_downloads",
    "housekeeping.purge_succeeded_jobs_after",
    "housekeeping.purge_failed_jobs_after",
    "housekeeping.purge_logins_after",
    "housekeeping.purge_events_after",
    "housekeeping.purge_uploads_after",
}


def _check_number_range(key: str, value: Any) -> None:
    if not key.startswith(("agent.", "housekeeping.")):
        return
    if key in _ZERO_ALLOWED and value < 0:
        raise ConfigError(f"{key} = {value} is invalid: use 0 or a positive number")
    if key not in _ZERO_ALLOWED and value <= 0:
        raise ConfigError(f"{key} = {value} is invalid: use a positive number")


def _check_address_list(key: str, value: Any) -> None:
    """Check a list of IP addresses or CIDR networks, such as trusted proxies."""
    if not isinstance(value, list | tuple):
        raise ConfigError(
            f"{key} = {value!r} is invalid: expected a list such as "
            '["127.0.0.1", "10.0.0.0/8"]'
        )
    for entry in value:
        if not isinstance(entry, str):
            raise ConfigError(
                f"{key} entry {entry!r} is invalid: expected a string such as "
                '"10.0.0.0/8"'
            )
        try:
            ipaddress.ip_network(entry.strip())
        except ValueError as error:
            raise ConfigError(
                f"{key} entry {entry!r} is invalid ({error}): use an IP address or "
                "a CIDR network such as 10.0.0.0/8"
            ) from None
