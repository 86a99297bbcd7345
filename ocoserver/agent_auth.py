"""Authentication of agent requests, both protocol generations.

Generation 1 agents put their key in `params["agent-key"]`; generation 2
agents sign the raw body (see signing.py). Trust on first use: a computer
without keys (pre-registered by an administrator) is accepted with the
empty key or the registration key and gets fresh keys in the hello
response. An unknown computer registers itself only when self-registration
is enabled and it presents the registration key. Keys are issued only in
`oco.agent.hello`, the one method whose response carries them.

A request is matched to a computer by its uid first, then by hostname
(see `_identify`), and each stored uid belongs to one computer only.
"""

from __future__ import annotations

import hmac
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiosqlite

from ocoserver.auth_throttle import AuthThrottle
from ocoserver.config import AgentConfig
from ocoserver.db import Database, Row, fetch_one
from ocoserver.errors import (
    AdminError,
    InvalidParams,
    NotPermitted,
    Unauthorized,
    preview,
)
from ocoserver.logtext import quote
from ocoserver.params import read_name
from ocoserver.rpc import RpcRequest
from ocoserver.signing import signature_matches
from ocoserver.store import computers
from ocoserver.store.settings import AgentSettings, read_agent_settings

log = logging.getLogger("ocoserver.auth")

HELLO = "oco.agent.hello"

# Largest accepted params.timestamp, in Unix seconds (the year 5138); any
# larger number is no timestamp and is kept out of float arithmetic.
MAX_TIMESTAMP = 1e11

# Agents send the machine UUID (36 characters) or an empty string.
MAX_UID_LENGTH = 128


@dataclass(frozen=True)
class AgentCall:
    """What an agent request presents to be authenticated."""

    method: str
    params: dict[str, Any]
    body: bytes
    signature: str | None
    remote: str

    @classmethod
    def from_rpc(cls, rpc: RpcRequest, signature: str | None, remote: str) -> AgentCall:
        return cls(rpc.method, rpc.params, rpc.body, signature, remote)

    @property
    def generation(self) -> int:
        return 2 if self.signature is not None else 1


@dataclass(frozen=True)
class Caller:
    """An authenticated computer."""

    computer: Row
    generation: int
    # True when this request received new keys, which hello must send.
    keys_issued: bool

    @property
    def computer_id(self) -> int:
        return int(self.computer["id"])

    @property
    def hostname(self) -> str:
        return str(self.computer["hostname"])


class Rejected(Unauthorized):
    """An authentication failure, logged once with hostname and address.

    `log_detail`, when given, replaces the message in the log line only. It
    carries facts the unauthenticated client must not learn, such as which
    computer has a uid.
    """

    def __init__(self, message: str, log_detail: str | None = None) -> None:
        super().__init__(message)
        self.log_detail = log_detail


# A check that an authenticated computer may make this particular request
# (for a download: that it has a pending job for the package). It raises
# Rejected to refuse, and runs before the request's timestamp is recorded so
# that a refused request changes nothing.
Authorizer = Callable[[aiosqlite.Connection, "Caller"], Awaitable[None]]


def read_identity(params: dict[str, Any]) -> tuple[str, str]:
    """Return (hostname, uid) from params, raising InvalidParams when invalid."""
    hostname = read_name(
        params.get("hostname"), "params.hostname", computers.MAX_HOSTNAME_LENGTH
    )
    if not hostname:
        raise InvalidParams("params.hostname is empty")
    uid = params.get("uid")
    if uid is None:
        return hostname, ""
    return hostname, read_name(uid, "params.uid", MAX_UID_LENGTH)


def _key_checker(call: AgentCall) -> Callable[[str], bool]:
    """Return a function telling whether the request was made with a given key."""
    if call.signature is not None:
        signature = call.signature
        return lambda key: signature_matches(call.body, key, signature)
    presented = call.params.get("agent-key")
    if presented is None:
        raise Unauthorized(
            "request carries neither an x-oco-agent-signature header nor "
            "params.agent-key"
        )
    if not isinstance(presented, str):
        raise InvalidParams(
            f"params.agent-key must be a string, not {type(presented).__name__}"
        )
    encoded = presented.encode("utf-8")
    return lambda key: hmac.compare_digest(encoded, key.encode("utf-8"))


def _first_contact_keys(settings: AgentSettings) -> list[str]:
    keys = [""]
    if settings.registration_key:
        keys.append(settings.registration_key)
    return keys


async def authenticate(
    database: Database,
    agent_config: AgentConfig,
    call: AgentCall,
    authorize: Authorizer | None = None,
    *,
    throttle: AuthThrottle | None = None,
) -> Caller:
    """Authenticate a request, registering or issuing keys where the rules allow.

    Raises Unauthorized (logged with hostname and remote address, never a
    key, and counted by `throttle`) or InvalidParams.
    """
    hostname, uid = read_identity(call.params)
    try:
        matches = _key_checker(call)
        caller = await _identify(database, call, hostname, uid, matches)
        if call.generation == 2:
            await _accept_timestamp(database, agent_config, call, caller, authorize)
        elif authorize is not None:
            async with database.reader() as connection:
                await authorize(connection, caller)
        await _follow_identity(database, caller, hostname, uid)
        return caller
    except NotPermitted as error:
        log.warning(
            "refused agent request: remote=%s hostname=%s method=%s reason=%s",
            quote(call.remote), quote(hostname), quote(call.method),
            quote(error.message),
        )
        raise
    except Unauthorized as error:
        detail = getattr(error, "log_detail", None)
        log_rejection(call, hostname, detail or error.message)
        if throttle is not None:
            throttle.record_failure(call.remote, hostname)
        raise


def log_rejection(call: AgentCall, hostname: str, reason: str) -> None:
    """Log a rejected agent request in the one-line format fail2ban filters match.

    The client address comes first, before any value the client chose, and
    every value is quoted by `quote` so that it cannot fake another field.
    """
    log.warning(
        "rejected agent request: remote=%s hostname=%s method=%s reason=%s",
        quote(call.remote), quote(hostname), quote(call.method), quote(reason),
    )


async def _identify(
    database: Database,
    call: AgentCall,
    hostname: str,
    uid: str,
    matches: Callable[[str], bool],
) -> Caller:
    """Find the computer the request speaks for and check its credentials.

    The uid is tried first, so a renamed machine keeps its record. A uid
    stored for a computer with another hostname counts only when the
    request carries that computer's own agent key, because first-contact
    credentials must not let a second machine take over a record. Without
    that key the hostname decides, which keeps two machines cloned from
    one image (same uid, own hostnames, own keys) apart.
    """
    async with database.reader() as connection:
        by_uid = await computers.find_by_uid(connection, uid) if uid else None
        if by_uid is not None and by_uid["hostname"].lower() == hostname.lower():
            by_hostname: Row | None = by_uid
        else:
            by_hostname = await computers.find_by_hostname(connection, hostname)
    settings = await read_agent_settings(database)
    if by_uid is not None and by_hostname is not by_uid:
        if by_uid["agent_key"] and matches(by_uid["agent_key"]):
            return await _verify_known(database, call, by_uid, matches, settings)
        if by_hostname is None:
            raise Rejected(
                f"uid {uid} is registered to another computer, and the request "
                f"for hostname {hostname} does not carry its key",
                log_detail=(
                    f"uid {uid} belongs to computer {by_uid['hostname']}, and the "
                    f"request for hostname {hostname} does not carry its key; "
                    f"register {hostname} with 'ocoserver computer add' if it is "
                    "another machine"
                ),
            )
    if by_hostname is None:
        return await _register(database, call, hostname, uid, matches, settings)
    return await _verify_known(database, call, by_hostname, matches, settings)


async def _follow_identity(
    database: Database, caller: Caller, hostname: str, uid: str
) -> None:
    """Rename a computer found by uid, and store a uid it reports anew."""
    stored = caller.computer
    if not uid:
        return
    if stored["uid"] == uid:
        if caller.hostname.lower() != hostname.lower():
            async with database.transaction() as connection:
                await computers.rename(
                    connection, caller.computer_id, caller.hostname, hostname
                )
        return
    # A computer whose uid another computer holds sends it with every
    # request, so a read comes first and the write lock only when needed.
    async with database.reader() as connection:
        holder = await computers.find_by_uid(connection, uid)
    if holder is not None and holder["id"] == caller.computer_id:
        return  # stored by a concurrent request of the same computer
    if holder is None:
        async with database.transaction() as connection:
            holder = await computers.set_uid(connection, caller.computer_id, uid)
    if holder is None:
        log.info(
            "computer %s (id %d) reports uid %s; stored (was %s)",
            caller.hostname, caller.computer_id, quote(uid), quote(stored["uid"]),
        )
        return
    # Every request of such a computer repeats this, so only the first
    # contact logs it above debug level.
    level = logging.WARNING if caller.keys_issued else logging.DEBUG
    log.log(
        level,
        "computer %s (id %d) reports uid %s, which computer %s (id %d) has; "
        "uid not stored",
        caller.hostname, caller.computer_id, quote(uid), holder["hostname"],
        holder["id"],
    )


async def _register(
    database: Database,
    call: AgentCall,
    hostname: str,
    uid: str,
    matches: Callable[[str], bool],
    settings: AgentSettings,
) -> Caller:
    if not settings.self_registration:
        raise _unauthenticated(
            hostname,
            f"computer {hostname} is not registered, and self-registration is off",
        )
    if not settings.registration_key or not matches(settings.registration_key):
        raise _unauthenticated(
            hostname, f"invalid registration key for new computer {hostname}"
        )
    if call.method != HELLO:
        raise Rejected("a new computer must send oco.agent.hello first")
    _check_new_hostname(hostname)
    async with database.transaction() as connection:
        existing = await computers.find_by_hostname(connection, hostname)
        if existing is not None:
            # Another request registered this computer a moment ago.
            created = False
            computer_id = existing["id"]
            if existing["agent_key"] and existing["keys_confirmed"]:
                raise Rejected(f"computer {hostname} registered concurrently")
        else:
            created = True
            computer_id = await computers.insert(connection, hostname)
            if uid:
                await computers.set_uid(connection, computer_id, uid)
            await computers.issue_keys(connection, computer_id)
        computer = await computers.get_keys(connection, computer_id)
    if created:
        log.info(
            "computer %s registered itself from %s (id %d); keys issued",
            hostname, call.remote, computer_id,
        )
    return Caller(computer=computer, generation=call.generation, keys_issued=True)


def _unauthenticated(hostname: str, reason: str) -> Rejected:
    """Build the rejection of a request whose computer or key did not match.

    The client gets one message for an unknown computer and for a wrong key,
    so that it cannot find out which hostnames are registered. The log line
    keeps the `reason`.
    """
    return Rejected(
        f"computer {hostname} is unknown or its agent key or signature is invalid",
        log_detail=reason,
    )


def _check_new_hostname(hostname: str) -> None:
    """Apply the hostname rules of `computer add` to a computer registering itself."""
    try:
        computers.validate_hostname(hostname)
    except AdminError as error:
        raise InvalidParams(f"params.hostname: {error}") from None


async def _verify_known(
    database: Database,
    call: AgentCall,
    computer: Row,
    matches: Callable[[str], bool],
    settings: AgentSettings,
) -> Caller:
    hostname = computer["hostname"]
    if computer["signed"] and call.generation == 1:
        raise Rejected(
            f"computer {hostname} signs its requests; an unsigned request is refused"
        )
    if computer["agent_key"] and matches(computer["agent_key"]):
        if computer["keys_confirmed"] and (
            computer["signed"] or call.generation == 1
        ):
            return Caller(computer=computer, generation=call.generation,
                          keys_issued=False)
        async with database.transaction() as connection:
            await computers.update_identity(
                connection, computer["id"], confirm_keys=True,
                signed=call.generation == 2, uid="",
            )
            computer = await computers.get_keys(connection, computer["id"])
        return Caller(computer=computer, generation=call.generation, keys_issued=False)

    first_contact = not computer["keys_confirmed"] and any(
        matches(key) for key in _first_contact_keys(settings)
    )
    if not first_contact:
        raise _unauthenticated(
            hostname, f"invalid agent key or signature for computer {hostname}"
        )
    if call.method != HELLO:
        raise Rejected(f"computer {hostname} must send oco.agent.hello first")
    async with database.transaction() as connection:
        current = await computers.get_keys(connection, computer["id"])
        if current["keys_confirmed"]:
            raise Rejected(f"computer {hostname} confirmed its keys concurrently")
        if not current["agent_key"]:
            await computers.issue_keys(connection, computer["id"])
            log.info("keys issued to computer %s (first contact from %s)",
                     hostname, call.remote)
        else:
            log.info("keys sent again to computer %s, which has not used them yet",
                     hostname)
        computer = await computers.get_keys(connection, computer["id"])
    return Caller(computer=computer, generation=call.generation, keys_issued=True)


async def _accept_timestamp(
    database: Database,
    agent_config: AgentConfig,
    call: AgentCall,
    caller: Caller,
    authorize: Authorizer | None,
) -> None:
    """Apply the replay rule of signing.py to a signed request."""
    timestamp = call.params.get("timestamp")
    # A malformed timestamp of a correctly signed request is an invalid
    # request (400), not a failed authentication.
    if isinstance(timestamp, bool) or not isinstance(timestamp, int | float):
        raise InvalidParams(
            f"params.timestamp {preview(timestamp)} is invalid: send Unix seconds "
            "as a number"
        )
    if not math.isfinite(timestamp) or abs(timestamp) > MAX_TIMESTAMP:
        raise InvalidParams(
            f"params.timestamp {preview(timestamp)} is out of range: send Unix "
            "seconds as a number"
        )
    timestamp = float(timestamp)
    now = time.time()
    if timestamp > now + agent_config.max_clock_skew:
        raise Rejected(
            f"timestamp {timestamp:.4f} is {timestamp - now:.0f} s ahead of the "
            "server clock; correct the computer's clock"
        )
    assert call.signature is not None
    signature = call.signature.strip().lower()
    window = agent_config.replay_window
    async with database.transaction() as connection:
        newest = await _check_replay(
            connection, caller.computer_id, timestamp, signature, window
        )
        if authorize is not None:
            await authorize(connection, caller)
        newest = timestamp if newest is None else max(newest, timestamp)
        await _record_timestamp(
            connection, caller.computer_id, timestamp, newest, signature, window
        )


async def _check_replay(
    connection: aiosqlite.Connection,
    computer_id: int,
    timestamp: float,
    signature: str,
    window: float,
) -> float | None:
    """Raise Rejected for a stale or repeated request; return the newest timestamp."""
    # One query for both facts, because each query is a trip to the
    # connection's thread inside the write transaction.
    row = await fetch_one(
        connection,
        "SELECT agent_timestamp, EXISTS (SELECT 1 FROM seen_signature "
        "WHERE computer_id = :id AND signature = :signature) AS seen "
        "FROM computer WHERE id = :id",
        {"id": computer_id, "signature": signature},
    )
    assert row is not None
    newest: float | None = row["agent_timestamp"]
    if newest is not None and timestamp <= newest - window:
        raise Rejected(
            f"timestamp {timestamp:.4f} is older than the replay window "
            f"({window:g} s below the newest accepted {newest:.4f})"
        )
    if row["seen"]:
        raise Rejected("replayed request: this exact request was accepted before")
    return newest


async def _record_timestamp(
    connection: aiosqlite.Connection,
    computer_id: int,
    timestamp: float,
    newest: float,
    signature: str,
    window: float,
) -> None:
    await connection.execute(
        "INSERT INTO seen_signature (computer_id, signature, timestamp) "
        "VALUES (?, ?, ?)",
        (computer_id, signature, timestamp),
    )
    await connection.execute(
        "UPDATE computer SET agent_timestamp = ? WHERE id = ?", (newest, computer_id)
    )
    await connection.execute(
        "DELETE FROM seen_signature WHERE computer_id = ? AND timestamp <= ?",
        (computer_id, newest - window),
    )
