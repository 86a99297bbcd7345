"""The database layer: schema, pragmas, transactions and isolation."""

from __future__ import annotations

import asyncio
import sqlite3
import stat

import pytest

from ocoserver.db import SCHEMA_VERSION, SchemaError, open_database


async def test_new_database_schema_and_pragmas(tmp_path):
    path = tmp_path / "new.sqlite3"

    async with open_database(path) as database:
        version = await database.fetch_value("PRAGMA user_version")
        journal = await database.fetch_value("PRAGMA journal_mode")
        foreign_keys = await database.fetch_value("PRAGMA foreign_keys")
        timeout = await database.fetch_value("PRAGMA busy_timeout")
        tables = await database.fetch_all(
            "SELECT name FROM sqlite_master WHERE type = 'table'"
        )

    assert version == SCHEMA_VERSION
    assert journal == "wal"
    assert foreign_keys == 1
    assert timeout == 10000
    assert {"computer", "job", "job_container", "package"} <= {t["name"] for t in tables}


async def test_reopen_keeps_data(tmp_path):
    path = tmp_path / "db.sqlite3"
    async with open_database(path) as database:
        async with database.transaction() as connection:
            await connection.execute(
                "INSERT INTO setting (key, value) VALUES ('a', 'b')"
            )

    async with open_database(path) as database:
        assert await database.fetch_value("SELECT value FROM setting") == "b"


async def test_newer_schema_rejected(tmp_path):
    path = tmp_path / "future.sqlite3"
    connection = sqlite3.connect(path)
    connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    connection.close()

    with pytest.raises(SchemaError, match="newer than this ocoserver"):
        async with open_database(path):
            pass


async def test_transaction_rolls_back_on_error(tmp_path):
    async with open_database(tmp_path / "db.sqlite3") as database:
        with pytest.raises(RuntimeError):
            async with database.transaction() as connection:
                await connection.execute(
                    "INSERT INTO setting (key, value) VALUES ('a', 'b')"
                )
                raise RuntimeError("abort")

        assert await database.fetch_value("SELECT COUNT(*) FROM setting") == 0


async def test_readers_see_only_committed(tmp_path):
    async with open_database(tmp_path / "db.sqlite3") as database:
        inside = asyncio.Event()
        release = asyncio.Event()

        async def writer() -> None:
            async with database.transaction() as connection:
                await connection.execute(
                    "INSERT INTO setting (key, value) VALUES ('a', 'b')"
                )
                inside.set()
                await release.wait()

        task = asyncio.create_task(writer())
        await inside.wait()
        during = await database.fetch_value("SELECT COUNT(*) FROM setting")
        release.set()
        await task
        after = await database.fetch_value("SELECT COUNT(*) FROM setting")

    assert during == 0
    assert after == 1


async def test_transactions_do_not_interleave(tmp_path):
    async with open_database(tmp_path / "db.sqlite3") as database:

        async def increment(index: int) -> None:
            async with database.transaction() as connection:
                rows = await connection.execute_fetchall(
                    "SELECT value FROM setting WHERE key = 'counter'"
                )
                value = int(rows[0][0]) if rows else 0
                await asyncio.sleep(0)
                await connection.execute(
                    "INSERT INTO setting (key, value) VALUES ('counter', ?) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (str(value + 1),),
                )

        await asyncio.gather(*(increment(i) for i in range(20)))

        assert await database.fetch_value(
            "SELECT value FROM setting WHERE key = 'counter'"
        ) == "20"


async def test_new_database_owner_only(tmp_path):
    path = tmp_path / "data" / "ocoserver.sqlite3"

    async with open_database(path):
        pass

    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
