"""Which pending jobs a computer receives: schedule, conditions, order, caps.

Agents check in through the real server. Where a case depends on the time
of day, the selection function receives the time instead of the test
waiting for it.
"""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any, NamedTuple

import pytest

from ocoserver import timefmt
from ocoserver.config import Config
from ocoserver.store import (
    computers,
    deployment_rules,
    groups,
    jobs,
    memberships,
    packages,
    rule_jobs,
)
from ocoserver.store.groups import COMPUTER_GROUPS, PACKAGE_GROUPS
from tests.admin import (
    add_package,
    deploy,
    job_rows,
    make_package_folder,
    register,
    run_cli,
)
from tests.agents import PlainAgent, SignedAgent


@pytest.fixture
def config(tmp_path, request) -> Config:
    """The test config; indirect parametrization passes section overrides."""
    overrides: dict[str, dict[str, Any]] = getattr(request, "param", {})
    base = Config.for_tests(tmp_path / "data", **overrides.get("server", {}))
    agent = dataclasses.replace(base.agent, **overrides.get("agent", {}))
    return dataclasses.replace(base, agent=agent)


def utc_text(delta: datetime.timedelta) -> str:
    return timefmt.to_text(datetime.datetime.now(datetime.UTC) + delta)


def frame_around_now(start_minutes: int, end_minutes: int) -> str:
    """A daily time frame from now + start to now + end, in server local time."""
    now = datetime.datetime.now().astimezone()
    start = now + datetime.timedelta(minutes=start_minutes)
    end = now + datetime.timedelta(minutes=end_minutes)
    return f"* {start:%H:%M}-{end:%H:%M}"


HOUR = datetime.timedelta(hours=1)
PROXY = {"server": {"trusted_proxies": ("127.0.0.1",)}}
PROXY_CHAIN = {"server": {"trusted_proxies": ("127.0.0.1", "192.0.2.0/24")}}


class HelloCase(NamedTuple):
    deploy_args: list[str]
    config: dict[str, Any]
    forwarded_for: str | None
    handed_out: bool


# The test client connects from 127.0.0.1.
HELLO_CASES = {
    "no-conditions": HelloCase([], {}, None, True),
    "start-later": HelloCase(["--start", utc_text(HOUR)], {}, None, False),
    "end-passed": HelloCase(
        ["--start", utc_text(-2 * HOUR), "--end", utc_text(-HOUR)], {}, None, False
    ),
    "inside-start-end": HelloCase(
        ["--start", utc_text(-HOUR), "--end", utc_text(HOUR)], {}, None, True
    ),
    "frame-open-now": HelloCase(
        ["--time-frame", frame_around_now(-60, 60)], {}, None, True
    ),
    "frame-opens-later": HelloCase(
        ["--time-frame", frame_around_now(120, 180)], {}, None, False
    ),
    "second-frame-open": HelloCase(
        [
            "--time-frame",
            frame_around_now(120, 180),
            "--time-frame",
            frame_around_now(-60, 60),
        ],
        {},
        None,
        True,
    ),
    "peer-in-range": HelloCase(["--ip-range", "127.0.0.0/8"], {}, None, True),
    "peer-outside-range": HelloCase(["--ip-range", "10.0.0.0/8"], {}, None, False),
    "peer-excluded": HelloCase(
        ["--ip-range", "127.0.0.0/8", "--ip-range", "!127.0.0.1"], {}, None, False
    ),
    "only-exclusion-other": HelloCase(["--ip-range", "!10.0.5.0/24"], {}, None, True),
    "header-without-proxy-ignored": HelloCase(
        ["--ip-range", "10.0.0.0/8"], {}, "10.1.2.3", False
    ),
    "proxy-forwards-inside": HelloCase(
        ["--ip-range", "10.0.0.0/8"], PROXY, "10.1.2.3", True
    ),
    "proxy-forwards-excluded": HelloCase(
        ["--ip-range", "10.0.0.0/8", "--ip-range", "!10.0.5.0/24"],
        PROXY,
        "10.0.5.9",
        False,
    ),
    "spoofed-left-entry": HelloCase(
        ["--ip-range", "10.0.0.0/8"], PROXY, "10.1.2.3, 192.0.2.50", False
    ),
    "proxy-chain-skipped": HelloCase(
        ["--ip-range", "10.0.0.0/8"], PROXY_CHAIN, "10.1.2.3, 192.0.2.50", True
    ),
    "proxy-forwards-ipv6": HelloCase(
        ["--ip-range", "2001:db8::/32"], PROXY, "2001:db8::7", True
    ),
}


@pytest.mark.parametrize(
    ("config", "case"),
    [(case.config, case) for case in HELLO_CASES.values()],
    ids=HELLO_CASES.keys(),
    indirect=["config"],
)
async def test_hello_conditions_table(client, config, database, case):
    await register(config)
    package_id = await add_package(config, "-")
    container_id = await deploy(config, [package_id], ["lab-pc-01"], *case.deploy_args)
    [job] = await job_rows(database, container_id)
    agent = PlainAgent(client)
    if case.forwarded_for is not None:
        agent.headers["X-Forwarded-For"] = case.forwarded_for

    params = await agent.hello()

    handed = [entry["id"] for entry in params["software-jobs"]]
    assert handed == ([job["id"]] if case.handed_out else [])


@pytest.mark.parametrize("config", [PROXY], indirect=True)
async def test_signed_hello_uses_forwarded_address(client, config, database):
    await register(config)
    package_id = await add_package(config, "-")
    await deploy(config, [package_id], ["lab-pc-01"], "--ip-range", "10.0.0.0/8")
    agent = SignedAgent(client)
    agent.headers["X-Forwarded-For"] = "10.9.8.7"

    params = await agent.hello()

    assert len(params["software-jobs"]) == 1
    stored = await database.fetch_value("SELECT remote_address FROM computer")
    assert stored == "10.9.8.7"


@pytest.mark.parametrize("config", [PROXY], indirect=True)
async def test_bad_forwarded_entry_warned_once(client, config, caplog):
    await register(config)
    agent = PlainAgent(client)
    agent.headers["X-Forwarded-For"] = "not-an-address"
    await agent.hello()
    caplog.clear()

    wrong = PlainAgent(client)
    wrong.headers["X-Forwarded-For"] = "not-an-address"
    wrong.agent_key = "wrong-key"
    status, _ = await wrong.call("hello.json")
    warnings = [r.getMessage() for r in caplog.records if "X-Forwarded-For" in r.getMessage()]

    assert status == 401
    assert warnings == [
        "X-Forwarded-For entry not-an-address from proxy 127.0.0.1 is not an IP "
        "address; using the proxy's address"
    ]


def local(day: int, hour: int, minute: int = 0) -> datetime.datetime:
    """A server local time in the week of Monday 2026-05-04 (day 0 = Monday)."""
    return datetime.datetime(2026, 5, 4 + day, hour, minute).astimezone()


class ClockCase(NamedTuple):
    deploy_args: list[str]
    now: datetime.datetime
    handed_out: bool


EVENINGS = ["--time-frame", "Mon-Fri 18:00-06:00"]
MAY = ["--start", "2026-05-01 00:00", "--end", "2026-06-01 00:00"]

CLOCK_CASES = {
    "monday-evening": ClockCase(EVENINGS, local(0, 19), True),
    "monday-early-morning": ClockCase(EVENINGS, local(0, 5), False),
    "monday-midday": ClockCase(EVENINGS, local(0, 12), False),
    "tuesday-before-six": ClockCase(EVENINGS, local(1, 5, 59), True),
    "tuesday-at-six": ClockCase(EVENINGS, local(1, 6), False),
    "saturday-after-friday": ClockCase(EVENINGS, local(5, 5), True),
    "saturday-evening": ClockCase(EVENINGS, local(5, 19), False),
    "weekend-whole-day": ClockCase(
        ["--time-frame", "Sat,Sun 00:00-24:00"], local(6, 23, 59), True
    ),
    "before-start": ClockCase(
        MAY, datetime.datetime(2026, 4, 30, 23, 59, tzinfo=datetime.UTC), False
    ),
    "after-start": ClockCase(
        MAY, datetime.datetime(2026, 5, 1, 0, 0, tzinfo=datetime.UTC), True
    ),
    "before-end": ClockCase(
        MAY, datetime.datetime(2026, 5, 31, 23, 59, tzinfo=datetime.UTC), True
    ),
    "at-end": ClockCase(
        MAY, datetime.datetime(2026, 6, 1, 0, 0, tzinfo=datetime.UTC), False
    ),
}


@pytest.mark.parametrize("case", CLOCK_CASES.values(), ids=CLOCK_CASES.keys())
async def test_selection_clock_table(client, config, database, case):
    await register(config)
    package_id = await add_package(config, "-")
    await deploy(
        config, [package_id], ["lab-pc-01"], "--start", "2026-01-01", *case.deploy_args
    )
    computer_id = await database.fetch_value("SELECT id FROM computer")
    delivery = jobs.Delivery(now=case.now, address="127.0.0.1")

    async with database.reader() as connection:
        pending = await jobs.pending_for_computer(connection, computer_id, delivery)

    assert len(pending) == (1 if case.handed_out else 0)


async def test_started_job_ignores_frame(client, config, database):
    await register(config)
    package_id = await add_package(config, "-")
    container_id = await deploy(
        config, [package_id], ["lab-pc-01"], "--time-frame", frame_around_now(-60, 60)
    )
    agent = PlainAgent(client)
    await agent.hello()
    [job] = await job_rows(database, container_id)
    await agent.call("update_job_state-executing.json", **{"job-id": job["id"]})
    closed = datetime.datetime.now(datetime.UTC) + 3 * HOUR
    computer_id = await database.fetch_value("SELECT id FROM computer")

    async with database.reader() as connection:
        pending = await jobs.pending_for_computer(
            connection, computer_id, jobs.Delivery(now=closed, address="127.0.0.1")
        )

    assert [row["id"] for row in pending] == [job["id"]]


async def test_order_priority_then_sequence(client, config, database):
    await register(config)
    first = await add_package(config, "-", name="first")
    second = await add_package(config, "-", name="second")
    low = await deploy(config, [first, second], ["lab-pc-01"])
    high = await deploy(config, [second, first], ["lab-pc-01"], "--priority", "5")
    later = await deploy(config, [first], ["lab-pc-01"])
    agent = PlainAgent(client)

    params = await agent.hello()

    order = [(e["container-id"], e["package-id"]) for e in params["software-jobs"]]
    assert order == [
        (high, second),
        (high, first),
        (low, first),
        (low, second),
        (later, first),
    ]


HOSTS = [f"lab-pc-{number:02d}" for number in range(1, 6)]
CAP = {"agent": {"max_concurrent_downloads": 2}}


async def _five_download_agents(client, config, tmp_path) -> list[PlainAgent]:
    for hostname in HOSTS:
        await register(config, hostname)
    package_id = await add_package(config, str(make_package_folder(tmp_path)))
    await deploy(config, [package_id], HOSTS)
    return [PlainAgent(client, hostname) for hostname in HOSTS]


@pytest.mark.parametrize("config", [CAP], indirect=True)
async def test_download_cap_two_of_five(client, config, database, tmp_path):
    agents = await _five_download_agents(client, config, tmp_path)

    handed = [len((await agent.hello())["software-jobs"]) for agent in agents]

    assert handed == [1, 1, 0, 0, 0]


@pytest.mark.parametrize("config", [CAP], indirect=True)
async def test_download_cap_frees_slot(client, config, database, tmp_path):
    agents = await _five_download_agents(client, config, tmp_path)
    first_jobs = [(await agent.hello())["software-jobs"] for agent in agents]
    job_id = first_jobs[0][0]["id"]
    await agents[0].call(
        "update_job_state-downloading-start.json", **{"job-id": job_id}
    )
    still_blocked = await agents[2].hello()
    await agents[0].call("update_job_state-executing.json", **{"job-id": job_id})

    handed = [len((await agent.hello())["software-jobs"]) for agent in agents[2:]]

    assert still_blocked["software-jobs"] == []
    assert handed == [1, 0, 0]


@pytest.mark.parametrize("config", [CAP], indirect=True)
async def test_download_cap_stale_slot(client, config, database, tmp_path):
    agents = await _five_download_agents(client, config, tmp_path)
    for agent in agents:
        await agent.hello()
    computer_id = await database.fetch_value(
        "SELECT id FROM computer WHERE hostname = 'lab-pc-03'"
    )
    later = datetime.datetime.now(datetime.UTC) + datetime.timedelta(
        seconds=config.agent.download_timeout + 60
    )
    delivery = jobs.Delivery(
        now=later,
        address="127.0.0.1",
        max_concurrent_downloads=2,
        download_timeout=config.agent.download_timeout,
    )

    async with database.transaction() as connection:
        pending = await jobs.pending_for_computer(connection, computer_id, delivery)

    assert len(pending) == 1


ONE_SLOT = {"agent": {"max_concurrent_downloads": 1}}
RULE_HOSTS = ["lab-pc-01", "lab-pc-02"]


async def zip_package(database, config, tmp_path, name: str) -> int:
    """Add a package with a payload, so its jobs need a download."""
    (tmp_path / name).mkdir()
    folder = make_package_folder(tmp_path / name)
    spec = packages.PackageSpec(family=name, version="1", install_procedure="run")
    return await packages.add(database, config.depot_path, spec, folder)


async def script_package(database, config, name: str) -> int:
    """Add a package without a payload, so its jobs need no download."""
    spec = packages.PackageSpec(family=name, version="1", install_procedure="run")
    return await packages.add(database, config.depot_path, spec, None)


async def seed_rule(
    database, name: str, hosts: list[str], package_ids: list[int]
) -> int:
    """Create a deployment rule over new groups, both named `name`."""
    await groups.add(database, COMPUTER_GROUPS, name, None)
    for hostname in hosts:
        await memberships.add_member(database, COMPUTER_GROUPS, name, hostname)
    await groups.add(database, PACKAGE_GROUPS, name, None)
    for package_id in package_ids:
        await memberships.add_member(database, PACKAGE_GROUPS, name, str(package_id))
    return await deployment_rules.add(
        database, deployment_rules.RuleSpec(name, name, name)
    )


async def _rule_download_agents(client, config, database, tmp_path) -> list[PlainAgent]:
    """Put both RULE_HOSTS in a rule of one download package (rule jobs 1, 2)."""
    for hostname in RULE_HOSTS:
        await computers.add(database, hostname)
    package_id = await zip_package(database, config, tmp_path, "zip")
    await seed_rule(database, "lab", RULE_HOSTS, [package_id])
    return [PlainAgent(client, hostname) for hostname in RULE_HOSTS]


def handed_ids(params: dict[str, Any]) -> list[Any]:
    return [entry["id"] for entry in params["software-jobs"]]


@pytest.mark.parametrize("config", [ONE_SLOT], indirect=True)
async def test_rule_cap_one_of_two(client, config, database, tmp_path):
    agents = await _rule_download_agents(client, config, database, tmp_path)

    first = await agents[0].hello()
    second = await agents[1].hello()

    assert handed_ids(first) == ["dynamic-1"]
    assert handed_ids(second) == []
    offered = await database.fetch_all("SELECT offered FROM rule_job ORDER BY id")
    assert offered[0]["offered"] is not None
    assert offered[1]["offered"] is None


@pytest.mark.parametrize("config", [ONE_SLOT], indirect=True)
async def test_rule_cap_frees_on_finish(client, config, database, tmp_path):
    agents = await _rule_download_agents(client, config, database, tmp_path)
    await agents[0].hello()
    await agents[0].call(
        "update_job_state-downloading-start.json", **{"job-id": "dynamic-1"}
    )
    while_downloading = await agents[1].hello()
    await agents[0].call("update_job_state-finished.json", **{"job-id": "dynamic-1"})

    after_finish = await agents[1].hello()

    assert handed_ids(while_downloading) == []
    assert handed_ids(after_finish) == ["dynamic-2"]


@pytest.mark.parametrize("config", [ONE_SLOT], indirect=True)
async def test_rule_cap_stale_slot(client, config, database, tmp_path):
    agents = await _rule_download_agents(client, config, database, tmp_path)
    await agents[0].hello()
    computer_id = await database.fetch_value(
        "SELECT id FROM computer WHERE hostname = 'lab-pc-02'"
    )
    timeout = datetime.timedelta(seconds=config.agent.download_timeout)
    now = datetime.datetime.now(datetime.UTC)

    handed = {}
    for label, moment in (("before", now + timeout / 2), ("after", now + 2 * timeout)):
        delivery = jobs.Delivery(
            now=moment,
            address="127.0.0.1",
            max_concurrent_downloads=1,
            download_timeout=config.agent.download_timeout,
        )
        async with database.transaction() as connection:
            _, rule_rows = await rule_jobs.pending_for_check_in(
                connection, computer_id, delivery
            )
        handed[label] = [row["id"] for row in rule_rows]

    assert handed["before"] == []
    assert handed["after"] == [2]


@pytest.mark.parametrize("config", [ONE_SLOT], indirect=True)
async def test_rule_cap_holds_later_jobs(client, config, database, tmp_path):
    agents = await _rule_download_agents(client, config, database, tmp_path)
    zip_id = await database.fetch_value("SELECT id FROM package")
    script_id = await script_package(database, config, "script")
    other_id = await script_package(database, config, "other")
    await memberships.add_member(database, PACKAGE_GROUPS, "lab", str(script_id))
    other_rule = await seed_rule(database, "tools", ["lab-pc-02"], [other_id])
    await agents[0].hello()

    params = await agents[1].hello()

    sent = [(e["container-id"], e["package-id"]) for e in params["software-jobs"]]
    assert sent == [(f"dynamic-{other_rule}", other_id)]
    assert zip_id not in [package_id for _, package_id in sent]


async def _mixed_download_agents(
    client, config, database, tmp_path
) -> list[PlainAgent]:
    """Give lab-pc-01 a container job and lab-pc-02 a rule job (dynamic-1)."""
    for hostname in RULE_HOSTS:
        await computers.add(database, hostname)
    package_id = await zip_package(database, config, tmp_path, "zip")
    await deploy(config, [package_id], ["lab-pc-01"])
    await seed_rule(database, "lab", ["lab-pc-02"], [package_id])
    return [PlainAgent(client, hostname) for hostname in RULE_HOSTS]


@pytest.mark.parametrize("config", [ONE_SLOT], indirect=True)
async def test_container_download_holds_rule(client, config, database, tmp_path):
    container_agent, rule_agent = await _mixed_download_agents(
        client, config, database, tmp_path
    )

    container_params = await container_agent.hello()
    rule_params = await rule_agent.hello()

    job_id = await database.fetch_value("SELECT id FROM job")
    assert handed_ids(container_params) == [job_id]
    assert handed_ids(rule_params) == []


@pytest.mark.parametrize("config", [ONE_SLOT], indirect=True)
async def test_rule_download_holds_container(client, config, database, tmp_path):
    container_agent, rule_agent = await _mixed_download_agents(
        client, config, database, tmp_path
    )
    rule_params = await rule_agent.hello()
    await rule_agent.call(
        "update_job_state-downloading-progress.json", **{"job-id": "dynamic-1"}
    )

    container_params = await container_agent.hello()

    assert handed_ids(rule_params) == ["dynamic-1"]
    assert handed_ids(container_params) == []
    offered = await database.fetch_value("SELECT offered FROM job")
    assert offered is None


async def test_transport_failure_retried(client, config, database):
    await register(config)
    package_id = await add_package(config, "-")
    container_id = await deploy(config, [package_id], ["lab-pc-01"])
    agent = PlainAgent(client)
    await agent.hello()
    [job] = await job_rows(database, container_id)

    await agent.call("update_job_state-error.json", **{"job-id": job["id"]})
    params = await agent.hello()

    [job] = await job_rows(database, container_id)
    assert job["state"] == jobs.WAITING
    assert job["message"].startswith("retry 1 of 3 after a transport failure")
    assert [entry["id"] for entry in params["software-jobs"]] == [job["id"]]
    retries = await database.fetch_value("SELECT retries FROM job")
    assert retries == 1


async def test_broken_download_retried(client, config, database):
    await register(config)
    package_id = await add_package(config, "-")
    container_id = await deploy(config, [package_id], ["lab-pc-01"])
    agent = PlainAgent(client)
    await agent.hello()
    [job] = await job_rows(database, container_id)
    await agent.call("update_job_state-downloading-start.json", **{"job-id": job["id"]})

    await agent.call(
        "update_job_state-error.json",
        **{"job-id": job["id"], "return-code": None, "message": "connection reset"},
    )

    [job] = await job_rows(database, container_id)
    assert job["state"] == jobs.WAITING
    assert job["message"].endswith("connection reset")


async def test_exit_code_not_retried(client, config, database):
    await register(config)
    package_id = await add_package(config, "-")
    container_id = await deploy(config, [package_id], ["lab-pc-01"])
    agent = SignedAgent(client)
    await agent.hello()
    [job] = await job_rows(database, container_id)

    status, payload = await agent.call(
        "update_job_state-finished-nonzero.json", **{"job-id": job["id"]}
    )

    assert status == 200
    assert payload["result"]["params"] == {"job-succeeded": False}
    [job] = await job_rows(database, container_id)
    assert job["state"] == jobs.FAILED
    assert job["return_code"] == 3
    retries = await database.fetch_value("SELECT retries FROM job")
    assert retries == 0


@pytest.mark.parametrize("config", [{"agent": {"max_job_retries": 0}}], indirect=True)
async def test_retries_disabled_fails_job(client, config, database):
    await register(config)
    package_id = await add_package(config, "-")
    container_id = await deploy(config, [package_id], ["lab-pc-01"])
    agent = PlainAgent(client)
    await agent.hello()
    [job] = await job_rows(database, container_id)

    await agent.call("update_job_state-error.json", **{"job-id": job["id"]})

    [job] = await job_rows(database, container_id)
    assert job["state"] == jobs.FAILED


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--time-frame", "Mon-Fri 8-17"], "--time-frame: invalid time '8'"),
        (["--time-frame", "Someday 08:00-17:00"], "invalid weekday 'someday'"),
        (["--time-frame", "Mon 08:00-08:00"], "use 00:00-24:00 for a whole day"),
        (["--ip-range", "10.0.0.1/8"], "--ip-range: invalid IP range '10.0.0.1/8'"),
        (["--ip-range", "!nowhere"], "invalid IP range '!nowhere'"),
    ],
    ids=["time-format", "weekday", "empty-frame", "host-bits", "not-address"],
)
async def test_deploy_invalid_condition(
    client, config, database, args, message, capsys
):
    await register(config)
    package_id = await add_package(config, "-")

    code, _ = await run_cli(
        config,
        "deploy",
        "--name",
        "x",
        "--package",
        str(package_id),
        "--computer",
        "lab-pc-01",
        *args,
    )

    assert code == 2
    assert message in capsys.readouterr().err


async def test_deploy_stores_canonical_conditions(client, config, database):
    await register(config)
    package_id = await add_package(config, "-")

    await deploy(
        config,
        [package_id],
        ["lab-pc-01"],
        "--time-frame",
        "fri-mon 22:00-02:00",
        "--time-frame",
        "07:00-08:00",
        "--ip-range",
        "10.0.0.0/8",
        "--ip-range",
        "!10.0.5.0/24",
        "--ip-range",
        "2001:DB8::/32",
    )

    row = await database.fetch_one("SELECT time_frames, ip_ranges FROM job_container")
    assert row["time_frames"] == "Mon,Fri-Sun 22:00-02:00; * 07:00-08:00"
    assert row["ip_ranges"] == "10.0.0.0/8,!10.0.5.0/24,2001:db8::/32"
