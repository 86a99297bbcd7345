"""The embedding API: the README examples and an agent pass over a real port."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import aiohttp
import pytest

from ocoserver.datalock import DataDirInUse
from ocoserver.embed import OcoServer, SyncOcoServer
from ocoserver.errors import AdminError
from tests.admin import make_package_folder
from tests.agents import PlainAgent, SignedAgent

README = Path(__file__).resolve().parent.parent / "README.md"


def readme_examples() -> list[str]:
    """Return the Python code blocks of the README's Embedding section."""
    text = README.read_text(encoding="utf-8")
    section = text.split("\n## Embedding\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)


def test_readme_has_two_examples():
    assert len(readme_examples()) == 2


@pytest.mark.parametrize("index", [0, 1], ids=["async", "sync"])
def test_readme_example_runs(index, capsys):
    code = readme_examples()[index]

    exec(
        compile(code, f"README.md example {index + 1}", "exec"), {"__name__": "example"}
    )

    if index == 0:
        assert capsys.readouterr().out == "succeeded\n"


@pytest.mark.parametrize(
    "agent_class", [PlainAgent, SignedAgent], ids=["1.1.6", "1.2.0"]
)
async def test_agent_downloads_and_succeeds(tmp_path, agent_class):
    folder = make_package_folder(tmp_path)
    async with OcoServer(data_dir=tmp_path / "data") as server:
        await server.add_computer("lab-pc-01")
        package_id = await server.add_package(
            folder, name="hello", version="1.0", install="cat hello.txt"
        )
        container_id = await server.deploy(
            "rollout", packages=[package_id], computers=["lab-pc-01"]
        )
        async with aiohttp.ClientSession(base_url=server.url) as session:
            agent = agent_class(session)
            await agent.hello()
            jobs = (await agent.hello())["software-jobs"]
            download = await agent.download(package_id)
            payload = await download.read()
            status, _ = await agent.call("update_job_state-finished.json",
                                         **{"job-id": jobs[0]["id"]})  # fmt: skip
        job = await server.wait_for_job(jobs[0]["id"], timeout=5)
        container = await server.wait_for_job(container_id=container_id, timeout=5)

    assert download.status == 200
    assert payload[:2] == b"PK"
    assert status == 200
    assert job["state_name"] == "succeeded"
    assert job["return_code"] == 0
    assert container["succeeded"] == 1
    assert [row["state_name"] for row in container["jobs"]] == ["succeeded"]


async def test_wait_for_job_times_out(tmp_path):
    async with OcoServer(data_dir=tmp_path / "data") as server:
        await server.add_computer("pc-1")
        package_id = await server.add_package(None, name="a", version="1", install="x")
        container_id = await server.deploy(
            "c", packages=[package_id], computers=["pc-1"]
        )

        with pytest.raises(TimeoutError) as raised:
            await server.wait_for_job(container_id=container_id, timeout=0.1)

    assert str(raised.value) == (
        "job container 1 not finished within 0.1 s: job 1 waiting"
    )


async def test_embedded_errors_are_admin_errors(tmp_path):
    async with OcoServer(data_dir=tmp_path / "data") as server:
        with pytest.raises(AdminError) as raised:
            await server.deploy("c", packages=[1], computers=["pc-1"])

    assert str(raised.value).startswith("package 1 not found")


def test_sync_server_stops_cleanly(tmp_path):
    with SyncOcoServer(data_dir=tmp_path / "data") as server:
        computer_id = server.add_computer("pc-1")
        port = int(server.url.rsplit(":", 1)[1])

    assert computer_id == 1
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=1)


BAD_DEPLOY_OPTIONS = [
    ({"time_frames": ("garbage",)}, "time_frames: invalid time frame 'garbage'"),
    ({"ip_ranges": ("garbage",)}, "ip_ranges: invalid IP range 'garbage'"),
    ({"time_frames": "Mon 08:00-10:00"}, "give a list of texts"),
    ({"start_time": "yesterday"}, "start_time: invalid time 'yesterday'"),
    ({"priority": "high"}, "invalid priority 'high'"),
    ({"sequence_mode": 5}, "invalid sequence_mode 5"),
    ({"use_wol": True}, "unknown option 'use_wol'"),
]


@pytest.mark.parametrize(("options", "message"), BAD_DEPLOY_OPTIONS)
async def test_embedded_deploy_validates(tmp_path, options, message):
    async with OcoServer(data_dir=tmp_path / "data") as server:
        await server.add_computer("pc-1")
        package_id = await server.add_package(None, name="a", version="1", install="x")

        with pytest.raises(AdminError) as raised:
            await server.deploy("c", packages=[package_id], computers=["pc-1"], **options)
        count = await server.database.fetch_value("SELECT COUNT(*) FROM job_container")

    assert message in str(raised.value)
    assert count == 0


async def test_embedded_deploy_unknown_computer_id(tmp_path):
    async with OcoServer(data_dir=tmp_path / "data") as server:
        package_id = await server.add_package(None, name="a", version="1", install="x")

        with pytest.raises(AdminError) as raised:
            await server.deploy("c", packages=[package_id], computers=[999])

    assert str(raised.value).startswith("computer 999 not found")


async def test_embedded_server_holds_data_dir_lock(tmp_path):
    async with OcoServer(data_dir=tmp_path / "data"):
        with pytest.raises(DataDirInUse):
            async with OcoServer(data_dir=tmp_path / "data"):
                pass

    async with OcoServer(data_dir=tmp_path / "data") as again:
        assert again.port > 0
