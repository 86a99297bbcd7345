"""The client API over HTTP: keys, scopes, errors and the audit log."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from ocoserver import __version__
from ocoserver.app import create_app
from ocoserver.client_methods import METHODS
from ocoserver.config import Config
from ocoserver.store import api_keys
from tests.admin import run_cli
from tests.client_api import call, create_key, result


def test_readme_lists_every_method():
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme.split("\n## Client API\n", 1)[1].split("\n## ", 1)[0]

    missing = [name for name in METHODS if f"`{name}`" not in section]

    assert missing == []


async def audit_rows(config: Config) -> list[dict]:
    code, output = await run_cli(config, "api-key", "audit", "--json")
    assert code == 0
    return json.loads(output)


async def test_client_api_disabled_without_keys(client, database):
    status, payload = await call(client, "oco_anything", "oco.info")

    assert status == 403
    assert payload["error"]["code"] == -32003
    assert "ocoserver api-key add" in payload["error"]["message"]
    assert await database.fetch_all("SELECT * FROM api_audit") == []


async def test_keys_never_logged(client, config, caplog):
    caplog.set_level(logging.DEBUG)
    key = await create_key(config, "ci", "admin")
    await call(client, key, "oco.info")
    await call(client, key, "oco.info", basic=False)
    await call(client, key[:-1], "oco.info")

    messages = [record.getMessage() for record in caplog.records]

    assert any("rejected client API request" in text for text in messages)
    assert not any(key[:-1] in text for text in messages)


async def test_info_with_basic_auth(client, config):
    key = await create_key(config, "ci", "read")

    data = await result(client, key, "oco.info")

    assert data == {
        "version": __version__,
        "server": "ocoserver",
        "api_key": "ci",
        "scope": "read",
    }


async def test_info_with_params_key(client, config):
    key = await create_key(config, "ci", "read")

    status, payload = await call(client, key, "oco.info", basic=False)

    assert status == 200
    assert payload["id"] == 7
    assert payload["error"] is None
    assert payload["result"]["data"]["api_key"] == "ci"


async def test_missing_key_rejected(client, config):
    await create_key(config, "ci", "read")

    status, payload = await call(client, None, "oco.info")

    assert status == 401
    assert payload["error"]["code"] == -32001


async def test_wrong_key_rejected(client, config):
    key = await create_key(config, "ci", "read")

    status, payload = await call(client, key + "x", "oco.info")

    assert status == 401
    assert payload["error"]["message"] == "invalid or revoked API key"


async def test_revoked_key_rejected(client, config):
    key = await create_key(config, "ci", "admin")
    await create_key(config, "other", "read")
    code, output = await run_cli(config, "api-key", "revoke", "ci")

    status, payload = await call(client, key, "oco.info")

    assert code == 0
    assert output == "revoked API key ci (id 1)\n"
    assert status == 401
    assert payload["error"]["code"] == -32001


@pytest.mark.parametrize(
    "method, data",
    [
        (
            "oco.job_container.deploy",
            {"name": "x", "package_ids": [1], "computer_ids": [1]},
        ),
        ("oco.job_container.remove", {"id": 1}),
        ("oco.computer.create", {"hostname": "pc-9"}),
        ("oco.package.remove", {"id": 1}),
    ],
    ids=["deploy", "container-remove", "computer-create", "package-remove"],
)
async def test_read_key_cannot_change(client, config, method, data):
    key = await create_key(config, "viewer", "read")

    status, payload = await call(client, key, method, **data)

    assert status == 403
    assert payload["error"]["code"] == -32003
    assert "needs scope" in payload["error"]["message"]


async def test_deploy_key_cannot_administer(client, config):
    key = await create_key(config, "rollout", "deploy")

    status, payload = await call(client, key, "oco.computer.create", hostname="pc-9")

    assert status == 403
    assert payload["error"]["message"] == (
        "API key 'rollout' has scope deploy; oco.computer.create needs scope admin "
        "or higher"
    )


async def test_unknown_method_rejected(client, config):
    key = await create_key(config, "ci", "admin")

    status, payload = await call(client, key, "oco.report.execute", id=1)

    assert status == 400
    assert payload["error"]["code"] == -32601


async def test_invalid_id_rejected(client, config):
    key = await create_key(config, "ci", "admin")

    status, payload = await call(client, key, "oco.computer.get", id="abc")

    assert status == 400
    assert payload["error"]["code"] == -32602
    assert payload["error"]["message"] == "data.id 'abc' is not an integer"


async def test_unknown_id_is_action_failed(client, config):
    key = await create_key(config, "ci", "admin")

    status, payload = await call(client, key, "oco.package.get", id=99)

    assert status == 400
    assert payload["error"]["code"] == -32000
    assert payload["error"]["message"].startswith("package 99 not found")


async def test_audit_one_row_per_call(client, config):
    key = await create_key(config, "ci", "deploy")
    await result(client, key, "oco.info")
    await call(client, key, "oco.computer.create", hostname="pc-9")
    await call(client, key + "x", "oco.info")
    await call(client, key, "oco.job_container.job.list", id=5)

    rows = await audit_rows(config)

    assert len(rows) == 4
    assert [row["method"] for row in rows] == [
        "oco.job_container.job.list",
        "oco.info",
        "oco.computer.create",
        "oco.info",
    ]
    assert [row["error_code"] for row in rows] == [-32000, -32001, -32003, None]
    assert [row["key_name"] for row in rows] == ["ci", None, "ci", "ci"]
    assert rows[0]["targets"] == {"id": 5}
    assert rows[2]["targets"] == {"hostname": "pc-9"}
    assert rows[3]["result"] == "ok"


async def test_audit_table_shows_target_pairs(client, config):
    key = await create_key(config, "ci", "deploy")
    await call(client, key, "oco.computer.create", hostname="pc-9")

    code, output = await run_cli(config, "api-key", "audit")
    [header, line] = output.splitlines()

    assert code == 0
    assert "TARGETS" in header
    assert "hostname=pc-9" in line
    assert "{" not in line


async def test_audit_never_stores_key(client, config, database):
    key = await create_key(config, "ci", "read")
    await call(client, key, "oco.info", basic=False)
    await call(client, key + "x", "oco.info")

    rows = await database.fetch_all("SELECT * FROM api_audit")
    dump = json.dumps(rows)

    assert len(rows) == 2
    assert key not in dump


async def test_key_stored_as_hash_only(client, config, database):
    key = await create_key(config, "ci", "read")

    rows = await database.fetch_all("SELECT * FROM api_key")

    assert key.startswith("oco_")
    assert len(key) == 47
    assert rows[0]["key_hash"] == api_keys.hash_key(key)
    assert key not in json.dumps(rows)


async def test_failed_keys_block_address(client, config):
    key = await create_key(config, "ci", "read")
    for _ in range(config.security.auth_failure_limit):
        status, _ = await call(client, "oco_wrong", "oco.info")
        assert status == 401

    status, payload = await call(client, key, "oco.info")

    assert status == 429
    assert payload["error"]["code"] == -32029


async def test_block_follows_forwarded_address(aiohttp_client, tmp_path):
    config = Config.for_tests(tmp_path / "data").with_overrides(
        trusted_proxies=("127.0.0.1",)
    )
    client = await aiohttp_client(create_app(config))
    key = await create_key(config, "ci", "read")
    client_one = {"X-Forwarded-For": "192.0.2.7"}
    client_two = {"X-Forwarded-For": "192.0.2.8"}
    for _ in range(config.security.auth_failure_limit):
        status, _ = await call(client, "oco_wrong", "oco.info", headers=client_one)
        assert status == 401

    blocked_status, _ = await call(client, key, "oco.info", headers=client_one)
    other_status, _ = await call(client, key, "oco.info", headers=client_two)

    assert blocked_status == 429
    assert other_status == 200


async def test_failures_elsewhere_block_nobody(aiohttp_client, tmp_path):
    config = Config.for_tests(tmp_path / "data").with_overrides(
        trusted_proxies=("127.0.0.1",)
    )
    client = await aiohttp_client(create_app(config))
    key = await create_key(config, "ci", "read")
    for index in range(config.security.auth_failure_limit):
        forwarded = {"X-Forwarded-For": f"192.0.2.{index + 1}"}
        status, _ = await call(client, "oco_wrong", "oco.info", headers=forwarded)
        assert status == 401
    newcomer = {"X-Forwarded-For": "198.51.100.9"}

    failed_status, _ = await call(client, "oco_typo", "oco.info", headers=newcomer)
    retry_status, _ = await call(client, key, "oco.info", headers=newcomer)

    assert failed_status == 401
    assert retry_status == 200


async def test_api_key_list_json(client, config):
    await create_key(config, "ci", "read")
    await create_key(config, "ops", "admin")
    await run_cli(config, "api-key", "revoke", "1")

    code, output = await run_cli(config, "api-key", "list", "--json")
    rows = json.loads(output)

    assert code == 0
    assert [(row["name"], row["scope"]) for row in rows] == [
        ("ci", "read"),
        ("ops", "admin"),
    ]
    assert rows[0]["revoked"] is not None
    assert rows[1]["revoked"] is None
    assert "key_hash" not in rows[0]


async def test_api_key_duplicate_name_rejected(client, config):
    await create_key(config, "ci", "read")

    code, _ = await run_cli(config, "api-key", "add", "ci", "--scope", "admin")

    assert code == 2


async def test_api_key_audit_limit(client, config):
    key = await create_key(config, "ci", "read")
    for _ in range(3):
        await result(client, key, "oco.info")

    code, output = await run_cli(config, "api-key", "audit", "--limit", "2")

    assert code == 0
    assert len(output.strip().splitlines()) == 3
    assert output.splitlines()[1].split()[2] == "ci"
