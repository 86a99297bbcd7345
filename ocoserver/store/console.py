"""Read queries of the web console: fleet counts, lists and searches."""

from __future__ import annotations

from typing import Any

from ocoserver import timefmt
from ocoserver.db import Database, Row

# Sort keys of the computer list, by query parameter value.
COMPUTER_SORTS = {
    "hostname": "hostname COLLATE NOCASE",
    "os": "os COLLATE NOCASE, os_version",
    "last_seen": "last_seen DESC",
    "ip": "remote_address",
    "agent": "agent_version",
}
MAX_SEARCH_ROWS = 500
SECONDS_PER_DAY = 86400


async def dashboard(
    database: Database, online_window: float, stale_after: float
) -> dict[str, Any]:
    """Return the dashboard counts and lists."""
    online_since = timefmt.seconds_ago_text(online_window)
    day_ago = timefmt.seconds_ago_text(SECONDS_PER_DAY)
    counts = await database.fetch_one(
        "SELECT COUNT(*) AS total, COALESCE(SUM(last_seen >= ?), 0) AS online "
        "FROM computer",
        (online_since,),
    )
    jobs = await database.fetch_one(
        "SELECT COALESCE(SUM(state IN (1, 2)), 0) AS running, "
        "COALESCE(SUM(state = -1 AND COALESCE(execution_finished, last_update, "
        "created) >= ?), 0) AS failed FROM job",
        (day_ago,),
    )
    assert counts is not None and jobs is not None
    stale = await database.fetch_all(
        "SELECT id, hostname, last_update, last_seen FROM computer "
        "WHERE last_update IS NULL OR last_update < ? ORDER BY hostname LIMIT 50",
        (timefmt.seconds_ago_text(stale_after),),
    )
    recent = await database.fetch_all(
        "SELECT id, hostname, created, remote_address FROM computer "
        "ORDER BY created DESC, id DESC LIMIT 10"
    )
    return {
        "online": counts["online"],
        "offline": counts["total"] - counts["online"],
        "running": jobs["running"],
        "failed": jobs["failed"],
        "stale": stale,
        "recent": recent,
    }


async def computers(database: Database, search: str, sort: str) -> list[Row]:
    """Return computers whose hostname, OS or address contains `search`."""
    order = COMPUTER_SORTS.get(sort, COMPUTER_SORTS["hostname"])
    pattern = f"%{_escape_like(search)}%"
    return await database.fetch_all(
        "SELECT id, hostname, os, os_version, last_seen, remote_address, "
        "agent_version FROM computer WHERE hostname LIKE ?1 ESCAPE '\\' "
        "OR COALESCE(os, '') LIKE ?1 ESCAPE '\\' "
        "OR COALESCE(remote_address, '') LIKE ?1 ESCAPE '\\' "
        f"ORDER BY {order}, id",
        (pattern,),
    )


async def computer_jobs(database: Database, computer_id: int) -> list[Row]:
    return await database.fetch_all(
        "SELECT j.id, j.container_id, c.name AS container, p.family, p.version, "
        "j.state, j.return_code, j.last_update, j.is_uninstall FROM job j "
        "JOIN job_container c ON c.id = j.container_id "
        "JOIN package p ON p.id = j.package_id "
        "WHERE j.computer_id = ? ORDER BY j.id DESC LIMIT 200",
        (computer_id,),
    )


async def password_usernames(database: Database, computer_id: int) -> list[Row]:
    return await database.fetch_all(
        "SELECT username, MAX(created) AS created, COUNT(*) AS stored "
        "FROM computer_password WHERE computer_id = ? GROUP BY username "
        "ORDER BY username",
        (computer_id,),
    )


async def software(database: Database, name: str, version: str) -> list[Row]:
    """Return (software, computer) pairs whose name and version contain the texts."""
    return await database.fetch_all(
        "SELECT s.name, s.version, c.id AS computer_id, c.hostname "
        "FROM computer_software s JOIN computer c ON c.id = s.computer_id "
        "WHERE s.name LIKE ? ESCAPE '\\' AND s.version LIKE ? ESCAPE '\\' "
        "ORDER BY s.name, s.version, c.hostname LIMIT ?",
        (f"%{_escape_like(name)}%", f"%{_escape_like(version)}%", MAX_SEARCH_ROWS),
    )


async def computer_choices(database: Database) -> list[Row]:
    return await database.fetch_all(
        "SELECT id, hostname FROM computer ORDER BY hostname"
    )


async def group_choices(database: Database) -> list[Row]:
    return await database.fetch_all("SELECT id, name FROM computer_group ORDER BY name")


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
