"""Housekeeping: expiry, execution deadlines and purging by age."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import logging

import pytest

from ocoserver import housekeeping, timefmt
from ocoserver.config import Config, HousekeepingConfig
from ocoserver.store import jobs
from tests.admin import add_package, deploy, job_rows, register, run_cli
from tests.agents import PlainAgent, SignedAgent

MINUTE = datetime.timedelta(minutes=1)
HOUR = datetime.timedelta(hours=1)
DAY = datetime.timedelta(days=1)
DEFAULTS = HousekeepingConfig()


@pytest.fixture
def config(tmp_path, request) -> Config:
    """The test config; indirect parametrization passes a housekeeping interval."""
    base = Config.for_tests(tmp_path / "data")
    interval = getattr(request, "param", None)
    if interval is None:
        return base
    return dataclasses.replace(base, housekeeping=HousekeepingConfig(interval=interval))


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


async def _deadline_job(client, config, database):
    """Deploy a package with a 5-minute deadline and report it as executing."""
    await register(config)
    code, output = await run_cli(
        config,
        "package",
        "add",
        "-",
        "--name",
        "slow",
        "--version",
        "1",
        "--install",
        "sleep 9999",
        "--deadline",
        "5",
    )
    assert code == 0
    container_id = await deploy(config, [int(output)], ["lab-pc-01"])
    agent = PlainAgent(client)
    await agent.hello()
    [job] = await job_rows(database, container_id)
    await agent.call(
        "update_job_state-executing.json", **{"job-id": job["id"], "message": "busy"}
    )
    return container_id


async def test_deadline_passed_fails_job(client, config, database):
    container_id = await _deadline_job(client, config, database)

    report = await housekeeping.run_pass(
        database, DEFAULTS, config.depot_path, utc_now() + 6 * MINUTE
    )

    [job] = await job_rows(database, container_id)
    assert report.overdue_jobs == 1
    assert job["state"] == jobs.FAILED
    assert job["message"].startswith("busy\nfailed: still executing 5 minutes")


async def test_deadline_ahead_keeps_job(client, config, database):
    container_id = await _deadline_job(client, config, database)

    report = await housekeeping.run_pass(
        database, DEFAULTS, config.depot_path, utc_now() + 4 * MINUTE
    )

    [job] = await job_rows(database, container_id)
    assert report.overdue_jobs == 0
    assert job["state"] == jobs.EXECUTING


async def test_ended_container_expires_jobs(client, config, database):
    await register(config)
    package_id = await add_package(config, "-")
    end = timefmt.to_text(utc_now() + HOUR)
    container_id = await deploy(config, [package_id], ["lab-pc-01"], "--end", end)

    report = await housekeeping.run_pass(
        database, DEFAULTS, config.depot_path, utc_now() + 2 * HOUR
    )

    [job] = await job_rows(database, container_id)
    assert report.expired_jobs == 1
    assert job["state"] == jobs.EXPIRED
    assert job["message"] == (
        f"expired: job container {container_id} ended at {end} UTC before the job "
        "finished"
    )


async def _expired_job(client, config, database) -> tuple[PlainAgent, int]:
    """Hand out a job of a container that ends in an hour, then expire it."""
    await register(config)
    package_id = await add_package(config, "-")
    end = timefmt.to_text(utc_now() + HOUR)
    container_id = await deploy(config, [package_id], ["lab-pc-01"], "--end", end)
    agent = PlainAgent(client)
    await agent.hello()
    [job] = await job_rows(database, container_id)
    await housekeeping.run_pass(database, DEFAULTS, config.depot_path, utc_now() + 2 * HOUR)
    return agent, job["id"]


async def test_success_after_expiry_recorded(client, config, database, caplog):
    caplog.set_level(logging.INFO, logger="ocoserver.jobs")
    agent, job_id = await _expired_job(client, config, database)

    status, payload = await agent.call(
        "update_job_state-finished.json", **{"job-id": job_id}
    )

    assert status == 200
    assert payload["result"]["params"] == {"job-succeeded": True}
    state = await database.fetch_value("SELECT state FROM job WHERE id = ?", (job_id,))
    assert state == jobs.EXPIRED
    record = await database.fetch_one("SELECT job_id FROM computer_package")
    assert record["job_id"] == job_id
    assert f"job {job_id} for computer lab-pc-01 succeeded after it expired" in (
        caplog.text
    )


async def test_failure_after_expiry_not_recorded(client, config, database):
    agent, job_id = await _expired_job(client, config, database)

    status, payload = await agent.call(
        "update_job_state-finished-nonzero.json", **{"job-id": job_id}
    )

    assert status == 200
    assert payload["result"]["params"] == {"job-succeeded": False}
    state = await database.fetch_value("SELECT state FROM job WHERE id = ?", (job_id,))
    assert state == jobs.EXPIRED
    records = await database.fetch_value("SELECT COUNT(*) FROM computer_package")
    assert records == 0


async def _finished_jobs(client, config, database) -> tuple[int, int]:
    """Return a succeeded and a failed job id, both finished now."""
    await register(config)
    good = await add_package(config, "-", name="good")
    bad = await add_package(config, "-", name="bad")
    container_id = await deploy(config, [good, bad], ["lab-pc-01"])
    agent = SignedAgent(client)
    await agent.hello()
    succeeded, failed = await job_rows(database, container_id)
    await agent.call("update_job_state-finished.json", **{"job-id": succeeded["id"]})
    await agent.call(
        "update_job_state-finished-nonzero.json", **{"job-id": failed["id"]}
    )
    return succeeded["id"], failed["id"]


async def _job_ids(database) -> list[int]:
    rows = await database.fetch_all("SELECT id FROM job ORDER BY id")
    return [row["id"] for row in rows]


async def test_purge_succeeded_after_four_hours(client, config, database):
    succeeded, failed = await _finished_jobs(client, config, database)

    early = await housekeeping.run_pass(
        database, DEFAULTS, config.depot_path, utc_now() + 3 * HOUR
    )
    remaining_early = await _job_ids(database)
    late = await housekeeping.run_pass(database, DEFAULTS, config.depot_path, utc_now() + 5 * HOUR)

    assert early.purged_succeeded_jobs == 0
    assert remaining_early == [succeeded, failed]
    assert late.purged_succeeded_jobs == 1
    assert await _job_ids(database) == [failed]


async def test_purge_failed_after_two_days(client, config, database):
    _, failed = await _finished_jobs(client, config, database)

    early = await housekeeping.run_pass(
        database, DEFAULTS, config.depot_path, utc_now() + 47 * HOUR
    )
    late = await housekeeping.run_pass(database, DEFAULTS, config.depot_path, utc_now() + 49 * HOUR)

    assert early.purged_failed_jobs == 0
    assert late.purged_failed_jobs == 1
    assert await _job_ids(database) == []


async def test_purge_zero_age_keeps(client, config, database):
    await _finished_jobs(client, config, database)
    keep = HousekeepingConfig(purge_succeeded_jobs_after=0, purge_failed_jobs_after=0)

    report = await housekeeping.run_pass(database, keep, config.depot_path, utc_now() + 365 * DAY)

    assert report.purged_succeeded_jobs == 0
    assert len(await _job_ids(database)) == 2


def _event(moment: datetime.datetime, number: int) -> dict[str, object]:
    return {
        "log": "System",
        "provider": "disk",
        "event_id": str(number),
        "level": "2",
        "timestamp": timefmt.to_text(moment),
        "data": {"number": number},
    }


async def test_purge_events_keeps_newest(client, config, database):
    await register(config)
    agent = SignedAgent(client)
    await agent.hello()
    now = utc_now()
    events = [
        _event(now - 10 * DAY, 1),
        _event(now - 8 * DAY, 2),
        _event(now - 6 * DAY, 3),
    ]
    await agent.call("events.json", events=events)

    report = await housekeeping.run_pass(database, DEFAULTS, config.depot_path, now)

    kept = await database.fetch_all("SELECT event_id FROM event ORDER BY event_id")
    assert report.purged_events == 2
    assert kept == [{"event_id": "3"}]


async def test_purge_old_events_keeps_one(client, config, database):
    await register(config)
    agent = SignedAgent(client)
    await agent.hello()
    now = utc_now()
    await agent.call(
        "events.json", events=[_event(now - 20 * DAY, 1), _event(now - 9 * DAY, 2)]
    )

    report = await housekeeping.run_pass(database, DEFAULTS, config.depot_path, now)

    assert report.purged_events == 1
    assert await database.fetch_value("SELECT event_id FROM event") == "2"


async def test_purge_logins_keeps_newest(client, config, database):
    await register(config)
    agent = PlainAgent(client)
    await agent.hello()
    now = utc_now()
    logins = [
        {
            "username": "ann",
            "display_name": "Ann",
            "console": "tty1",
            "timestamp": timefmt.to_text(now - days * DAY),
        }
        for days in (30, 20, 15, 1)
    ]
    await agent.call("update.json", logins=logins)

    report = await housekeeping.run_pass(database, DEFAULTS, config.depot_path, now)

    kept = await database.fetch_all("SELECT timestamp FROM computer_login")
    assert report.purged_logins == 3
    assert kept == [{"timestamp": timefmt.to_text(now - DAY)}]


@pytest.mark.parametrize("config", [0.05], indirect=True)
async def test_background_task_expires_jobs(client, config, database):
    await register(config)
    package_id = await add_package(config, "-")
    start = timefmt.to_text(utc_now() - 2 * HOUR)
    end = timefmt.to_text(utc_now() - HOUR)
    container_id = await deploy(
        config, [package_id], ["lab-pc-01"], "--start", start, "--end", end
    )

    for _ in range(100):
        [job] = await job_rows(database, container_id)
        if job["state"] != jobs.WAITING:
            break
        await asyncio.sleep(0.05)

    assert job["state"] == jobs.EXPIRED
