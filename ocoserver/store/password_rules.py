"""Password rotation rules: validation, administration and lookup per computer.

A rule names a local account, the alphabet and length of the passwords the
agent generates for it, how many days a password stays valid and how many
passwords are kept. It applies to every computer or to listed computers.
For one computer and username a rule that lists the computer takes
precedence over a rule for all computers. `add` rejects every other
overlap, so each computer has at most one rule per username.
"""

from __future__ import annotations

import logging
import string
from dataclasses import dataclass

import aiosqlite

from ocoserver import timefmt
from ocoserver.db import Database, Row, execute, fetch_all, fetch_one
from ocoserver.errors import AdminError

log = logging.getLogger("ocoserver.passwords")

MIN_LENGTH = 8
MAX_LENGTH = 256
MIN_DISTINCT_CHARACTERS = 2

# Local account names are short (Windows allows 20 characters, Linux's
# useradd 32 by default); 256 bounds a rule's or a reported name with room
# to spare.
MAX_USERNAME_LENGTH = 256

# Printable ASCII without the space. The agent pads the password by its
# character count before encoding it as UTF-8, so a non-ASCII character
# breaks the agent's encryption and the rotation fails on the computer.
ALLOWED_CHARACTERS = frozenset(string.ascii_letters + string.digits + string.punctuation)

_RULE_COLUMNS = "id, all_computers, username, alphabet, length, valid_days, history, created"


@dataclass(frozen=True)
class RuleSpec:
    """The values of a new rule, as given on the command line."""

    username: str
    # Empty for a rule that applies to every computer.
    hostnames: tuple[str, ...]
    alphabet: str
    length: int
    valid_days: int
    history: int


def validate(spec: RuleSpec) -> RuleSpec:
    """Return the spec with the username stripped and alphabet repeats removed.

    The agent picks each character uniformly from the alphabet string, so a
    repeated character would be picked more often. The first occurrence of
    each character is kept. Raises AdminError naming the invalid value.
    """
    username = spec.username.strip()
    if len(username) > MAX_USERNAME_LENGTH:
        raise AdminError(
            f"username is {len(username)} characters long: use at most "
            f"{MAX_USERNAME_LENGTH}, the longest name an agent can report"
        )
    if not username or not username.isprintable():
        raise AdminError(
            f"invalid username {spec.username!r}: give the local account name, "
            "such as administrator"
        )
    alphabet = _validate_alphabet(spec.alphabet)
    _check_range("length", spec.length, MIN_LENGTH, MAX_LENGTH)
    _check_range("valid-days", spec.valid_days, 1, None)
    _check_range("history", spec.history, 1, None)
    return RuleSpec(username, spec.hostnames, alphabet, spec.length, spec.valid_days,
                    spec.history)


def _validate_alphabet(alphabet: str) -> str:
    invalid = sorted({ch for ch in alphabet if ch not in ALLOWED_CHARACTERS})
    if invalid:
        raise AdminError(
            f"invalid alphabet: characters {''.join(invalid)!r} are not allowed; "
            "use printable ASCII characters without spaces"
        )
    distinct = "".join(dict.fromkeys(alphabet))
    if len(distinct) < MIN_DISTINCT_CHARACTERS:
        raise AdminError(
            f"invalid alphabet {alphabet!r}: use at least {MIN_DISTINCT_CHARACTERS} "
            "different characters, such as the letters and digits"
        )
    return distinct


def _check_range(option: str, value: int, minimum: int, maximum: int | None) -> None:
    if value < minimum or (maximum is not None and value > maximum):
        limit = f"{minimum} to {maximum}" if maximum is not None else f"at least {minimum}"
        raise AdminError(f"invalid --{option} {value}: use {limit}")


async def add(database: Database, spec: RuleSpec) -> int:
    """Validate and store a new rule; return its id.

    Raises AdminError for an invalid value, an unknown hostname or an
    overlap with an existing rule.
    """
    spec = validate(spec)
    async with database.transaction() as connection:
        listed = await _resolve_hostnames(connection, spec.hostnames)
        computer_ids = list(listed)
        await _check_overlap(connection, spec.username, computer_ids)
        rule_id = await _insert(connection, spec, computer_ids)

    scope = ", ".join(listed.values()) if listed else "all computers"
    log.info(
        "password rule %d added: user %s on %s, length %d, valid %d days, "
        "history %d",
        rule_id, spec.username, scope, spec.length, spec.valid_days, spec.history,
    )
    return rule_id


async def _resolve_hostnames(
    connection: aiosqlite.Connection, hostnames: tuple[str, ...]
) -> dict[int, str]:
    """Map the named computers' ids to their stored hostnames, in the given order."""
    listed: dict[int, str] = {}
    for hostname in hostnames:
        row = await fetch_one(
            connection,
            "SELECT id, hostname FROM computer WHERE hostname = ?",
            (hostname.strip(),),
        )
        if row is None:
            raise AdminError(
                f"computer {hostname!r} not found; 'ocoserver computer list' shows "
                "the known hostnames"
            )
        listed.setdefault(row["id"], row["hostname"])
    return listed


async def _check_overlap(
    connection: aiosqlite.Connection, username: str, computer_ids: list[int]
) -> None:
    if not computer_ids:
        row = await fetch_one(
            connection,
            "SELECT id FROM password_rule WHERE username = ? AND all_computers = 1",
            (username,),
        )
        if row is not None:
            raise AdminError(
                f"password rule {row['id']} already rotates user {username!r} on all "
                "computers; remove it first with 'ocoserver password-rule remove "
                f"{row['id']}'"
            )
        return

    placeholders = ", ".join("?" for _ in computer_ids)
    row = await fetch_one(
        connection,
        "SELECT r.id, c.hostname FROM password_rule r "
        "JOIN password_rule_computer rc ON rc.rule_id = r.id "
        "JOIN computer c ON c.id = rc.computer_id "
        f"WHERE r.username = ? AND rc.computer_id IN ({placeholders}) "
        "ORDER BY r.id LIMIT 1",
        (username, *computer_ids),
    )
    if row is not None:
        raise AdminError(
            f"password rule {row['id']} already rotates user {username!r} on computer "
            f"{row['hostname']}; remove it first with 'ocoserver password-rule remove "
            f"{row['id']}' or leave that computer out"
        )


async def _insert(
    connection: aiosqlite.Connection, spec: RuleSpec, computer_ids: list[int]
) -> int:
    rule_id = await execute(
        connection,
        "INSERT INTO password_rule (all_computers, username, alphabet, length, "
        "valid_days, history, created) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            int(not computer_ids), spec.username, spec.alphabet, spec.length,
            spec.valid_days, spec.history, timefmt.now_text(),
        ),
    )
    await connection.executemany(
        "INSERT INTO password_rule_computer (rule_id, computer_id) VALUES (?, ?)",
        [(rule_id, computer_id) for computer_id in computer_ids],
    )
    return rule_id


async def list_all(database: Database) -> list[Row]:
    """Return every rule with `computers`, the listed hostnames (empty for all)."""
    rules = await database.fetch_all(
        f"SELECT {_RULE_COLUMNS} FROM password_rule ORDER BY id"
    )
    links = await database.fetch_all(
        "SELECT rc.rule_id, c.hostname FROM password_rule_computer rc "
        "JOIN computer c ON c.id = rc.computer_id ORDER BY c.hostname"
    )
    for rule in rules:
        rule["all_computers"] = bool(rule["all_computers"])
        rule["computers"] = [
            link["hostname"] for link in links if link["rule_id"] == rule["id"]
        ]
    return rules


async def remove(database: Database, rule_id: int) -> None:
    """Delete a rule; passwords stored under it are kept with no rule."""
    async with database.transaction() as connection:
        cursor = await connection.execute(
            "DELETE FROM password_rule WHERE id = ?", (rule_id,)
        )
        if cursor.rowcount == 0:
            raise AdminError(
                f"password rule {rule_id} not found; 'ocoserver password-rule list' "
                "shows the ids"
            )
    log.info("password rule %d removed; its stored passwords are kept", rule_id)


async def applicable(
    connection: aiosqlite.Connection, computer_id: int, username: str | None = None
) -> list[Row]:
    """Return the rule in effect on a computer for each username, by username.

    A rule that lists the computer takes precedence over a rule for all
    computers. With `username` (compared case-insensitively) the list contains
    at most that user's rule.
    """
    rows = await fetch_all(
        connection,
        "SELECT id, username, alphabet, length, valid_days, history FROM ("
        "  SELECT r.*, ROW_NUMBER() OVER ("
        "    PARTITION BY r.username ORDER BY rc.computer_id IS NULL, r.id"
        "  ) AS rank"
        "  FROM password_rule r"
        "  LEFT JOIN password_rule_computer rc"
        "    ON rc.rule_id = r.id AND rc.computer_id = :computer_id"
        "  WHERE r.all_computers = 1 OR rc.computer_id IS NOT NULL"
        ") WHERE rank = 1 AND (:username IS NULL OR username = :username) "
        "ORDER BY username, id",
        {"computer_id": computer_id, "username": username},
    )
    return rows
