"""Web console accounts, their sessions, and the audit of password reveals."""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass

from ocoserver import timefmt
from ocoserver.db import Database, Row
from ocoserver.errors import AdminError
from ocoserver.logtext import quote

log = logging.getLogger("ocoserver.web")

MAX_NAME_LENGTH = 64


@dataclass(frozen=True)
class Session:
    user_id: int
    name: str
    csrf_token: str


def validate_name(name: str) -> str:
    """Return `name` stripped, or raise AdminError naming the problem."""
    name = name.strip()
    if not name or len(name) > MAX_NAME_LENGTH or not name.isprintable():
        raise AdminError(
            f"invalid account name {name!r}: use 1 to {MAX_NAME_LENGTH} "
            "printable characters"
        )
    # U+FFFD stands for bytes a form or terminal could not decode, so a name
    # with it was not typed as it reads.
    if "\ufffd" in name:
        raise AdminError(
            f"invalid account name {name!r}: it contains bytes that are not "
            "valid UTF-8"
        )
    return name


async def add_user(database: Database, name: str, password_hash: str) -> int:
    """Create an account and return its id; AdminError when the name is taken."""
    name = validate_name(name)
    async with database.transaction() as connection:
        cursor = await connection.execute(
            "INSERT INTO admin_user (name, password_hash, created) VALUES (?, ?, ?) "
            "ON CONFLICT (name) DO NOTHING",
            (name, password_hash, timefmt.now_text()),
        )
        if cursor.rowcount == 0:
            raise AdminError(
                f"account {name!r} already exists; remove it first to reset it"
            )
        user_id = cursor.lastrowid
    assert user_id is not None
    log.info("web console account %s added (id %d)", quote(name), user_id)
    return user_id


async def list_users(database: Database) -> list[Row]:
    return await database.fetch_all(
        "SELECT id, name, created, last_login FROM admin_user ORDER BY name"
    )


async def remove_user(database: Database, name: str) -> None:
    """Delete an account with its sessions; AdminError when it does not exist."""
    async with database.transaction() as connection:
        cursor = await connection.execute(
            "DELETE FROM admin_user WHERE name = ?", (name,)
        )
        if cursor.rowcount == 0:
            raise AdminError(
                f"account {name!r} not found; `ocoserver admin list` shows the accounts"
            )
    log.info("web console account %s removed with its sessions", quote(name))


async def find_user(database: Database, name: str) -> Row | None:
    return await database.fetch_one(
        "SELECT id, name, password_hash FROM admin_user WHERE name = ?", (name,)
    )


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


async def create_session(database: Database, user_id: int, lifetime: float) -> str:
    """Start a session for an account and return its token for the cookie."""
    token = secrets.token_urlsafe(32)
    now = timefmt.now_text()
    expires = timefmt.seconds_ago_text(-lifetime)
    async with database.transaction() as connection:
        await connection.execute("DELETE FROM admin_session WHERE expires <= ?", (now,))
        await connection.execute(
            "INSERT INTO admin_session (token_hash, user_id, csrf_token, created, "
            "expires) VALUES (?, ?, ?, ?, ?)",
            (_token_hash(token), user_id, secrets.token_urlsafe(32), now, expires),
        )
        await connection.execute(
            "UPDATE admin_user SET last_login = ? WHERE id = ?", (now, user_id)
        )
    return token


async def find_session(database: Database, token: str) -> Session | None:
    """Return the unexpired session of a cookie token, or None."""
    row = await database.fetch_one(
        "SELECT s.user_id, u.name, s.csrf_token FROM admin_session s "
        "JOIN admin_user u ON u.id = s.user_id "
        "WHERE s.token_hash = ? AND s.expires > ?",
        (_token_hash(token), timefmt.now_text()),
    )
    if row is None:
        return None
    return Session(row["user_id"], row["name"], row["csrf_token"])


async def end_session(database: Database, token: str) -> None:
    async with database.transaction() as connection:
        await connection.execute(
            "DELETE FROM admin_session WHERE token_hash = ?", (_token_hash(token),)
        )


async def record_reveal(
    database: Database, admin_name: str, computer: Row, username: str, remote: str
) -> None:
    """Write an audit entry for one stored password shown in the web console."""
    async with database.transaction() as connection:
        await connection.execute(
            "INSERT INTO password_reveal (time, admin_name, computer_id, hostname, "
            "username, remote_address) VALUES (?, ?, ?, ?, ?, ?)",
            (timefmt.now_text(), admin_name, computer["id"], computer["hostname"],
             username, remote),
        )  # fmt: skip
    log.warning(
        "password of %s on computer %s shown to web console account %s from %s",
        quote(username),
        quote(computer["hostname"]),
        quote(admin_name),
        remote,
    )


async def list_reveals(database: Database, limit: int = 200) -> list[Row]:
    return await database.fetch_all(
        "SELECT time, admin_name, computer_id, hostname, username, remote_address "
        "FROM password_reveal ORDER BY id DESC LIMIT ?",
        (limit,),
    )
