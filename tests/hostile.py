"""A small fleet for hostile-input tests: one agent of each generation.

Both computers are registered, have confirmed keys and one pending job
each for the same package, and a password rule applies to them, so every
agent method can be called with otherwise valid values.
"""

from __future__ import annotations

import asyncio
import io
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from ocoserver.app import create_app
from ocoserver.appkeys import STATE
from ocoserver.config import Config
from ocoserver.db import Database
from tests.admin import (
    add_package,
    deploy,
    job_rows,
    make_package_folder,
    register,
    run_cli,
)
from tests.agents import AGENT_PATH, PlainAgent, SignedAgent, agent_dumps

GEN1_HOST = "lab-pc-01"
GEN2_HOST = "lab-pc-02"
# The captured requests share one uid; each computer of the fleet needs its own.
UIDS = {
    GEN1_HOST: "11111111-0c4e-4f7e-9a3b-2d1c6e7f8a90",
    GEN2_HOST: "22222222-0c4e-4f7e-9a3b-2d1c6e7f8a90",
}


class FleetPlainAgent(PlainAgent):
    def body(self, fixture: str, **data: Any) -> dict[str, Any]:
        body = super().body(fixture, **data)
        body["params"]["uid"] = UIDS[self.hostname]
        return body


class FleetSignedAgent(SignedAgent):
    def body(self, fixture: str, **data: Any) -> dict[str, Any]:
        body = super().body(fixture, **data)
        body["params"]["uid"] = UIDS[self.hostname]
        return body


@dataclass
class Fleet:
    client: TestClient
    plain: FleetPlainAgent
    signed: FleetSignedAgent
    package_id: int
    # Job id per hostname.
    jobs: dict[str, int]

    def agent(self, generation: int) -> FleetPlainAgent | FleetSignedAgent:
        return self.plain if generation == 1 else self.signed

    def own_job(self, generation: int) -> int:
        return self.jobs[self.agent(generation).hostname]

    def other_job(self, generation: int) -> int:
        return self.jobs[GEN2_HOST if generation == 1 else GEN1_HOST]

    async def post(
        self,
        generation: int,
        body: dict[str, Any] | bytes,
        content_type: str = "application/json",
        http_method: str = "POST",
    ) -> Any:
        """Send a body as the agent of `generation` would, signed for generation 2."""
        raw = body if isinstance(body, bytes) else agent_dumps(body)
        headers = {"content-type": content_type}
        agent = self.agent(generation)
        if isinstance(agent, SignedAgent):
            headers["x-oco-agent-signature"] = agent.sign(raw)
        # aiohttp warns about large bytes bodies but streams a file object.
        return await self.client.request(
            http_method, AGENT_PATH, data=io.BytesIO(raw), headers=headers
        )


@dataclass(frozen=True)
class FleetTemplate:
    """A data directory with a built fleet, copied by each test that needs one."""

    data_dir: Path
    package_id: int
    jobs: dict[str, int]
    # Per hostname: agent key, server key, last server and agent timestamps.
    agent_state: dict[str, tuple[str, str, float, float]]

    def copy_to(self, data_dir: Path) -> None:
        shutil.copytree(self.data_dir, data_dir)

    def fleet(self, client: TestClient) -> Fleet:
        """Return agents with the keys the fleet's computers were issued."""
        plain = FleetPlainAgent(client, GEN1_HOST)
        signed = FleetSignedAgent(client, GEN2_HOST)
        for agent in (plain, signed):
            state = self.agent_state[agent.hostname]
            agent.agent_key, agent.server_key = state[0], state[1]
        signed.last_server_timestamp = self.agent_state[GEN2_HOST][2]
        signed.last_timestamp = self.agent_state[GEN2_HOST][3]
        return Fleet(client, plain, signed, self.package_id, self.jobs)


def build_template(directory: Path) -> FleetTemplate:
    """Build a fleet on a server of its own, in a new event loop."""
    return asyncio.run(_build_template(directory))


async def _build_template(directory: Path) -> FleetTemplate:
    config = Config.for_tests(directory / "data")
    client = TestClient(TestServer(create_app(config)))
    await client.start_server()
    try:
        fleet = await build_fleet(client, config, client.app[STATE].database, directory)
    finally:
        await client.close()
    agent_state = {
        agent.hostname: (
            agent.agent_key, agent.server_key,
            getattr(agent, "last_server_timestamp", 0.0),
            getattr(agent, "last_timestamp", 0.0),
        )
        for agent in (fleet.plain, fleet.signed)
    }  # fmt: skip
    return FleetTemplate(config.data_dir, fleet.package_id, fleet.jobs, agent_state)


async def build_fleet(
    client: TestClient, config: Config, database: Database, tmp_path: Path
) -> Fleet:
    await register(config, GEN1_HOST)
    await register(config, GEN2_HOST)
    package_id = await add_package(config, str(make_package_folder(tmp_path)))
    container_id = await deploy(config, [package_id], [GEN1_HOST, GEN2_HOST])
    code, _ = await run_cli(
        config, "password-rule", "add", "--username", "administrator",
        "--alphabet", "abcdefghijklmnopqrstuvwxyz0123456789", "--length", "16",
        "--valid-days", "30", "--history", "3",
    )  # fmt: skip
    assert code == 0

    plain = FleetPlainAgent(client, GEN1_HOST)
    signed = FleetSignedAgent(client, GEN2_HOST)
    for agent in (plain, signed):
        await agent.hello()
        # The second hello uses the issued key, which confirms it.
        await agent.hello()
    rows = await job_rows(database, container_id)
    jobs = {row["computer"]: row["id"] for row in rows}
    return Fleet(client, plain, signed, package_id, jobs)
