"""A fleet of simulated agents sharing one HTTP connection pool."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from ocoserver.simulate import payloads
from ocoserver.simulate.agent import AgentIdentity, ProtocolError, SimulatedAgent
from ocoserver.simulate.stats import Stats

log = logging.getLogger("ocoserver.simulate")

# Error messages logged per kind; later ones are only counted.
LOGGED_ERRORS_PER_KIND = 3


@dataclass(frozen=True)
class FleetOptions:
    url: str
    agents: int = 50
    # 1, 2 or 0 for mixed (odd-numbered computers generation 1, even ones 2).
    generation: int = 0
    # Seconds between the starts of two check-ins of one agent; 0 = no pause.
    interval: float = 5.0
    # Seconds to run; 0 = until every agent has done `cycles` check-ins.
    duration: float = 0.0
    # Check-ins per agent; 0 = until `duration` ends.
    cycles: int = 0
    registration_key: str = ""
    prefix: str = "sim-"
    first: int = 1
    software: int = 2000
    connections: int = 100
    timeout: float = 60.0
    keys_file: Path | None = None

    def hostnames(self) -> list[str]:
        return [f"{self.prefix}{n:04d}" for n in range(self.first, self.first + self.agents)]

    def generation_of(self, number: int) -> int:
        if self.generation in (1, 2):
            return self.generation
        return 1 if number % 2 else 2


class KeysFileError(ValueError):
    """The keys file cannot be read or written; raised before any request."""


def read_keys_file(path: Path | None) -> dict[str, dict[str, object]]:
    """Read the stored identities, checking first that the file can be written.

    A keys file that cannot be written at the end would lose the keys the
    agents received, and the server would then reject those computers.
    """
    if path is None:
        return {}
    if not path.parent.is_dir() or not os.access(path.parent, os.W_OK):
        raise KeysFileError(
            f"keys file {path}: folder {path.parent} is missing or not writable; "
            "give a path in a writable folder"
        )
    if not path.exists():
        return {}
    try:
        stored = json.loads(path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise KeysFileError(f"keys file {path} cannot be read: {error}") from None
    if not isinstance(stored, dict) or not all(
        isinstance(entry, dict) for entry in stored.values()
    ):
        raise KeysFileError(
            f"keys file {path} is not a keys file of this simulator; give another path"
        )
    return stored


def load_identities(options: FleetOptions) -> list[AgentIdentity]:
    """Return one identity per agent, with keys from the keys file when it has them."""
    stored = read_keys_file(options.keys_file)
    identities = []
    for offset, hostname in enumerate(options.hostnames()):
        if hostname in stored:
            identities.append(AgentIdentity(**stored[hostname]))  # type: ignore[arg-type]
            continue
        identities.append(
            AgentIdentity(
                hostname=hostname,
                generation=options.generation_of(options.first + offset),
                agent_key=options.registration_key,
            )
        )
    return identities


def save_identities(path: Path, identities: list[AgentIdentity]) -> None:
    """Write agent keys and timestamps, readable by the owner only (they are secrets)."""
    stored = {}
    if path.exists():
        stored = json.loads(path.read_text("utf-8"))
    stored.update({i.hostname: dataclasses.asdict(i) for i in identities})
    path.touch(mode=0o600, exist_ok=True)
    path.write_text(json.dumps(stored, indent=1), "utf-8")


async def run_fleet(
    options: FleetOptions,
    identities: list[AgentIdentity] | None = None,
    on_status: Callable[[Stats], None] | None = None,
    status_every: float = 5.0,
    stop: asyncio.Event | None = None,
) -> Stats:
    """Run the fleet until its duration or cycles are done, or `stop` is set."""
    if identities is None:
        identities = load_identities(options)
    schedule = _Schedule(options, stop or asyncio.Event())
    stats = Stats()
    software = payloads.software_list(options.software)
    connector = aiohttp.TCPConnector(limit=options.connections)
    timeout = aiohttp.ClientTimeout(total=options.timeout)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        agents = [
            SimulatedAgent(identity, options.first + offset, options.url, session,
                           stats, software)
            for offset, identity in enumerate(identities)
        ]  # fmt: skip
        reporter = None
        if on_status is not None:
            reporter = asyncio.create_task(_report_status(stats, on_status, status_every))
        try:
            await asyncio.gather(*(schedule.run_agent(agent) for agent in agents))
        finally:
            if reporter is not None:
                reporter.cancel()
    if options.keys_file is not None:
        save_identities(options.keys_file, identities)
    return stats


async def _report_status(
    stats: Stats, on_status: Callable[[Stats], None], every: float
) -> None:
    while True:
        await asyncio.sleep(every)
        on_status(stats)


class _Schedule:
    """When each agent checks in, and when the run ends."""

    def __init__(self, options: FleetOptions, stop: asyncio.Event) -> None:
        self.options = options
        self.stop = stop
        self.deadline = time.monotonic() + options.duration if options.duration else None

    async def run_agent(self, agent: SimulatedAgent) -> None:
        # Spread the first check-ins over one interval, as agents started at
        # different times would be.
        interval = self.options.interval
        if interval:
            await self._pause(random.uniform(0, interval))
        done = 0
        while not self._finished(done):
            started = time.monotonic()
            await _check_in_once(agent)
            done += 1
            if not self._finished(done):
                await self._pause(interval - (time.monotonic() - started))

    def _finished(self, done: int) -> bool:
        if self.stop.is_set():
            return True
        if self.options.cycles and done >= self.options.cycles:
            return True
        return self.deadline is not None and time.monotonic() >= self.deadline

    async def _pause(self, seconds: float) -> None:
        if self.deadline is not None:
            seconds = min(seconds, self.deadline - time.monotonic())
        if seconds <= 0:
            return
        try:
            await asyncio.wait_for(self.stop.wait(), seconds)
        except TimeoutError:
            pass


async def _check_in_once(agent: SimulatedAgent) -> None:
    stats = agent.stats
    try:
        await agent.check_in()
    except ProtocolError as error:
        _count_error(stats, agent, error.kind, str(error))
    except aiohttp.ClientError as error:
        _count_error(stats, agent, "connection", f"{type(error).__name__}: {error}")
    except TimeoutError:
        _count_error(stats, agent, "timeout", "no response within the timeout")
    stats.check_ins += 1


def _count_error(stats: Stats, agent: SimulatedAgent, kind: str, message: str) -> None:
    stats.errors[kind] += 1
    if stats.errors[kind] <= LOGGED_ERRORS_PER_KIND:
        log.warning("%s: %s error: %s", agent.identity.hostname, kind, message)
    elif stats.errors[kind] == LOGGED_ERRORS_PER_KIND + 1:
        log.warning("more %s errors follow; they are counted, not logged", kind)


def print_status(stats: Stats, agents: int) -> None:
    """Write the live status line to stderr (a rewritten line on a terminal)."""
    line = stats.status_line(agents)
    if sys.stderr.isatty():
        sys.stderr.write(f"\r{line}\x1b[K")
    else:
        sys.stderr.write(line + "\n")
    sys.stderr.flush()
