"""Each client API method over HTTP with a key of the needed scope."""

from __future__ import annotations

import base64
import hashlib
import io
import zipfile

import pytest

from ocoserver.store import computers, jobs, packages
from tests.admin import run_cli
from tests.agents import PlainAgent
from tests.client_api import call, create_key, result


def zip_bytes(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return buffer.getvalue()


@pytest.fixture
async def admin_key(client, config):
    return await create_key(config, "ops", "admin")


async def make_group(config, command: str, name: str) -> int:
    code, output = await run_cli(config, command, "add", name)
    assert code == 0
    return int(output.strip())


async def create_package(client, key, name="Firefox", version="128.0", **extra):
    data = await result(
        client, key, "oco.package.create", package_family_name=name, version=version,
        install_procedure="setup.exe /S", **extra,
    )  # fmt: skip
    return data["id"]


async def test_computer_create_and_list(client, admin_key):
    created = await result(client, admin_key, "oco.computer.create", hostname="pc-1",
                           notes="lab")  # fmt: skip

    data = await result(client, admin_key, "oco.computer.list")

    assert created == {"id": 1}
    assert [row["hostname"] for row in data["computers"]] == ["pc-1"]
    assert data["computers"][0]["notes"] == "lab"
    assert data["groups"] == []


async def test_computer_get_sections(client, admin_key):
    await result(client, admin_key, "oco.computer.create", hostname="pc-1")

    data = await result(client, admin_key, "oco.computer.get", id=1)

    assert data["general"]["hostname"] == "pc-1"
    assert "agent_key" not in data["general"]
    assert "server_key" not in data["general"]
    assert data["groups"] == []
    assert data["filesystems"] == []
    assert data["recognised_software"] == []
    assert data["installed_packages"] == []
    assert data["pending_jobs"] == []


async def test_computer_group_membership(client, config, admin_key):
    await result(client, admin_key, "oco.computer.create", hostname="pc-1")
    group_id = await make_group(config, "computer-group", "lab")

    added = await result(client, admin_key, "oco.computer.add_to_group",
                         computer_id=1, computer_group_id=group_id)  # fmt: skip
    listed = await result(client, admin_key, "oco.computer.list",
                          computer_group_id=group_id)  # fmt: skip
    shown = await result(client, admin_key, "oco.computer.get", id=1)
    await result(client, admin_key, "oco.computer.remove_from_group",
                 computer_id=1, computer_group_id=group_id)  # fmt: skip
    after = await result(client, admin_key, "oco.computer.list",
                         computer_group_id=group_id)  # fmt: skip

    assert added == []
    assert listed["name"] == "lab"
    assert [row["hostname"] for row in listed["computers"]] == ["pc-1"]
    assert [row["name"] for row in shown["groups"]] == ["lab"]
    assert after["computers"] == []


async def test_computer_remove(client, database, admin_key):
    await result(client, admin_key, "oco.computer.create", hostname="pc-1")

    removed = await result(client, admin_key, "oco.computer.remove", id=1)

    assert removed == []
    assert await computers.list_all(database) == []


async def test_computer_remove_without_force(client, admin_key):
    await result(client, admin_key, "oco.computer.create", hostname="pc-1")
    package_id = await create_package(client, admin_key)
    await result(client, admin_key, "oco.job_container.deploy", name="rollout",
                 package_ids=[package_id], computer_ids=[1])  # fmt: skip

    status, payload = await call(client, admin_key, "oco.computer.remove", id=1,
                                 force=False)  # fmt: skip

    assert status == 400
    assert payload["error"]["message"] == (
        "computer 1 has 1 pending jobs; send force=true to remove it anyway"
    )


async def test_package_create_without_payload(client, database, admin_key):
    package_id = await create_package(
        client, admin_key, install_procedure_success_return_codes="0,3010",
        install_procedure_post_action=1, compatible_architecture="x86_64",
    )  # fmt: skip

    row = await packages.get(database, package_id)

    assert row["family"] == "Firefox"
    assert row["success_codes"] == "0,3010"
    assert row["post_action"] == "restart"
    assert row["compatible_arch"] == "x86_64"
    assert row["file_name"] is None


async def test_package_create_base64_zip(client, database, config, admin_key):
    payload = zip_bytes({"setup.exe": b"MZ" * 100})

    package_id = await create_package(
        client, admin_key, file=base64.b64encode(payload).decode()
    )
    row = await packages.get(database, package_id)

    assert row["size"] == len(payload)
    assert row["sha256"] == hashlib.sha256(payload).hexdigest()
    assert (config.depot_path / row["file_name"]).read_bytes() == payload


async def test_package_create_base64_files(client, database, config, admin_key):
    files = [
        {"name": "setup.msi", "content": base64.b64encode(b"msi").decode()},
        {"name": "conf/app.ini", "content": base64.b64encode(b"[a]").decode()},
    ]

    package_id = await create_package(client, admin_key, files=files)
    row = await packages.get(database, package_id)
    path = config.depot_path / row["file_name"]

    with zipfile.ZipFile(path) as archive:
        assert sorted(archive.namelist()) == ["conf/app.ini", "setup.msi"]
        assert archive.read("conf/app.ini") == b"[a]"


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("../evil", "without '..'"),
        (".", "without '..'"),
        ("C:\\evil", "without '..'"),
        ("a" * 300, "is too long"),
        ("a/" * 3000, "is too long"),
    ],
)
async def test_package_create_rejects_bad_name(client, admin_key, name, message):
    files = [{"name": name, "content": base64.b64encode(b"x").decode()}]

    status, payload = await call(
        client, admin_key, "oco.package.create", package_family_name="x",
        version="1", install_procedure="run", files=files,
    )  # fmt: skip

    assert status == 400
    assert payload["error"]["code"] == -32602
    assert message in payload["error"]["message"]


@pytest.mark.parametrize(
    "names, message",
    [
        (["a.txt", "a.txt"], "data.files names a file twice; give each name once"),
        (["a", "a/b"], "data.files name 'a/b' conflicts with another file name"),
    ],
    ids=["duplicate", "file-and-folder"],
)
async def test_package_create_rejects_name_clash(client, admin_key, names, message):
    content = base64.b64encode(b"x").decode()
    files = [{"name": name, "content": content} for name in names]

    status, payload = await call(
        client, admin_key, "oco.package.create", package_family_name="x",
        version="1", install_procedure="run", files=files,
    )  # fmt: skip

    assert status == 400
    assert payload["error"]["message"] == message


async def test_package_create_rejects_non_zip(client, admin_key):
    status, payload = await call(
        client, admin_key, "oco.package.create", package_family_name="x",
        version="1", install_procedure="run", file=base64.b64encode(b"plain").decode(),
    )  # fmt: skip

    assert status == 400
    assert "data.file_name" in payload["error"]["message"]


async def test_package_list_get_and_families(client, admin_key):
    first = await create_package(client, admin_key, version="127.0")
    second = await create_package(client, admin_key, version="128.0")
    await create_package(client, admin_key, name="7-Zip", version="24")

    families = await result(client, admin_key, "oco.package_family.list")
    listed = await result(client, admin_key, "oco.package.list",
                          package_family_name="Firefox")  # fmt: skip
    shown = await result(client, admin_key, "oco.package.get", id=second)

    assert families == [
        {"name": "7-Zip", "versions": ["24"], "package_ids": [3]},
        {"name": "Firefox", "versions": ["127.0", "128.0"], "package_ids": [1, 2]},
    ]
    assert [row["id"] for row in listed["packages"]] == [first, second]
    assert listed["packages"][0]["install_procedure_post_action"] == 0
    assert shown["general"]["package_family_name"] == "Firefox"
    assert shown["general"]["version"] == "128.0"
    assert shown["installations"] == []
    assert shown["pending_jobs"] == []


async def test_package_group_membership(client, config, admin_key):
    package_id = await create_package(client, admin_key)
    group_id = await make_group(config, "package-group", "browsers")

    await result(client, admin_key, "oco.package.add_to_group",
                 package_id=package_id, package_group_id=group_id)  # fmt: skip
    listed = await result(client, admin_key, "oco.package.list",
                          package_group_id=group_id)  # fmt: skip
    await result(client, admin_key, "oco.package.remove_from_group",
                 package_id=package_id, package_group_id=group_id)  # fmt: skip
    after = await result(client, admin_key, "oco.package.list",
                         package_group_id=group_id)  # fmt: skip

    assert listed["name"] == "browsers"
    assert [row["id"] for row in listed["packages"]] == [package_id]
    assert after["packages"] == []


async def test_package_remove(client, database, admin_key):
    package_id = await create_package(client, admin_key)

    removed = await result(client, admin_key, "oco.package.remove", id=package_id)

    assert removed == []
    assert await packages.list_all(database) == []


async def test_deploy_and_list_jobs(client, config, database):
    admin = await create_key(config, "ops", "admin")
    deployer = await create_key(config, "rollout", "deploy")
    await result(client, admin, "oco.computer.create", hostname="pc-1")
    package_id = await create_package(client, admin)

    created = await result(
        client, deployer, "oco.job_container.deploy", name="Firefox rollout",
        package_ids=[package_id], computer_ids=[1], date_start="2020-01-01 08:00:00",
        priority=3, sequence_mode=1,
    )  # fmt: skip
    containers = await result(client, deployer, "oco.job_container.list")
    job_list = await result(client, deployer, "oco.job_container.job.list",
                            id=created["id"])  # fmt: skip

    assert created == {"id": 1}
    assert containers[0]["name"] == "Firefox rollout"
    assert containers[0]["priority"] == 3
    assert containers[0]["sequence_mode"] == 1
    assert containers[0]["start_time"] == "2020-01-01 08:00:00"
    assert containers[0]["waiting"] == 1
    assert len(job_list) == 1
    assert job_list[0]["computer_id"] == 1
    assert job_list[0]["computer_hostname"] == "pc-1"
    assert job_list[0]["package_id"] == package_id
    assert job_list[0]["state"] == jobs.WAITING
    assert job_list[0]["state_name"] == "waiting"


async def test_deploy_to_groups(client, config, admin_key):
    await result(client, admin_key, "oco.computer.create", hostname="pc-1")
    await result(client, admin_key, "oco.computer.create", hostname="pc-2")
    first = await create_package(client, admin_key, version="1")
    second = await create_package(client, admin_key, version="2")
    computer_group = await make_group(config, "computer-group", "lab")
    package_group = await make_group(config, "package-group", "base")
    for computer_id in (1, 2):
        await result(client, admin_key, "oco.computer.add_to_group",
                     computer_id=computer_id, computer_group_id=computer_group)  # fmt: skip
    for package_id in (second, first):
        await result(client, admin_key, "oco.package.add_to_group",
                     package_id=package_id, package_group_id=package_group)  # fmt: skip

    created = await result(
        client, admin_key, "oco.job_container.deploy", name="base",
        computer_group_ids=[computer_group], package_group_ids=[package_group],
    )  # fmt: skip
    job_list = await result(client, admin_key, "oco.job_container.job.list",
                            id=created["id"])  # fmt: skip

    assert [(job["computer_hostname"], job["package_id"]) for job in job_list] == [
        ("pc-1", second),
        ("pc-1", first),
        ("pc-2", second),
        ("pc-2", first),
    ]


async def test_deploy_rejects_reports(client, admin_key):
    status, payload = await call(
        client, admin_key, "oco.job_container.deploy", name="x", package_ids=[1],
        computer_ids=[1], computer_report_ids=[4],
    )  # fmt: skip

    assert status == 400
    assert payload["error"]["code"] == -32602
    assert "not supported by ocoserver" in payload["error"]["message"]


async def test_uninstall_and_remove_container(client, database, admin_key):
    await result(client, admin_key, "oco.computer.create", hostname="pc-1")
    package_id = await create_package(client, admin_key, uninstall_procedure="remove")

    created = await result(client, admin_key, "oco.job_container.uninstall",
                           name="cleanup", package_ids=[package_id],
                           computer_ids=[1])  # fmt: skip
    job_list = await result(client, admin_key, "oco.job_container.job.list",
                            id=created["id"])  # fmt: skip
    removed = await result(client, admin_key, "oco.job_container.remove",
                           id=created["id"])  # fmt: skip

    assert job_list[0]["is_uninstall"] == 1
    assert job_list[0]["procedure"] == "remove"
    assert removed == []
    assert await jobs.list_jobs(database) == []


async def test_deployment_rule_methods(client, config, admin_key):
    await result(client, admin_key, "oco.computer.create", hostname="pc-1")
    package_id = await create_package(client, admin_key)
    computer_group = await make_group(config, "computer-group", "lab")
    package_group = await make_group(config, "package-group", "base")
    await result(client, admin_key, "oco.computer.add_to_group", computer_id=1,
                 computer_group_id=computer_group)  # fmt: skip
    await result(client, admin_key, "oco.package.add_to_group", package_id=package_id,
                 package_group_id=package_group)  # fmt: skip

    created = await result(
        client, admin_key, "oco.deployment_rule.create", name="baseline",
        computer_group_id=computer_group, package_group_id=package_group,
    )  # fmt: skip
    listed = await result(client, admin_key, "oco.deployment_rule.list")
    shown = await result(client, admin_key, "oco.deployment_rule.get", id=created["id"])
    rule_jobs = await result(client, admin_key, "oco.deployment_rule.job.list",
                             id=created["id"])  # fmt: skip
    removed = await result(client, admin_key, "oco.deployment_rule.remove",
                           id=created["id"])  # fmt: skip
    after = await result(client, admin_key, "oco.deployment_rule.list")

    assert created == {"id": 1}
    assert [row["name"] for row in listed] == ["baseline"]
    assert shown["general"]["computer_group"] == "lab"
    assert [job["computer"] for job in shown["jobs"]] == ["pc-1"]
    assert rule_jobs[0]["agent_job_id"] == "dynamic-1"
    assert removed == []
    assert after == []


async def test_deployed_job_reaches_agent(client, config, database, admin_key):
    await result(client, admin_key, "oco.computer.create", hostname="lab-pc-01")
    package_id = await create_package(client, admin_key)
    agent = PlainAgent(client)
    await agent.hello()

    await result(client, admin_key, "oco.job_container.deploy", name="rollout",
                 package_ids=[package_id], computer_ids=[1])  # fmt: skip
    params = await agent.hello()

    assert [job["package-id"] for job in params["software-jobs"]] == [package_id]
