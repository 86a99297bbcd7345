"""A server configured at the upper bound of every numeric key still works.

The config is read from a TOML file through the real loader, so these
tests cover the values an administrator can actually set.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from ocoserver import housekeeping
from ocoserver.config import NUMBER_RANGES, Config, load_config
from tests.admin import register
from tests.agents import PlainAgent
from tests.console import add_admin, log_in


def write_upper_bounds(path: Path) -> None:
    """Write a TOML file that sets every numeric key to its upper bound."""
    sections: dict[str, list[str]] = {}
    for key, number_range in NUMBER_RANGES.items():
        section, name = key.split(".")
        sections.setdefault(section, []).append(f"{name} = {number_range.maximum}")
    path.write_text(
        "".join(
            f"[{section}]\n" + "\n".join(lines) + "\n"
            for section, lines in sections.items()
        )
    )


@pytest.fixture
def config(tmp_path: Path) -> Config:
    path = tmp_path / "config.toml"
    write_upper_bounds(path)
    loaded = load_config(path, environ={})
    # Port 0, as in every test config, in place of the bound 65535 checked above.
    return dataclasses.replace(
        loaded, server=dataclasses.replace(loaded.server, port=0)
    ).with_overrides(data_dir=str(tmp_path / "data"))


async def test_housekeeping_at_max_ages(client, config, database):
    await register(config)
    await PlainAgent(client).hello()

    report = await housekeeping.run_pass(
        database, config.housekeeping, config.depot_path
    )

    assert report.purged_logins == 0
    assert report.purged_uploads == 0


async def test_login_at_max_lifetime(client, config, database):
    await add_admin(database)

    response = await log_in(client)

    assert response.status == 303
    assert response.cookies["ocoserver_session"]["max-age"] == str(
        int(NUMBER_RANGES["web.session_lifetime"].maximum)
    )


async def test_dashboard_at_max_windows(client, config, database):
    await register(config)
    await PlainAgent(client).hello()
    await add_admin(database)
    await log_in(client)

    page = await client.get("/")

    assert page.status == 200
    assert "lab-pc-01" in await page.text()
