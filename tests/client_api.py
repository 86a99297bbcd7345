"""Test helpers that call the client API over HTTP with a key from the CLI."""

from __future__ import annotations

from typing import Any

from aiohttp import encode_basic_auth

from ocoserver.config import Config
from tests.admin import run_cli

CLIENT_PATH = "/api-client.php"


async def create_key(config: Config, name: str, scope: str) -> str:
    code, output = await run_cli(config, "api-key", "add", name, "--scope", scope)
    assert code == 0
    return output.strip()


async def call(
    client: Any,
    key: str | None,
    method: str,
    basic: bool = True,
    headers: dict[str, str] | None = None,
    **data: Any,
) -> tuple[int, dict[str, Any]]:
    """Call a method; the key goes in HTTP Basic, or in params when basic=False."""
    params: dict[str, Any] = {"data": data}
    headers = dict(headers or {})
    if key is not None and basic:
        headers["Authorization"] = encode_basic_auth("automation", key)
    elif key is not None:
        params["api_key"] = key
    response = await client.post(
        CLIENT_PATH,
        json={"jsonrpc": "2.0", "id": 7, "method": method, "params": params},
        headers=headers,
    )
    return response.status, await response.json()


async def result(client: Any, key: str, method: str, **data: Any) -> Any:
    """Call a method that must succeed and return `result.data`."""
    status, payload = await call(client, key, method, **data)
    assert status == 200, payload
    assert payload["result"]["success"] is True
    return payload["result"]["data"]
