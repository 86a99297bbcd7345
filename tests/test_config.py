"""Configuration loading: defaults, TOML, environment and errors."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import NamedTuple

import pytest

from ocoserver.cli import main as cli_main
from ocoserver.config import (
    MAX_SECONDS,
    NUMBER_RANGES,
    Config,
    ConfigError,
    load_config,
)

EXAMPLE = Path(__file__).parent.parent / "config.example.toml"


def test_example_matches_defaults():
    assert load_config(EXAMPLE, environ={}) == Config()


def test_defaults_without_file():
    config = load_config(None, environ={})

    assert config.server.host == "127.0.0.1"
    assert config.server.port == 8080
    assert config.database_path == Path("ocoserver-data/ocoserver.sqlite3")
    assert config.depot_path == Path("ocoserver-data/depot")


def test_environment_overrides_file(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('[server]\nport = 9000\ndata_dir = "/srv/oco"\n')

    config = load_config(path, environ={"OCOSERVER_PORT": "9100"})

    assert config.server.port == 9100
    assert config.data_dir == Path("/srv/oco")


def test_command_line_overrides_environment():
    config = load_config(None, environ={"OCOSERVER_HOST": "0.0.0.0"})

    overridden = config.with_overrides(host="127.0.0.2", port=None)

    assert overridden.server.host == "127.0.0.2"
    assert overridden.server.port == 8080


def test_shutdown_timeout_from_file(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text("[server]\nshutdown_timeout = 5\n")

    config = load_config(path, environ={})

    assert config.server.shutdown_timeout == 5.0


class ConfigCase(NamedTuple):
    text: str
    message: str


BAD_CONFIGS = {
    "unknown-key": ConfigCase("[server]\nprot = 1\n", "unknown key server.prot"),
    "unknown-section": ConfigCase("[gui]\nport = 1\n", "unknown section [gui]"),
    "wrong-type": ConfigCase(
        '[server]\nport = "80"\n',
        'server.port = "80" is invalid: use a whole number such as 8080',
    ),
    "port-range": ConfigCase("[server]\nport = 70000\n", "server.port = 70000"),
    "bool-for-int": ConfigCase(
        "[server]\nport = true\n", "server.port = true is invalid"
    ),
    "bool-for-float": ConfigCase(
        "[web]\nsession_lifetime = false\n",
        "web.session_lifetime = false is invalid: use a number such as 43200",
    ),
    "number-for-string": ConfigCase(
        "[server]\nhost = 80\n", "server.host = 80 is invalid: use a string"
    ),
    "nan-duration": ConfigCase(
        "[agent]\nreplay_window = nan\n", "agent.replay_window = nan is invalid"
    ),
    "small-body": ConfigCase("[server]\nmax_body_size = 10\n", "server.max_body_size"),
    "log-level": ConfigCase('[server]\nlog_level = "loud"\n', "server.log_level"),
    "negative-window": ConfigCase("[agent]\nreplay_window = -1\n", "agent.replay_window"),
    "negative-limit": ConfigCase(
        "[security]\nauth_failure_limit = -1\n", "security.auth_failure_limit = -1"
    ),
    "zero-block-time": ConfigCase(
        "[security]\nauth_block_time = 0\n", "security.auth_block_time = 0"
    ),
    "float-limit": ConfigCase(
        "[security]\nauth_failure_limit = 2.5\n", "use a whole number such as 10"
    ),
    "zero-body-timeout": ConfigCase(
        "[server]\nbody_timeout = 0\n", "server.body_timeout = 0 is invalid"
    ),
    "zero-shutdown": ConfigCase(
        "[server]\nshutdown_timeout = 0\n", "server.shutdown_timeout = 0 is invalid"
    ),
    "proxies-not-list": ConfigCase(
        '[server]\ntrusted_proxies = "10.0.0.1"\n', 'server.trusted_proxies = "10.0.0.1"'
    ),
    "proxy-not-string": ConfigCase(
        "[server]\ntrusted_proxies = [10]\n", "server.trusted_proxies entry 10"
    ),
    "proxy-not-address": ConfigCase(
        '[server]\ntrusted_proxies = ["proxy.lan"]\n',
        'server.trusted_proxies entry "proxy.lan" is invalid',
    ),
    "proxy-host-bits": ConfigCase(
        '[server]\ntrusted_proxies = ["10.0.0.1/8"]\n', "has host bits set"
    ),
    "negative-retries": ConfigCase(
        "[agent]\nmax_job_retries = -1\n", "agent.max_job_retries = -1"
    ),
    "zero-download-timeout": ConfigCase(
        "[agent]\ndownload_timeout = 0\n", "agent.download_timeout = 0"
    ),
    "zero-interval": ConfigCase(
        "[housekeeping]\ninterval = 0\n", "housekeeping.interval = 0"
    ),
    "tiny-interval": ConfigCase(
        "[housekeeping]\ninterval = 5e-324\n",
        "housekeeping.interval = 5e-324 is invalid: use 1 to",
    ),
    "negative-age": ConfigCase(
        "[housekeeping]\npurge_events_after = -5\n", "housekeeping.purge_events_after"
    ),
    "zero-online-window": ConfigCase(
        "[web]\nonline_window = 0\n", "web.online_window = 0"
    ),
    "not-toml": ConfigCase("[server\n", "is not valid TOML"),
    "value-for-table": ConfigCase("server = 1\n", "must be a table"),
}


@pytest.mark.parametrize("case", BAD_CONFIGS.values(), ids=BAD_CONFIGS.keys())
def test_invalid_config_names_key(tmp_path, case):
    path = tmp_path / "config.toml"
    path.write_text(case.text)

    with pytest.raises(ConfigError) as raised:
        load_config(path, environ={})

    assert case.message in str(raised.value)


def test_trusted_proxies_loaded(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('[server]\ntrusted_proxies = ["127.0.0.1", "10.0.0.0/8", "::1"]\n')

    config = load_config(path, environ={})

    assert config.server.trusted_proxies == ("127.0.0.1", "10.0.0.0/8", "::1")


def test_zero_cap_and_ages_allowed(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text(
        "[agent]\nmax_concurrent_downloads = 0\nmax_job_retries = 0\n"
        "[housekeeping]\npurge_logins_after = 0\n"
    )

    config = load_config(path, environ={})

    assert config.agent.max_job_retries == 0
    assert config.housekeeping.purge_logins_after == 0


def test_missing_file_named():
    with pytest.raises(ConfigError, match="nowhere.toml not found"):
        load_config(Path("/nowhere.toml"), environ={})


def test_directory_as_file_named(tmp_path):
    with pytest.raises(ConfigError, match="is a directory; give the path of a TOML file"):
        load_config(tmp_path, environ={})


def test_non_utf8_file_named(tmp_path):
    path = tmp_path / "config.toml"
    path.write_bytes(b"[server]\nhost = '\xff'\n")

    with pytest.raises(ConfigError, match=r"is not valid UTF-8 \(byte 17\)"):
        load_config(path, environ={})


def test_byte_order_mark_named(tmp_path):
    path = tmp_path / "config.toml"
    path.write_bytes(b"\xef\xbb\xbf[server]\nport = 8081\n")

    with pytest.raises(ConfigError, match="starts with a UTF-8 byte order mark"):
        load_config(path, environ={})


def test_bad_port_variable_named():
    expected = "OCOSERVER_PORT='http' is not a port number: use 0 to 65535"
    with pytest.raises(ConfigError, match=expected):
        load_config(None, environ={"OCOSERVER_PORT": "http"})


def test_security_section_read(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text("[security]\nauth_failure_limit = 0\nauth_block_time = 30\n")

    config = load_config(path, environ={})

    assert config.security.auth_failure_limit == 0
    assert config.security.auth_block_time == 30
    assert config.security.auth_failure_window == 60.0


def _too_large(key: str) -> str:
    """Return the TOML text of a value just above the key's upper bound."""
    maximum = NUMBER_RANGES[key].maximum
    return str(maximum + 1)


@pytest.mark.parametrize("key", NUMBER_RANGES)
def test_too_large_value_rejected(tmp_path, key):
    section, name = key.split(".")
    path = tmp_path / "config.toml"
    path.write_text(f"[{section}]\n{name} = {_too_large(key)}\n")

    with pytest.raises(ConfigError) as raised:
        load_config(path, environ={})

    message = str(raised.value)
    assert message.startswith(f"{key} = {_too_large(key)} is invalid: use ")
    assert str(NUMBER_RANGES[key].maximum) in message


HUGE_VALUES = {
    "float-exponent": ("web", "session_lifetime", "1e20"),
    "int-beyond-float": ("web", "online_window", "1" + "0" * 400),
    "int-beyond-int64": ("housekeeping", "purge_uploads_after", "9" * 20),
    "large-purge-age": ("housekeeping", "purge_uploads_after", "100000000000"),
}


@pytest.mark.parametrize("section, name, text", HUGE_VALUES.values(), ids=HUGE_VALUES)
def test_huge_value_names_range(tmp_path, section, name, text):
    path = tmp_path / "config.toml"
    path.write_text(f"[{section}]\n{name} = {text}\n")

    with pytest.raises(ConfigError) as raised:
        load_config(path, environ={})

    assert f"{section}.{name} = " in str(raised.value)
    assert f"{MAX_SECONDS} seconds (10 years)" in str(raised.value)


def test_every_number_has_range():
    numeric = {
        f"{section}.{field.name}"
        for section, values in dataclasses.asdict(Config()).items()
        for field in dataclasses.fields(getattr(Config(), section))
        if type(values[field.name]) in (int, float)
    }

    assert numeric == set(NUMBER_RANGES)


def test_serve_rejects_large_value(tmp_path, capsys):
    path = tmp_path / "config.toml"
    path.write_text("[web]\nstale_inventory = 1e20\n")

    code = cli_main(["--config", str(path), "--data-dir", str(tmp_path / "data")])

    assert code == 2
    assert "web.stale_inventory = 1e+20 is invalid" in capsys.readouterr().err
    assert not (tmp_path / "data").exists()
