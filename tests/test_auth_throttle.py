"""Blocking addresses after failed agent authentications.

The unit tests drive AuthThrottle with a settable clock. The endpoint tests
send requests from several loopback source addresses (127.0.0.1 to
127.0.0.5, all of which Linux routes to the loopback interface) to one
real server on 127.0.0.1.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from ocoserver.app import create_app
from ocoserver.auth_throttle import MAX_RECENT_FAILURES, AuthThrottle
from ocoserver.config import Config, SecurityConfig
from ocoserver.errors import TooManyRequests
from tests.admin import add_package, deploy, register, run_cli
from tests.agents import PlainAgent


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make_throttle(**values: Any) -> tuple[AuthThrottle, Clock]:
    settings = {"auth_failure_limit": 3, "auth_failure_window": 60.0,
                "auth_block_time": 300.0, **values}
    clock = Clock()
    return AuthThrottle(SecurityConfig(**settings), clock), clock


def is_blocked(throttle: AuthThrottle, remote: str) -> bool:
    try:
        throttle.check(remote)
    except TooManyRequests:
        return True
    return False


def test_address_blocked_at_limit():
    throttle, _ = make_throttle()

    for _ in range(2):
        throttle.record_failure("192.0.2.7", "lab-pc-01")
    assert not is_blocked(throttle, "192.0.2.7")
    throttle.record_failure("192.0.2.7", "lab-pc-02")

    with pytest.raises(TooManyRequests) as raised:
        throttle.check("192.0.2.7")
    assert raised.value.retry_after == 300
    assert raised.value.headers == {"Retry-After": "300"}
    assert raised.value.status == 429
    assert raised.value.code == -32029


def test_failures_outside_window_forgotten():
    throttle, clock = make_throttle()

    throttle.record_failure("192.0.2.7", "a")
    clock.now += 30
    throttle.record_failure("192.0.2.7", "b")
    clock.now += 31
    throttle.record_failure("192.0.2.7", "c")

    assert not is_blocked(throttle, "192.0.2.7")


def test_block_ends_after_block_time():
    throttle, clock = make_throttle()
    for _ in range(3):
        throttle.record_failure("192.0.2.7", "lab-pc-01")

    clock.now += 299.5
    assert is_blocked(throttle, "192.0.2.7")
    clock.now += 0.5
    assert not is_blocked(throttle, "192.0.2.7")
    # The failures before the block no longer count.
    throttle.record_failure("192.0.2.7", "lab-pc-01")
    assert not is_blocked(throttle, "192.0.2.7")


def test_other_address_not_blocked():
    throttle, _ = make_throttle()

    for _ in range(3):
        throttle.record_failure("192.0.2.7", "lab-pc-01")

    assert not is_blocked(throttle, "192.0.2.8")


def test_hostname_limit_blocks_failing_addresses():
    throttle, _ = make_throttle()

    throttle.record_failure("192.0.2.1", "lab-pc-01")
    throttle.record_failure("192.0.2.2", "LAB-PC-01")
    assert not is_blocked(throttle, "192.0.2.1")
    assert not is_blocked(throttle, "192.0.2.2")
    throttle.record_failure("192.0.2.3", "lab-pc-01")
    throttle.record_failure("192.0.2.4", "lab-pc-01")

    assert not is_blocked(throttle, "192.0.2.1")
    assert is_blocked(throttle, "192.0.2.3")
    assert is_blocked(throttle, "192.0.2.4")
    # An address that does not fail is never blocked by the hostname.
    assert not is_blocked(throttle, "192.0.2.9")


def test_tables_bounded_in_size():
    throttle, clock = make_throttle(max_tracked_clients=5)

    for index in range(50):
        clock.now += 0.01
        throttle.record_failure(f"192.0.2.{index}", f"host-{index}")

    assert throttle.tracked_counts() == (5, 5)


def test_stale_entries_pruned():
    throttle, clock = make_throttle()
    for index in range(4):
        throttle.record_failure(f"192.0.2.{index}", f"host-{index}")

    clock.now += 301
    throttle.record_failure("198.51.100.1", "host-new")

    assert throttle.tracked_counts() == (1, 1)


def test_zero_limit_disables_blocking():
    throttle, _ = make_throttle(auth_failure_limit=0)

    for _ in range(20):
        throttle.record_failure("192.0.2.7", "lab-pc-01")

    assert not is_blocked(throttle, "192.0.2.7")
    assert throttle.tracked_counts() == (0, 0)


# The agent endpoint


class SourceClient:
    """An HTTP client whose requests leave from a given loopback address.

    It has the request methods of aiohttp's TestClient that PlainAgent uses.
    """

    def __init__(self, session: aiohttp.ClientSession, base_url: str) -> None:
        self.session = session
        self.base_url = base_url

    def post(self, path: str, **kwargs: Any) -> Any:
        return self.session.post(self.base_url + path, **kwargs)

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.session.get(self.base_url + path, **kwargs)

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        return self.session.request(method, self.base_url + path, **kwargs)


@pytest.fixture
def config(tmp_path: Path) -> Config:
    security = SecurityConfig(auth_failure_limit=3, auth_block_time=300.0)
    return dataclasses.replace(Config.for_tests(tmp_path / "data"), security=security)


@pytest.fixture
async def server_url(config: Config) -> AsyncIterator[str]:
    runner = web.AppRunner(create_app(config))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


@pytest.fixture
async def source(server_url: str) -> AsyncIterator[Any]:
    """Return a function that makes a client sending from 127.0.0.N."""
    sessions: list[aiohttp.ClientSession] = []

    def make(last_octet: int) -> SourceClient:
        connector = aiohttp.TCPConnector(local_addr=(f"127.0.0.{last_octet}", 0))
        session = aiohttp.ClientSession(connector=connector)
        sessions.append(session)
        return SourceClient(session, server_url)

    yield make
    for session in sessions:
        await session.close()


async def confirmed_agent(config: Config, client: SourceClient) -> PlainAgent:
    await register(config)
    agent = PlainAgent(client)
    await agent.hello()
    await agent.hello()
    return agent


def guesser(client: SourceClient) -> PlainAgent:
    agent = PlainAgent(client)
    agent.agent_key = "x" * 32
    return agent


async def test_wrong_keys_get_429(config, source):
    await confirmed_agent(config, source(1))
    attacker = guesser(source(2))

    statuses = [(await attacker.call("hello.json"))[0] for _ in range(3)]
    response = await attacker.client.post(
        "/api-agent.php", json=attacker.body("hello.json")
    )

    assert statuses == [401, 401, 401]
    assert response.status == 429
    assert response.headers["Retry-After"] == "300"
    payload = await response.json()
    assert payload["error"]["code"] == -32029
    assert payload["error"]["data"] == {"retry-after": 300}
    assert "127.0.0.2" in payload["error"]["message"]


async def test_blocked_address_refused_with_key(config, source):
    await register(config, "lab-pc-02")
    attacker = guesser(source(2))
    for _ in range(3):
        await attacker.call("hello.json")
    # A real computer behind the blocked address is refused too.
    neighbour = PlainAgent(attacker.client, hostname="lab-pc-02")

    status, payload = await neighbour.call("hello.json")

    assert status == 429
    assert payload["error"]["code"] == -32029


async def test_blocked_address_download_refused(config, source):
    agent = await confirmed_agent(config, source(2))
    package_id = await add_package(config, "-")
    attacker = guesser(agent.client)
    for _ in range(3):
        await attacker.call("hello.json")

    response = await agent.download(package_id)

    assert response.status == 429
    assert response.headers["Retry-After"] == "300"


async def test_correct_agent_elsewhere_unaffected(config, source):
    agent = await confirmed_agent(config, source(1))
    attacker = guesser(source(2))
    for _ in range(5):
        await attacker.call("hello.json")

    status, _ = await agent.call("hello.json")

    assert status == 200


async def test_hostname_guesses_spare_real_agent(config, source):
    agent = await confirmed_agent(config, source(1))
    statuses = []
    for octet in (2, 3, 4, 5):
        attacker = guesser(source(octet))
        statuses.append((await attacker.call("hello.json"))[0])
        statuses.append((await attacker.call("hello.json"))[0])

    status, _ = await agent.call("hello.json")

    # 127.0.0.2 fails twice, 127.0.0.3 reaches the hostname limit with its
    # first failure, and each later address is blocked after one failure.
    assert statuses == [401, 401, 401, 429, 401, 429, 401, 429]
    assert status == 200


async def test_rejection_and_block_logged(config, source, caplog):
    caplog.set_level(logging.INFO, logger="ocoserver")
    await confirmed_agent(config, source(1))
    attacker = guesser(source(2))

    for _ in range(4):
        await attacker.call("hello.json")

    assert (
        "rejected agent request: remote=127.0.0.2 hostname=lab-pc-01 "
        'method=oco.agent.hello reason="invalid agent key or signature for '
        'computer lab-pc-01"'
    ) in caplog.text
    assert (
        "blocked address 127.0.0.2 for 300 s: 3 failed authentications from "
        "this address in 60 s"
    ) in caplog.text
    rejected = [r for r in caplog.records if "rejected agent request" in r.message]
    assert len(rejected) == 3


async def test_log_line_quotes_hostname(config, source, caplog):
    caplog.set_level(logging.INFO, logger="ocoserver")
    # Control characters in a hostname are rejected earlier as invalid
    # params, so this one imitates fields with spaces and quotes only.
    attacker = PlainAgent(source(2), hostname='x remote=203.0.113.9 reason="a"')

    status, _ = await attacker.call("hello.json")

    assert status == 401
    [record] = [r for r in caplog.records if "rejected agent request" in r.message]
    # The first remote= field, the one a fail2ban filter matches, is the
    # real source address.
    first_remote = re.search(r"remote=(\S+)", record.message)
    assert first_remote is not None
    assert first_remote.group(1) == "127.0.0.2"
    assert 'hostname="x remote=203.0.113.9 reason=\\"a\\""' in record.message


async def test_foreign_job_reports_not_counted(config, source, caplog):
    caplog.set_level(logging.INFO, logger="ocoserver")
    agent = await confirmed_agent(config, source(1))
    await register(config, "lab-pc-02")
    other = PlainAgent(source(1), hostname="lab-pc-02")
    await other.hello()
    package_id = await add_package(config, "-")
    await deploy(config, [package_id], ["lab-pc-02"])
    _, output = await run_cli(config, "job", "list", "--json")
    [job] = [row["id"] for row in json.loads(output)]

    statuses = [
        (await agent.call("update_job_state-finished.json", **{"job-id": job}))[0]
        for _ in range(5)
    ]
    params = await agent.hello()

    assert statuses == [401] * 5
    assert params["software-jobs"] == []
    refused = [r.message for r in caplog.records if "refused agent request" in r.message]
    assert len(refused) == 5
    assert not [r for r in caplog.records if "rejected agent request" in r.message]


@pytest.fixture
def default_config(tmp_path: Path) -> Config:
    return Config.for_tests(tmp_path / "default-data")


async def test_default_limit_blocks_eleventh_guess(default_config):
    runner = web.AppRunner(create_app(default_config))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    attacker_session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(local_addr=("127.0.0.2", 0))
    )
    agent_session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(local_addr=("127.0.0.1", 0))
    )
    try:
        agent = await confirmed_agent(default_config, SourceClient(agent_session, url))
        attacker = guesser(SourceClient(attacker_session, url))

        statuses = [(await attacker.call("hello.json"))[0] for _ in range(11)]
        params = await agent.hello()
    finally:
        await attacker_session.close()
        await agent_session.close()
        await runner.cleanup()

    assert default_config.security.auth_failure_limit == 10
    assert statuses == [401] * 10 + [429]
    assert params["agent-key"] is None


def test_rejection_kept_with_reason():
    throttle, _ = make_throttle()

    throttle.record_rejection("192.0.2.7", "lab-pc-01", "replayed request")
    [rejection] = throttle.recent_failures()

    assert rejection.remote == "192.0.2.7"
    assert rejection.name == "lab-pc-01"
    assert rejection.reason == "replayed request"
    assert rejection.count == 1


def test_identical_rejections_share_entry():
    throttle, _ = make_throttle()

    for _ in range(30):
        throttle.record_rejection("192.0.2.7", "", "throttled")
    throttle.record_rejection("192.0.2.8", "", "throttled")
    newest, older = throttle.recent_failures()

    assert newest.remote == "192.0.2.8"
    assert older.count == 30


def test_blocked_request_recorded_throttled():
    throttle, _ = make_throttle()
    for _ in range(3):
        throttle.record_failure("192.0.2.7", "lab-pc-01")

    for _ in range(2):
        assert is_blocked(throttle, "192.0.2.7")
    [rejection] = throttle.recent_failures()

    assert rejection.reason.startswith("throttled:")
    assert rejection.count == 2


def test_rejection_list_keeps_newest():
    throttle, _ = make_throttle()

    for index in range(MAX_RECENT_FAILURES + 5):
        throttle.record_rejection("192.0.2.7", f"host-{index}", "unknown computer")
    names = [rejection.name for rejection in throttle.recent_failures()]

    assert len(names) == MAX_RECENT_FAILURES
    assert names[0] == f"host-{MAX_RECENT_FAILURES + 4}"
