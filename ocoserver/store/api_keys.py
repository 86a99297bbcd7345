"""Client API keys and the audit log of client API calls.

A key is 256 random bits, printed once when it is created. Only its
SHA-256 hash is stored: a key of that entropy cannot be guessed from its
hash, so a slow password hash would add cost without adding safety. A
presented key is compared with every active hash in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass, field

import orjson

from ocoserver import timefmt
from ocoserver.db import Database, Row, execute, fetch_all
from ocoserver.errors import AdminError

log = logging.getLogger("ocoserver.api_keys")

# Scopes from least to most powerful; each includes the ones before it.
SCOPES = ("read", "deploy", "admin")

MAX_NAME_LENGTH = 100

# Keys start with this text so that secret scanners and people recognise them.
KEY_PREFIX = "oco_"


@dataclass
class AuditEntry:
    """One audit row, filled in while the call runs."""

    method: str
    key_id: int | None
    key_name: str | None
    remote_address: str
    targets: dict[str, object] = field(default_factory=dict)
    # None for success, else the JSON-RPC error code.
    error_code: int | None = None


def scope_allows(scope: str, required: str) -> bool:
    """Return whether a key of `scope` may call a method that needs `required`."""
    return SCOPES.index(scope) >= SCOPES.index(required)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def validate_name(name: str) -> str:
    name = name.strip()
    if not 1 <= len(name) <= MAX_NAME_LENGTH or not name.isprintable():
        raise AdminError(
            f"invalid API key name {name!r}: use 1 to {MAX_NAME_LENGTH} printable "
            "characters"
        )
    if name.isdigit():
        # `api-key revoke` takes an id or a name; a number would read as an id.
        raise AdminError(
            f"invalid API key name {name!r}: a name needs at least one character "
            "that is not a digit"
        )
    return name


async def add(database: Database, name: str, scope: str) -> tuple[int, str]:
    """Create a key and return its id and the key, which is not stored."""
    name = validate_name(name)
    if scope not in SCOPES:
        raise AdminError(f"invalid scope {scope!r}: use one of {', '.join(SCOPES)}")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    async with database.transaction() as connection:
        existing = await fetch_all(
            connection,
            "SELECT id FROM api_key WHERE name = ? AND revoked IS NULL",
            (name,),
        )
        if existing:
            raise AdminError(
                f"API key {name!r} already exists; revoke it first or choose "
                "another name"
            )
        key_id = await execute(
            connection,
            "INSERT INTO api_key (name, scope, key_hash, created) VALUES (?, ?, ?, ?)",
            (name, scope, hash_key(key), timefmt.now_text()),
        )
    log.info("API key %d %r created with scope %s", key_id, name, scope)
    return key_id, key


async def list_all(database: Database) -> list[Row]:
    """Return every key, revoked ones included, without the hashes."""
    return await database.fetch_all(
        "SELECT id, name, scope, created, last_used, revoked FROM api_key ORDER BY id"
    )


async def revoke(database: Database, ref: str) -> Row:
    """Revoke the active key with this id or name; return its row."""
    ref = ref.strip()
    column = "id" if ref.isdigit() else "name"
    async with database.transaction() as connection:
        rows = await fetch_all(
            connection,
            f"SELECT id, name, scope FROM api_key WHERE {column} = ? "
            "AND revoked IS NULL",
            (int(ref) if ref.isdigit() else ref,),
        )
        if not rows:
            raise AdminError(
                f"active API key {ref!r} not found; 'ocoserver api-key list' shows "
                "the ids and names"
            )
        await connection.execute(
            "UPDATE api_key SET revoked = ? WHERE id = ?",
            (timefmt.now_text(), rows[0]["id"]),
        )
    log.info("API key %d %r revoked", rows[0]["id"], rows[0]["name"])
    return rows[0]


async def has_active(database: Database) -> bool:
    value = await database.fetch_value(
        "SELECT EXISTS (SELECT 1 FROM api_key WHERE revoked IS NULL)"
    )
    return bool(value)


async def find_by_key(database: Database, key: str) -> Row | None:
    """Return the active key row matching `key`, or None.

    Every active hash is compared, without stopping at a match, so the time
    taken does not depend on which key matched.
    """
    presented = hash_key(key).encode("ascii")
    rows = await database.fetch_all(
        "SELECT id, name, scope, key_hash FROM api_key WHERE revoked IS NULL"
    )
    found = None
    for row in rows:
        if hmac.compare_digest(presented, row["key_hash"].encode("ascii")):
            found = row
    if found is None:
        return None
    return {column: value for column, value in found.items() if column != "key_hash"}


async def record_call(database: Database, entry: AuditEntry) -> None:
    """Append one audit row and note when the key was last used."""
    # NOTE: audit rows are never deleted; add pruning by age if the table
    # grows too large for a site's call rate.
    now = timefmt.now_text()
    async with database.transaction() as connection:
        await connection.execute(
            "INSERT INTO api_audit (time, key_id, key_name, remote_address, method, "
            "targets, error_code) VALUES (:time, :key_id, :key_name, :remote, "
            ":method, :targets, :error_code)",
            {
                "time": now,
                "key_id": entry.key_id,
                "key_name": entry.key_name,
                "remote": entry.remote_address,
                "method": entry.method,
                "targets": orjson.dumps(entry.targets).decode(),
                "error_code": entry.error_code,
            },
        )
        if entry.key_id is not None:
            await connection.execute(
                "UPDATE api_key SET last_used = ? WHERE id = ?", (now, entry.key_id)
            )


async def list_audit(database: Database, limit: int) -> list[Row]:
    """Return the newest `limit` audit rows, newest first."""
    rows = await database.fetch_all(
        "SELECT id, time, key_name, remote_address, method, targets, error_code "
        "FROM api_audit ORDER BY id DESC LIMIT ?",
        (limit,),
    )
    for row in rows:
        row["targets"] = orjson.loads(row["targets"])
        row["result"] = "ok" if row["error_code"] is None else "error"
    return rows
