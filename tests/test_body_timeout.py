"""A request body that arrives too slowly is answered with 408."""

from __future__ import annotations

import asyncio
import json

import pytest

from ocoserver.config import Config
from tests.admin import register
from tests.agents import AGENT_PATH, PlainAgent, agent_dumps, snapshot


@pytest.fixture
def config(tmp_path) -> Config:
    return Config.for_tests(tmp_path / "data", body_timeout=0.5)


async def test_slow_body_times_out(client, config):
    await register(config)
    agent = PlainAgent(client)
    await agent.hello()
    body = agent_dumps(agent.body("hello.json"))
    before = snapshot(config.database_path)
    head = (
        f"POST {AGENT_PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()

    reader, writer = await asyncio.open_connection("127.0.0.1", client.port)
    try:
        writer.write(head + body[:10])
        await writer.drain()
        response_head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        length = response_head.lower().split(b"content-length: ")[1].split(b"\r\n")[0]
        payload = json.loads(await asyncio.wait_for(reader.readexactly(int(length)), 5))
    finally:
        writer.close()

    assert response_head.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert payload["error"]["code"] == -32008
    assert "server.body_timeout" in payload["error"]["message"]
    assert snapshot(config.database_path) == before
