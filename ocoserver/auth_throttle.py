"""Blocking of client addresses that fail agent authentication too often.

Every rejected agent authentication (wrong key or signature, unknown
computer, wrong registration key, replayed or stale request) counts
against the client address and against the hostname the request claimed,
in a sliding window of `security.auth_failure_window` seconds. An address
with `security.auth_failure_limit` failures in the window is blocked: each
of its agent requests receives HTTP 429 for `security.auth_block_time`
seconds, correct or not.

A hostname is never blocked itself, because any client can claim any
hostname, and blocking the name would lock the real computer out. While a
hostname has `auth_failure_limit` failures in the window, each further
failed request for it blocks the address that sent it at once. An attacker
who spreads guesses for one computer over many addresses therefore loses
one address per guess, while the real computer, whose requests
authenticate, is not rejected.

The counters live in memory. A restart clears them, and each table keeps at
most `security.max_tracked_clients` entries, dropping the entry with the
oldest failure first. The latest MAX_RECENT_FAILURES rejections, each
with its reason, are kept in memory for the web console's dashboard, also
while blocking is turned off.
"""

from __future__ import annotations

import logging
import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from ocoserver.config import SecurityConfig
from ocoserver.errors import TooManyRequests
from ocoserver.logtext import quote

log = logging.getLogger("ocoserver.auth")


# Rejected authentications kept for the web console's dashboard.
MAX_RECENT_FAILURES = 20

# Reason of a request rejected because its address is blocked.
THROTTLED = "throttled: address blocked after too many failed authentications"


@dataclass(frozen=True)
class RecentFailure:
    """A rejected authentication, or a run of identical ones, for the dashboard.

    `name` is the claimed hostname or account, empty when the request was
    rejected before it named one. `reason` is the cause of the rejection,
    with no key, signature or password in it. `count` is the number of
    identical rejections in a row that this entry covers, and `time` is the
    wall-clock time of the latest.
    """

    time: float
    remote: str
    name: str
    reason: str
    count: int = 1


@dataclass
class _Failures:
    """Failure times of one address or hostname, oldest first."""

    times: deque[float] = field(default_factory=deque)
    blocked_until: float = 0.0
    # Requests rejected during the current block, logged when it ends.
    rejected: int = 0


class _FailureTable:
    """Failure records by key, least recently failed first, at most `limit`."""

    def __init__(self, limit: int, keep_seconds: float) -> None:
        self._entries: OrderedDict[str, _Failures] = OrderedDict()
        self._limit = limit
        self._keep_seconds = keep_seconds

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> _Failures | None:
        return self._entries.get(key)

    def add_failure(self, key: str, now: float, window: float) -> _Failures:
        """Record a failure at `now` and drop this key's failures older than `window`."""
        entry = self._entries.pop(key, None) or _Failures()
        self._entries[key] = entry
        entry.times.append(now)
        while entry.times[0] <= now - window:
            entry.times.popleft()
        self._prune(now)
        return entry

    def _prune(self, now: float) -> None:
        # Entries are ordered by their newest failure, so the stale ones are
        # at the front. A block never outlasts its entry, because
        # keep_seconds is at least the block time.
        while self._entries:
            key, entry = next(iter(self._entries.items()))
            stale = not entry.times or entry.times[-1] < now - self._keep_seconds
            if not stale and len(self._entries) <= self._limit:
                return
            del self._entries[key]


class AuthThrottle:
    """Failure counters per address and per hostname, and the resulting blocks."""

    def __init__(
        self, config: SecurityConfig, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._config = config
        self._clock = clock
        keep_seconds = max(config.auth_failure_window, config.auth_block_time)
        self._addresses = _FailureTable(config.max_tracked_clients, keep_seconds)
        self._hostnames = _FailureTable(config.max_tracked_clients, keep_seconds)
        self._recent: deque[RecentFailure] = deque(maxlen=MAX_RECENT_FAILURES)

    @property
    def enabled(self) -> bool:
        return self._config.auth_failure_limit > 0

    def check(self, remote: str) -> None:
        """Raise TooManyRequests while `remote` is blocked."""
        if not self.enabled:
            return
        entry = self._addresses.get(remote)
        if entry is None or entry.blocked_until == 0.0:
            return
        now = self._clock()
        if entry.blocked_until <= now:
            log.info(
                "block of address %s ended; %d requests were rejected during it",
                quote(remote), entry.rejected,
            )
            entry.blocked_until = 0.0
            entry.rejected = 0
            entry.times.clear()
            return
        entry.rejected += 1
        self.record_rejection(remote, "", THROTTLED)
        retry_after = math.ceil(entry.blocked_until - now)
        raise TooManyRequests(
            f"too many failed authentications from {remote}; "
            f"retry in {retry_after} s",
            retry_after,
        )

    def record_failure(self, remote: str, name: str | None) -> None:
        """Count a failed authentication and block `remote` past the limit.

        `name` is the hostname or account the request claimed. Failures are
        counted per name too, unless it is None, as for API keys, which
        claim no name. The dashboard's list is kept by `record_rejection`,
        which the caller calls with the reason.
        """
        if not self.enabled:
            return
        now = self._clock()
        limit = self._config.auth_failure_limit
        window = self._config.auth_failure_window
        # NOTE: an IPv6 client is counted per full address, so one client
        # that owns a whole prefix can spread its failures over many keys.
        address = self._addresses.add_failure(remote, now, window)
        claimed = 0
        if name is not None:
            claimed = len(self._hostnames.add_failure(name.lower(), now, window).times)
        if len(address.times) >= limit:
            reason = f"{len(address.times)} failed authentications from this address"
        elif name is not None and claimed >= limit:
            reason = f"{claimed} failed authentications for {quote(name)}"
        else:
            return
        address.blocked_until = now + self._config.auth_block_time
        log.warning(
            "blocked address %s for %g s: %s in %g s",
            quote(remote), self._config.auth_block_time, reason, window,
        )

    def record_rejection(self, remote: str, name: str, reason: str) -> None:
        """Add a rejected authentication to the dashboard's list.

        A rejection identical to the newest entry (same address, name and
        reason) raises that entry's count, so that one blocked client that
        keeps retrying does not push every other entry out of the list.
        """
        now = time.time()
        newest = self._recent[-1] if self._recent else None
        if newest is not None and (newest.remote, newest.name, newest.reason) == (
            remote, name, reason,
        ):  # fmt: skip
            self._recent[-1] = replace(newest, time=now, count=newest.count + 1)
            return
        self._recent.append(RecentFailure(now, remote, name, reason))

    def recent_failures(self) -> list[RecentFailure]:
        """Return the latest rejected authentications since the start, newest first."""
        return list(reversed(self._recent))

    def tracked_counts(self) -> tuple[int, int]:
        """Return how many addresses and hostnames have failure records."""
        return len(self._addresses), len(self._hostnames)
