"""Local admin password rotation: rules, due checks and reported passwords."""

from __future__ import annotations

from typing import Any

import aiosqlite

from ocoserver.db import Database


async def due_rules(
    connection: aiosqlite.Connection, computer_id: int
) -> list[dict[str, Any]]:
    """Return the `update-passwords` entries due for a computer."""
    return []


async def store_reported(
    database: Database, caller: Any, entries: list[dict[str, Any]]
) -> None:
    """Store the passwords an agent reports after rotating them."""
    return None
