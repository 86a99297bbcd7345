"""Test helpers that play an OCO agent against the real server."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import sqlite3
import time
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from tests.conftest import load_fixture

AGENT_PATH = "/api-agent.php"
GEN1 = "agent-1.1.6"
GEN2 = "agent-1.2.0"
DATA_VECTORS = Path(__file__).parent / "data" / GEN2 / "hmac-vectors.json"


def agent_dumps(body: dict[str, Any]) -> bytes:
    """Serialize like the agent: Python json.dumps with default settings."""
    return json.dumps(body).encode("utf-8")


def hmac_hex(key: str, body: bytes) -> str:
    return hmac.new(key.encode("utf-8"), body, hashlib.sha256).hexdigest()


class PlainAgent:
    """A generation 1 agent: the key travels in params["agent-key"]."""

    def __init__(self, client: TestClient, hostname: str = "lab-pc-01") -> None:
        self.client = client
        self.hostname = hostname
        self.agent_key = ""
        self.server_key = ""
        # Sent with every request, such as X-Forwarded-For from a proxy.
        self.headers: dict[str, str] = {}

    def body(self, fixture: str, **data: Any) -> dict[str, Any]:
        body = copy.deepcopy(load_fixture(GEN1, fixture))
        body["params"]["hostname"] = self.hostname
        body["params"]["agent-key"] = self.agent_key
        body["params"].get("data", {}).update(data)
        return body

    async def call(self, fixture: str, **data: Any) -> tuple[int, dict[str, Any]]:
        return await self.send(self.body(fixture, **data))

    async def send(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        response = await self.client.post(
            AGENT_PATH,
            data=agent_dumps(body),
            headers={"content-type": "application/json", **self.headers},
        )
        return response.status, await response.json()

    async def hello(self) -> dict[str, Any]:
        """Send a hello, take issued keys like the agent does, return params."""
        status, payload = await self.call("hello.json")
        assert status == 200, payload
        params = payload["result"]["params"]
        if params["agent-key"] is not None:
            self.agent_key = params["agent-key"]
        if not self.server_key:
            self.server_key = params["server-key"]
        assert params["server-key"] == self.server_key
        return params

    async def download(
        self, package_id: int, headers: dict[str, str] | None = None
    ) -> Any:
        query = {
            "uid": "5f0e8a52-0c4e-4f7e-9a3b-2d1c6e7f8a90",
            "hostname": self.hostname,
            "agent-key": self.agent_key,
            "id": str(package_id),
        }
        return await self.client.get(
            AGENT_PATH, params=query, headers={**self.headers, **(headers or {})}
        )


class SignedAgent:
    """A generation 2 agent: signed bodies, rising timestamps, signed answers."""

    def __init__(
        self, client: TestClient, hostname: str = "lab-pc-01", agent_key: str = ""
    ) -> None:
        self.client = client
        self.hostname = hostname
        self.agent_key = agent_key
        self.server_key = ""
        self.last_server_timestamp = 0.0
        self.last_timestamp = 0.0
        # Sent with every request, such as X-Forwarded-For from a proxy.
        self.headers: dict[str, str] = {}

    def next_timestamp(self) -> float:
        value = max(round(time.time(), 4), round(self.last_timestamp + 0.001, 4))
        self.last_timestamp = value
        return value

    def body(self, fixture: str, **data: Any) -> dict[str, Any]:
        body = copy.deepcopy(load_fixture(GEN2, fixture))
        body["params"]["hostname"] = self.hostname
        body["params"]["timestamp"] = self.next_timestamp()
        if "data" in body["params"]:
            body["params"]["data"].update(data)
        return body

    def sign(self, raw: bytes, key: str | None = None) -> str:
        return hmac_hex(self.agent_key if key is None else key, raw)

    async def post_raw(
        self,
        raw: bytes,
        signature: str | None,
        method: str = "POST",
        headers: dict[str, str] | None = None,
    ) -> Any:
        headers = {"content-type": "application/json", **self.headers, **(headers or {})}
        if signature is not None:
            headers["x-oco-agent-signature"] = signature
        return await self.client.request(method, AGENT_PATH, data=raw, headers=headers)

    async def call(self, fixture: str, **data: Any) -> tuple[int, dict[str, Any]]:
        return await self.send(self.body(fixture, **data))

    async def send(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        raw = agent_dumps(body)
        response = await self.post_raw(raw, self.sign(raw))
        payload = await response.json()
        if response.status == 200:
            self.verify_response(response, await response.read(), payload)
        return response.status, payload

    def verify_response(self, response: Any, raw: bytes, payload: dict[str, Any]) -> None:
        """Check the answer the way agent 1.2.0 does: timestamp, then signature."""
        timestamp = float(payload["result"]["timestamp"])
        assert timestamp > self.last_server_timestamp
        self.last_server_timestamp = timestamp
        params = payload["result"]["params"]
        if not self.server_key and params.get("server-key"):
            self.server_key = params["server-key"]
        text = raw.decode(response.charset or "utf-8")
        expected = hmac_hex(self.server_key, text.encode("utf-8"))
        assert response.headers["x-oco-server-signature"] == expected

    async def hello(self) -> dict[str, Any]:
        status, payload = await self.call("hello.json")
        assert status == 200, payload
        params = payload["result"]["params"]
        if params["agent-key"] is not None:
            self.agent_key = params["agent-key"]
        return params

    async def download(
        self, package_id: int, headers: dict[str, str] | None = None
    ) -> Any:
        body = self.body("download.json")
        body["params"]["package-id"] = package_id
        raw = agent_dumps(body)
        return await self.post_raw(raw, self.sign(raw), method="GET", headers=headers)


def snapshot(database_path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Read every table of the database file, to prove a request changed nothing."""
    connection = sqlite3.connect(f"file:{database_path}?mode=ro", uri=True)
    try:
        tables = [
            row[0]
            for row in connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
            )
        ]
        return {
            table: connection.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()
            for table in tables
        }
    finally:
        connection.close()
