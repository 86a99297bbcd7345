"""The SQLite database: connections, pragmas, schema, transactions.

One writer connection is shared by the whole process and used under an
asyncio lock for whole `BEGIN IMMEDIATE` transactions, so two concurrent
requests never interleave statements in one transaction. Reads outside a
transaction go to a small pool of separate reader connections, which in
WAL mode see only committed data. The administration CLI opens its own
`Database` on the same file while the server runs; SQLite's file locks and
the busy timeout order the two processes' writes.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Any

import aiosqlite

log = logging.getLogger("ocoserver.db")

SCHEMA_VERSION = 1

# Statements that upgrade a database from version N-1 to N, keyed by N.
# Version 1 is schema.sql itself.
UPGRADES: dict[int, list[str]] = {}

BUSY_TIMEOUT_MS = 10_000

# The largest value an SQLite INTEGER column stores (signed 64 bits); larger
# Python integers raise OverflowError when bound to a statement.
SQLITE_INTEGER_MAX = 2**63 - 1


def id_from_text(text: str) -> int | None:
    """Return the row id an all-digits text names, or None when none can exist."""
    if not text.isascii() or not text.isdigit() or len(text) > 19:
        return None
    number = int(text)
    return number if 1 <= number <= SQLITE_INTEGER_MAX else None

READER_COUNT = 4

Row = dict[str, Any]
Params = Sequence[Any] | Mapping[str, Any]


class SchemaError(RuntimeError):
    """The database file has a schema this version cannot use."""


def load_schema_statements() -> list[str]:
    """Split the packaged schema.sql into complete SQL statements."""
    text = resources.files("ocoserver").joinpath("schema.sql").read_text("utf-8")
    statements: list[str] = []
    pending = ""
    for line in text.splitlines(keepends=True):
        if line.lstrip().startswith("--"):
            continue
        pending += line
        if sqlite3.complete_statement(pending):
            statements.append(pending.strip())
            pending = ""
    return statements


async def _connect(path: Path) -> aiosqlite.Connection:
    # isolation_level=None: the sqlite3 module opens no implicit
    # transactions, so BEGIN/COMMIT in `transaction()` are the only ones.
    connection = await aiosqlite.connect(path, isolation_level=None)
    connection.row_factory = sqlite3.Row
    await connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    await connection.execute("PRAGMA foreign_keys = ON")
    # NORMAL in WAL mode keeps every committed transaction across a process
    # crash; only a power loss can drop the last few (SQLite docs, "WAL").
    await connection.execute("PRAGMA synchronous = NORMAL")
    return connection


class Database:
    """The process's connections to one SQLite file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._writer: aiosqlite.Connection | None = None
        self._write_lock = asyncio.Lock()
        self._readers: asyncio.Queue[aiosqlite.Connection] = asyncio.Queue()
        self._reader_list: list[aiosqlite.Connection] = []

    async def open(self) -> None:
        """Open the connections, set WAL mode and apply or upgrade the schema."""
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        _create_private_file(self.path)
        try:
            self._writer = await _connect(self.path)
            await self._writer.execute("PRAGMA journal_mode = WAL")
            await self._apply_schema()
            for _ in range(READER_COUNT):
                reader = await _connect(self.path)
                self._reader_list.append(reader)
                await reader.execute("PRAGMA query_only = ON")
                self._readers.put_nowait(reader)
        except BaseException:
            # A refused schema or a broken file must not leave connection
            # threads running: they would keep the process from exiting.
            await self._close_connections(checkpoint=False)
            raise
        log.debug("opened database %s", self.path)

    async def close(self) -> None:
        """Close every connection; waits for a running transaction to end."""
        async with self._write_lock:
            await self._close_connections(checkpoint=True)
        log.debug("closed database %s", self.path)

    async def _close_connections(self, checkpoint: bool) -> None:
        for reader in self._reader_list:
            await reader.close()
        self._reader_list.clear()
        if self._writer is not None:
            if checkpoint:
                # Fold the WAL back into the main file so a copied database
                # file is complete on its own.
                await self._writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            await self._writer.close()
            self._writer = None

    async def _apply_schema(self) -> None:
        async with self.transaction() as connection:
            version = await _fetch_user_version(connection)
            if version > SCHEMA_VERSION:
                raise SchemaError(
                    f"database {self.path} has schema version {version}, newer "
                    f"than this ocoserver's {SCHEMA_VERSION}; upgrade ocoserver"
                )
            if version == 0:
                for statement in load_schema_statements():
                    await connection.execute(statement)
                log.info("created database %s (schema version 1)", self.path)
                version = 1
            for target in range(version + 1, SCHEMA_VERSION + 1):
                for statement in UPGRADES[target]:
                    await connection.execute(statement)
                log.info("upgraded database %s to schema version %d", self.path, target)
            # PRAGMA takes no bound parameters; the value is our own integer.
            await connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """Run a block as one write transaction on the writer connection.

        Commits when the block ends and rolls back when it raises. Only one
        transaction runs at a time in this process.
        """
        if self._writer is None:
            raise RuntimeError("database is not open")
        async with self._write_lock:
            await self._writer.execute("BEGIN IMMEDIATE")
            try:
                yield self._writer
            except BaseException:
                await self._writer.execute("ROLLBACK")
                raise
            await self._writer.execute("COMMIT")

    @asynccontextmanager
    async def reader(self) -> AsyncIterator[aiosqlite.Connection]:
        """Borrow a read-only connection that sees committed data only."""
        connection = await self._readers.get()
        try:
            yield connection
        finally:
            self._readers.put_nowait(connection)

    async def fetch_all(self, sql: str, params: Params = ()) -> list[Row]:
        """Run a query on a reader connection and return every row as a dict."""
        async with self.reader() as connection:
            return await fetch_all(connection, sql, params)

    async def fetch_one(self, sql: str, params: Params = ()) -> Row | None:
        """Run a query on a reader connection and return the first row or None."""
        async with self.reader() as connection:
            return await fetch_one(connection, sql, params)

    async def fetch_value(self, sql: str, params: Params = ()) -> Any:
        """Return the first column of the first row, or None without rows."""
        row = await self.fetch_one(sql, params)
        return None if row is None else next(iter(row.values()))


async def fetch_all(
    connection: aiosqlite.Connection, sql: str, params: Params = ()
) -> list[Row]:
    """Run a query on `connection` and return every row as a dict."""
    # One trip to the connection's thread instead of three (execute, fetch
    # and close), because each trip costs a thread wake-up and a turn of
    # the event loop.
    rows = await connection.execute_fetchall(sql, params)
    return [dict(row) for row in rows]


async def fetch_one(
    connection: aiosqlite.Connection, sql: str, params: Params = ()
) -> Row | None:
    """Run a query on `connection` and return the first row as a dict, or None.

    Fetches every row in one trip to the connection's thread, so use it for
    queries that match one row or few.
    """
    rows = await connection.execute_fetchall(sql, params)
    for row in rows:
        return dict(row)
    return None


async def execute(
    connection: aiosqlite.Connection, sql: str, params: Params = ()
) -> int:
    """Run one statement and return the last inserted row id."""
    async with connection.execute(sql, params) as cursor:
        return cursor.lastrowid or 0


async def execute_many(
    connection: aiosqlite.Connection, sql: str, rows: Iterable[Params]
) -> None:
    """Run one statement for each parameter set in `rows`."""
    await connection.executemany(sql, rows)


async def _fetch_user_version(connection: aiosqlite.Connection) -> int:
    row = await fetch_one(connection, "PRAGMA user_version")
    assert row is not None
    return int(row["user_version"])


def _create_private_file(path: Path) -> None:
    """Create an empty database file readable by its owner only, if missing.

    The database contains agent keys, and SQLite gives its -wal and -shm files the
    same permissions as the database file.
    """
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    os.close(descriptor)


@asynccontextmanager
async def open_database(path: Path) -> AsyncIterator[Database]:
    """Open a Database for the length of a block (used by the CLI and tests)."""
    database = Database(path)
    await database.open()
    try:
        yield database
    finally:
        await database.close()
