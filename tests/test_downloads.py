"""Package downloads: SHA-256 ETag, resumed ranges, If-Range, changed payloads."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from ocoserver import depot
from tests.admin import add_package, deploy, make_package_folder, register, run_cli
from tests.agents import PlainAgent, SignedAgent

AGENTS = {"plain": PlainAgent, "signed": SignedAgent}


async def _ready_download(client, config, tmp_path, agent_class):
    """Register, add a package with payload, deploy it and check in once."""
    await register(config)
    package_id = await add_package(config, str(make_package_folder(tmp_path)))
    await deploy(config, [package_id], ["lab-pc-01"])
    agent = agent_class(client)
    await agent.hello()
    code, output = await run_cli(config, "package", "show", str(package_id), "--json")
    assert code == 0
    return agent, json.loads(output)


@pytest.mark.parametrize("agent_class", AGENTS.values(), ids=AGENTS.keys())
async def test_interrupted_download_resumes(client, config, tmp_path, agent_class):
    agent, package = await _ready_download(client, config, tmp_path, agent_class)
    half = package["size"] // 2

    first = await agent.download(package["id"])
    head = await first.content.readexactly(half)
    first.close()
    etag = first.headers["ETag"]
    rest = await agent.download(
        package["id"], headers={"Range": f"bytes={half}-", "If-Range": etag}
    )
    tail = await rest.read()

    assert first.status == 200
    assert etag == f'"{package["sha256"]}"'
    assert rest.status == 206
    assert (
        rest.headers["Content-Range"] == f"bytes {half}-{package['size'] - 1}/"
        f"{package['size']}"
    )
    assert hashlib.sha256(head + tail).hexdigest() == package["sha256"]


@pytest.mark.parametrize("agent_class", AGENTS.values(), ids=AGENTS.keys())
async def test_stale_if_range_sends_whole(client, config, tmp_path, agent_class):
    agent, package = await _ready_download(client, config, tmp_path, agent_class)

    response = await agent.download(
        package["id"], headers={"Range": "bytes=100-", "If-Range": '"0123abcd"'}
    )
    body = await response.read()

    assert response.status == 200
    assert len(body) == package["size"]
    assert hashlib.sha256(body).hexdigest() == package["sha256"]


async def test_weak_if_range_sends_whole(client, config, tmp_path):
    agent, package = await _ready_download(client, config, tmp_path, PlainAgent)

    response = await agent.download(
        package["id"],
        headers={"Range": "bytes=100-", "If-Range": f'W/"{package["sha256"]}"'},
    )
    body = await response.read()

    assert response.status == 200
    assert len(body) == package["size"]


async def test_unquoted_if_range_sends_whole(client, config, tmp_path):
    agent, package = await _ready_download(client, config, tmp_path, PlainAgent)

    response = await agent.download(
        package["id"], headers={"Range": "bytes=100-", "If-Range": package["sha256"]}
    )
    body = await response.read()

    assert response.status == 200
    assert len(body) == package["size"]


async def test_range_without_if_range(client, config, tmp_path):
    agent, package = await _ready_download(client, config, tmp_path, PlainAgent)

    response = await agent.download(package["id"], headers={"Range": "bytes=0-9"})
    body = await response.read()

    assert response.status == 206
    assert response.headers["ETag"] == f'"{package["sha256"]}"'
    assert len(body) == 10


@pytest.mark.parametrize("value", ["items=0-9", "bytes=0-9,20-29", "bytes=9-0"])
async def test_unusable_range_sends_whole(client, config, tmp_path, value):
    agent, package = await _ready_download(client, config, tmp_path, PlainAgent)

    response = await agent.download(package["id"], headers={"Range": value})
    body = await response.read()

    assert response.status == 200
    assert len(body) == package["size"]
    assert hashlib.sha256(body).hexdigest() == package["sha256"]


async def test_unsatisfiable_range_rejected(client, config, tmp_path):
    agent, package = await _ready_download(client, config, tmp_path, PlainAgent)

    response = await agent.download(
        package["id"], headers={"Range": f"bytes={package['size'] + 10}-"}
    )

    assert response.status == 416


async def test_if_none_match_not_modified(client, config, tmp_path):
    agent, package = await _ready_download(client, config, tmp_path, PlainAgent)

    response = await agent.download(
        package["id"], headers={"If-None-Match": f'"{package["sha256"]}"'}
    )

    assert response.status == 304
    assert response.headers["ETag"] == f'"{package["sha256"]}"'


async def test_if_match_stale_precondition_failed(client, config, tmp_path):
    agent, package = await _ready_download(client, config, tmp_path, PlainAgent)

    response = await agent.download(package["id"], headers={"If-Match": '"0123"'})

    assert response.status == 412


def _payload_path(config, database_row) -> Path:
    return depot.resolve(config.depot_path, database_row["file_name"])


@pytest.mark.parametrize("agent_class", AGENTS.values(), ids=AGENTS.keys())
async def test_changed_payload_rejected(
    client, config, database, tmp_path, agent_class
):
    agent, package = await _ready_download(client, config, tmp_path, agent_class)
    row = await database.fetch_one("SELECT file_name FROM package")
    path = _payload_path(config, row)
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))

    response = await agent.download(package["id"])
    payload = await response.json()

    assert response.status == 500
    assert payload["error"]["code"] == -32603
    assert "file changed on the server" in payload["error"]["message"]


async def test_resized_payload_rejected(client, config, database, tmp_path):
    agent, package = await _ready_download(client, config, tmp_path, PlainAgent)
    row = await database.fetch_one("SELECT file_name FROM package")
    with open(_payload_path(config, row), "ab") as file:
        file.write(b"extra")

    response = await agent.download(package["id"])

    assert response.status == 500


async def test_vanished_payload_not_found(client, config, database, tmp_path):
    agent, package = await _ready_download(client, config, tmp_path, PlainAgent)
    row = await database.fetch_one("SELECT file_name FROM package")
    os.unlink(_payload_path(config, row))

    response = await agent.download(package["id"])
    payload = await response.json()

    assert response.status == 404
    assert (
        payload["error"]["message"] == f"package {package['id']} file is missing "
        "on the server"
    )


async def test_linked_payload_rejected(client, config, database, tmp_path):
    agent, package = await _ready_download(client, config, tmp_path, PlainAgent)
    row = await database.fetch_one("SELECT file_name FROM package")
    path = _payload_path(config, row)
    outside = tmp_path / "copy.zip"
    outside.write_bytes(path.read_bytes())
    path.unlink()
    path.symlink_to(outside)

    response = await agent.download(package["id"])
    payload = await response.json()

    assert response.status == 500
    assert payload["error"]["code"] == -32603
    assert "not a plain file in the depot" in payload["error"]["message"]


async def test_touched_payload_rehashed(client, config, database, tmp_path):
    agent, package = await _ready_download(client, config, tmp_path, PlainAgent)
    row = await database.fetch_one("SELECT file_name FROM package")
    path = _payload_path(config, row)
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))

    response = await agent.download(package["id"])
    body = await response.read()

    assert response.status == 200
    assert hashlib.sha256(body).hexdigest() == package["sha256"]
    recorded = await database.fetch_value("SELECT file_mtime_ns FROM package")
    assert recorded == 1_000_000_000


async def test_package_add_records_hash(client, config, database, tmp_path):
    folder = make_package_folder(tmp_path)

    package_id = await add_package(config, str(folder))
    code, output = await run_cli(config, "package", "list")

    row = await database.fetch_one("SELECT * FROM package WHERE id = ?", (package_id,))
    path = _payload_path(config, row)
    assert row["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert row["size"] == os.path.getsize(path)
    assert row["file_mtime_ns"] == os.stat(path).st_mtime_ns
    assert code == 0
    assert row["sha256"][:16] in output


async def test_package_deadline_option(client, config, database):
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
        "true",
        "--deadline",
        "30",
    )
    show_code, shown = await run_cli(
        config, "package", "show", output.strip(), "--json"
    )

    assert code == 0
    assert show_code == 0
    assert json.loads(shown)["deadline"] == 30


async def test_package_deadline_invalid(client, config, capsys):
    code, _ = await run_cli(
        config,
        "package",
        "add",
        "-",
        "--name",
        "slow",
        "--version",
        "1",
        "--install",
        "true",
        "--deadline",
        "0",
    )

    assert code == 2
    assert "invalid deadline '0'" in capsys.readouterr().err
