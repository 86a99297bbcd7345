"""Request signatures, replay protection and signed responses (generation 2).

Agents from 1.1.7 on send `x-oco-agent-signature`: the lower-case hex
HMAC-SHA256 of the raw request body, keyed with the agent key as UTF-8.
The server signs each response body the same way with the computer's
server key and puts a rising `result.timestamp` into it.

Replay rule for `params.timestamp`: let T be the newest timestamp accepted
for the computer and W the replay window (`agent.replay_window`, seconds).
A request is accepted when its timestamp is above T - W and its signature
was not accepted before; exact repeats are rejected. So a job-output
report built just before the final job state, but arriving just after it,
is still accepted, while anything older than the window is not. Accepted
signatures are kept in the database until they fall out of the window,
so a restart does not reopen it. Timestamps more than
`agent.max_clock_skew` seconds ahead of the server clock are rejected
without being stored, so one request from a machine with a wrong clock
does not lock that machine out once its clock is fixed.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time

from ocoserver.db import Database
from ocoserver.store import settings

log = logging.getLogger("ocoserver.signing")

SIGNATURE_HEADER = "x-oco-agent-signature"
SERVER_SIGNATURE_HEADER = "x-oco-server-signature"

# How far ahead of the last handed-out response timestamp the persisted
# reserve is moved; a restart resumes above the reserve, so timestamps keep
# rising even when the server clock was stepped back meanwhile.
RESERVE_SECONDS = 60.0
TIMESTAMP_STEP = 0.0001


def sign(body: bytes, key: str) -> str:
    """Return the hex HMAC-SHA256 of `body` keyed with `key`."""
    return hmac.new(key.encode("utf-8"), body, hashlib.sha256).hexdigest()


def signature_matches(body: bytes, key: str, signature: str) -> bool:
    """Compare the signature of `body` under `key` in constant time."""
    expected = sign(body, key)
    # hmac.compare_digest raises TypeError for str with non-ASCII characters,
    # and a valid signature is hex, so such a header never matches.
    if not signature.isascii():
        return False
    return hmac.compare_digest(expected, signature.strip().lower())


class ResponseClock:
    """Hands out response timestamps that rise across calls and restarts."""

    def __init__(self) -> None:
        self._last = 0.0
        self._reserved = 0.0
        self._lock = asyncio.Lock()

    async def load(self, database: Database) -> None:
        stored = await settings.get_response_timestamp_reserve(database)
        self._last = self._reserved = stored

    async def next(self, database: Database) -> float:
        """Return a timestamp above every one returned before."""
        value = max(round(time.time(), 4), round(self._last + TIMESTAMP_STEP, 4))
        self._last = value
        if value > self._reserved:
            async with self._lock:
                if value > self._reserved:
                    reserve = value + RESERVE_SECONDS
                    await settings.set_response_timestamp_reserve(database, reserve)
                    self._reserved = reserve
        return value
