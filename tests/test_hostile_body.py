"""Request body limits and decoding: sizes, lying headers, odd JSON values."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest

from ocoserver.config import Config
from tests.agents import AGENT_PATH, agent_dumps, snapshot
from tests.hostile import Fleet, FleetTemplate, build_template

LIMIT = 1024 * 1024


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> FleetTemplate:
    return build_template(tmp_path_factory.mktemp("fleet"))


@pytest.fixture
def config(tmp_path, template) -> Config:
    template.copy_to(tmp_path / "data")
    return Config.for_tests(tmp_path / "data", max_body_size=LIMIT)


@pytest.fixture
def fleet(client, template) -> Fleet:
    return template.fleet(client)


async def exchange(fleet: Fleet, head: bytes, body: bytes) -> tuple[int, bytes]:
    """Send raw HTTP bytes and read the first response's status and body."""
    reader, writer = await asyncio.open_connection("127.0.0.1", fleet.client.port)
    try:
        writer.write(head + body)
        await writer.drain()
        response_head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        length = response_head.lower().split(b"content-length:")[1].split(b"\r\n")[0]
        payload = await asyncio.wait_for(reader.readexactly(int(length)), 10)
    finally:
        writer.close()
    return int(response_head.split(b" ", 2)[1]), payload


def request_head(length: int | None, chunked: bool = False) -> bytes:
    lines = [
        f"POST {AGENT_PATH} HTTP/1.1",
        "Host: 127.0.0.1",
        "Content-Type: application/json",
    ]
    if length is not None:
        lines.append(f"Content-Length: {length}")
    if chunked:
        lines.append("Transfer-Encoding: chunked")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def software_update(fleet: Fleet, count: int) -> dict[str, Any]:
    body = fleet.plain.body("update.json")
    body["params"]["data"]["software"] = [
        {
            "name": f"package-{index:05d}-with-a-realistic-name",
            "version": f"1.{index % 50}.{index % 7}-1ubuntu0.24.04",
            "description": "a library for handling something useful, version "
            f"{index}, with a description of typical length",
        }
        for index in range(count)
    ]
    return body


async def test_chunked_body_over_limit(fleet, config):
    body = agent_dumps(software_update(fleet, 12000))
    assert len(body) > LIMIT
    chunks = b"".join(
        b"%x\r\n%s\r\n" % (len(part), part)
        for part in (body[i : i + 65536] for i in range(0, len(body), 65536))
    )
    before = snapshot(config.database_path)

    head = request_head(None, chunked=True)
    status, raw = await exchange(fleet, head, chunks + b"0\r\n\r\n")

    assert status == 413
    assert json.loads(raw)["error"]["code"] == -32013
    assert snapshot(config.database_path) == before


async def test_declared_length_over_limit(fleet, config):
    before = snapshot(config.database_path)

    # Only the header is sent: the server must respond without waiting for the body.
    status, raw = await exchange(fleet, request_head(LIMIT * 100), b"")

    assert status == 413
    assert "server.max_body_size" in json.loads(raw)["error"]["message"]
    assert snapshot(config.database_path) == before


async def test_length_shorter_than_body(fleet, config):
    body = agent_dumps(fleet.plain.body("hello.json"))
    before = snapshot(config.database_path)

    # The rest of the body reaches aiohttp's HTTP parser as a second request,
    # which it rejects with a plain-text 400 before any handler runs.
    status, _ = await exchange(fleet, request_head(len(body) // 2), body)

    assert status == 400
    assert snapshot(config.database_path) == before
    await fleet.plain.hello()


async def test_length_longer_than_body(fleet, config, caplog):
    body = agent_dumps(fleet.plain.body("hello.json"))
    before = snapshot(config.database_path)

    # The server waits for the missing bytes until the agent gives up.
    reader, writer = await asyncio.open_connection("127.0.0.1", fleet.client.port)
    writer.write(request_head(len(body) + 500) + body)
    await writer.drain()
    await asyncio.sleep(0.2)
    writer.close()
    await asyncio.sleep(0.2)

    assert snapshot(config.database_path) == before
    assert [r.getMessage() for r in caplog.records if r.levelname == "ERROR"] == []
    await fleet.plain.hello()


async def test_broken_gzip_body_rejected(fleet, config, caplog):
    body = b"this is not gzip data"
    head = request_head(len(body)).replace(
        b"\r\n\r\n", b"\r\nContent-Encoding: gzip\r\n\r\n"
    )
    before = snapshot(config.database_path)

    status, raw = await exchange(fleet, head, body)
    # aiohttp would log a traceback after the response if it read the body again.
    await asyncio.sleep(0.1)

    error = json.loads(raw)["error"]
    assert status == 400
    assert error["code"] == -32600
    assert error["message"] == (
        "request body is not valid gzip data; send the body as its "
        "Content-Encoding header says, or without that header"
    )
    assert snapshot(config.database_path) == before
    assert [r.getMessage() for r in caplog.records if r.levelname == "ERROR"] == []


async def test_broken_gzip_body_closes_connection(fleet):
    response = await fleet.client.post(
        AGENT_PATH,
        data=b"this is not gzip data",
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )

    assert response.status == 400
    assert response.headers["Connection"] == "close"


UNREAD_BODY_REQUESTS = [
    ("POST", "/settings", 303),
    ("POST", "/no-such-page", 404),
    ("POST", "/", 405),
    ("POST", "/api-agent.php/extra", 404),
    ("GET", "/login", 200),
]


@pytest.mark.parametrize(("method", "path", "status"), UNREAD_BODY_REQUESTS)
async def test_unread_broken_gzip_logs_nothing(fleet, caplog, method, path, status):
    response = await fleet.client.request(
        method,
        path,
        data=b"\x1f\x8bnot really gzip",
        headers={"Content-Encoding": "gzip"},
        allow_redirects=False,
    )
    # aiohttp would log a traceback after the response if it read the body.
    await asyncio.sleep(0.1)

    assert response.status == status
    assert response.headers["Connection"] == "close"
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


MALFORMED_HEADS = {
    "key-in-bad-query": b"GET /api-agent.php?hostname=lab-pc-01&agent-key=SECRETKEY12345"
    b"&id=1\x01 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    "credentials-in-bad-header": b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    b"Authorization: Basic SECRETKEY12345\x01\r\n\r\n",
    "key-in-long-line": b"GET /api-agent.php?agent-key=SECRETKEY12345&x=" + b"a" * 9000
    + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
}


@pytest.mark.parametrize("head", MALFORMED_HEADS.values(), ids=MALFORMED_HEADS.keys())
async def test_malformed_request_logged_safely(fleet, caplog, head):
    caplog.set_level(logging.INFO, logger="aiohttp.server")

    status, _ = await exchange(fleet, head, b"")
    lines = [r.getMessage() for r in caplog.records if r.name == "aiohttp.server"]

    assert status == 400
    assert len(lines) == 1
    assert lines[0].startswith("rejected malformed HTTP request from 127.0.0.1: ")
    assert "SECRETKEY12345" not in caplog.text
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []


async def test_non_ascii_signature_rejected(fleet, config):
    body = agent_dumps(fleet.signed.body("hello.json"))
    head = request_head(len(body)).replace(
        b"\r\n\r\n", b"\r\nx-oco-agent-signature: \xc3\xa9t\xc3\xa9\r\n\r\n"
    )
    before = snapshot(config.database_path)

    status, raw = await exchange(fleet, head, body)

    assert status == 401
    assert json.loads(raw)["error"]["code"] == -32001
    assert snapshot(config.database_path) == before
