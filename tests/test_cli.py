"""The administration commands, run in-process through `ocoserver.cli.main`.

`cli.main` calls asyncio.run, so these tests are plain functions; they seed
and check the database through the store functions with their own
asyncio.run.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import zipfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from ocoserver.cli import main
from ocoserver.db import Database, Row, open_database
from ocoserver.store import computers, events, inventory, jobs

T = TypeVar("T")


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], data_dir: Path) -> Callable[..., Result]:
    """Return a function that runs one command against the test's data directory."""

    def run(*args: str) -> Result:
        code = main([*args, "--data-dir", str(data_dir)])
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


def run_json(cli: Callable[..., Result], *args: str) -> Any:
    result = cli(*args, "--json")
    assert result.code == 0, result.err
    return json.loads(result.out)


def run_id(cli: Callable[..., Result], *args: str) -> int:
    """Run a command that prints a new id and return that id."""
    result = cli(*args)
    assert result.code == 0, result.err
    assert result.out.strip().isdigit(), result.out
    return int(result.out)


def with_database(data_dir: Path, work: Callable[[Database], Awaitable[T]]) -> T:
    async def run() -> T:
        async with open_database(data_dir / "ocoserver.sqlite3") as database:
            return await work(database)

    return asyncio.run(run())


def add_package(cli: Callable[..., Result], name: str, source: str = "-") -> int:
    return run_id(
        cli, "package", "add", source, "--name", name, "--version", "1.0",
        "--install", f"install-{name}",
    )  # fmt: skip


def make_zip(path: Path, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return path


def report_job(data_dir: Path, hostname: str, report: jobs.StateReport) -> None:
    async def work(database: Database) -> None:
        computer = await computers.get_by_hostname(database, hostname)
        async with database.transaction() as connection:
            await jobs.apply_state_report(connection, computer, report)

    with_database(data_dir, work)


def read_computer(data_dir: Path, hostname: str) -> Row:
    async def work(database: Database) -> Row:
        return await computers.get_by_hostname(database, hostname)

    return with_database(data_dir, work)


def read_container(data_dir: Path, container_id: int) -> Row:
    async def work(database: Database) -> Row:
        return await jobs.get_container(database, container_id)

    return with_database(data_dir, work)


# computer


def test_computer_add_prints_id(cli):
    assert run_id(cli, "computer", "add", "pc1") == 1
    assert run_id(cli, "computer", "add", "pc2", "--notes", "lab") == 2


def test_computer_add_duplicate(cli):
    run_id(cli, "computer", "add", "pc1")

    result = cli("computer", "add", "PC1")

    assert result.code == 2
    assert "'pc1' already exists" in result.err


def test_computer_list_json(cli):
    run_id(cli, "computer", "add", "pc2", "--notes", "second floor")
    run_id(cli, "computer", "add", "pc1")

    rows = run_json(cli, "computer", "list")

    assert [row["hostname"] for row in rows] == ["pc1", "pc2"]
    assert [row["id"] for row in rows] == [2, 1]
    assert rows[1]["notes"] == "second floor"


def test_computer_list_table(cli):
    run_id(cli, "computer", "add", "pc1", "--notes", "lab")

    result = cli("computer", "list")

    assert result.code == 0
    header, line = result.out.splitlines()
    assert header.split()[:2] == ["ID", "HOSTNAME"]
    assert line.split()[:2] == ["1", "pc1"]
    assert line.endswith("lab")


def seed_inventory(data_dir: Path, hostname: str) -> None:
    """Store one entry in every inventory section, plus an event."""

    async def work(database: Database) -> None:
        computer = await computers.get_by_hostname(database, hostname)
        computer_id = computer["id"]
        async with database.transaction() as connection:
            await inventory.replace_inventory(connection, computer_id, {
                "os": "Debian", "os_version": "12", "ram": 8192,
                "networks": [{"addr": "192.0.2.10", "mac": "00:11:22:33:44:55"}],
                "screens": [{"name": "Screen A", "resolution": "1920x1080"}],
                "printers": [{"name": "Printer A", "driver": "generic"}],
                "partitions": [{"device": "/dev/sda1", "mountpoint": "/"}],
                "software": [{"name": "curl", "version": "7.88", "description": ""}],
                "logins": [{"username": "alice", "display_name": "Alice",
                            "console": "tty1", "timestamp": "2026-01-02 03:04:05"}],
                "users": [{"username": "alice", "uid": 1000}],
                "devices": [{"vendor": "Acme", "product": "Mouse"}],
            })  # fmt: skip
            await inventory.store_services(connection, computer_id, [
                {"name": "disk", "status": "0", "metrics": "", "details": "ok"},
            ])  # fmt: skip
            await events.store(connection, computer_id, [
                {"log": "System", "timestamp": "2026-01-02 03:04:05",
                 "provider": "kernel", "level": 2, "event_id": 41, "data": {"x": 1}},
            ])  # fmt: skip
            await computers.issue_keys(connection, computer_id)

    with_database(data_dir, work)


def test_computer_show_json_inventory(cli, data_dir):
    run_id(cli, "computer", "add", "pc1")
    seed_inventory(data_dir, "pc1")
    package_id = add_package(cli, "tool")
    run_id(cli, "deploy", "--name", "r", "--package", str(package_id),
           "--computer", "pc1")  # fmt: skip
    finished = jobs.StateReport(1, jobs.AGENT_FINISHED, 0, "done", None)
    report_job(data_dir, "pc1", finished)

    computer = run_json(cli, "computer", "show", "PC1")

    assert computer["id"] == 1
    assert computer["hostname"] == "pc1"
    assert computer["os"] == "Debian"
    assert computer["ram"] == 8192
    assert "agent_key" not in computer
    assert "server_key" not in computer
    assert read_computer(data_dir, "pc1")["agent_key"] not in json.dumps(computer)
    assert computer["keys_confirmed"] == 0
    assert computer["networks"][0]["address"] == "192.0.2.10"
    assert computer["screens"][0]["resolution"] == "1920x1080"
    assert computer["printers"][0]["driver"] == "generic"
    assert computer["partitions"][0]["mountpoint"] == "/"
    assert computer["software"][0]["name"] == "curl"
    assert computer["logins"][0]["username"] == "alice"
    assert computer["users"][0]["uid"] == 1000
    assert computer["devices"][0]["product"] == "Mouse"
    assert computer["services"][0]["details"] == "ok"
    assert computer["packages"][0]["id"] == package_id
    assert computer["jobs"][0]["state"] == jobs.SUCCEEDED
    assert computer["jobs"][0]["state_name"] == "succeeded"
    assert computer["events"][0]["event_id"] == 41


def test_computer_show_table_sections(cli, data_dir):
    run_id(cli, "computer", "add", "pc1")
    seed_inventory(data_dir, "pc1")
    stored = read_computer(data_dir, "pc1")

    result = cli("computer", "show", "pc1")

    assert result.code == 0
    lines = result.out.splitlines()
    assert lines[0].split() == ["id", "1"]
    assert lines[1].split() == ["hostname", "pc1"]
    for title in ("Networks:", "Screens:", "Printers:", "Partitions:", "Software:",
                  "Logins:", "Users:", "Devices:", "Services:",
                  "Installed packages:", "Recent jobs:", "Recent events:"):
        assert title in lines
    assert "192.0.2.10" in result.out
    assert "agent_key" not in result.out
    assert stored["agent_key"] not in result.out
    assert stored["server_key"] not in result.out


def test_computer_remove(cli):
    run_id(cli, "computer", "add", "pc1")

    result = cli("computer", "remove", "pc1")

    assert result.code == 0
    assert "pc1" in result.out
    assert run_json(cli, "computer", "list") == []


def test_computer_refresh_sets_flag(cli):
    run_id(cli, "computer", "add", "pc1")

    result = cli("computer", "refresh", "pc1")

    assert result.code == 0
    assert run_json(cli, "computer", "show", "pc1")["refresh_requested"] == 1


# package


def test_package_add_zip(cli, data_dir, tmp_path):
    source = make_zip(tmp_path / "payload.zip", {"setup.sh": b"echo hi\n"})

    package_id = add_package(cli, "zipped", str(source))

    package = run_json(cli, "package", "show", str(package_id))
    stored = data_dir / "depot" / package["file_name"]
    assert stored.read_bytes() == source.read_bytes()
    assert package["size"] == source.stat().st_size
    assert package["sha256"] == hashlib.sha256(source.read_bytes()).hexdigest()


def test_package_add_folder(cli, data_dir, tmp_path):
    folder = tmp_path / "payload"
    (folder / "sub").mkdir(parents=True)
    (folder / "setup.sh").write_text("echo hi\n")
    (folder / "sub" / "data.bin").write_bytes(bytes(range(256)))

    package_id = add_package(cli, "folder", str(folder))

    package = run_json(cli, "package", "show", str(package_id))
    with zipfile.ZipFile(data_dir / "depot" / package["file_name"]) as archive:
        assert sorted(archive.namelist()) == ["setup.sh", "sub/data.bin"]
        assert archive.read("setup.sh") == b"echo hi\n"
        assert archive.read("sub/data.bin") == bytes(range(256))


def test_package_add_folder_links_and_empty_dirs(cli, data_dir, tmp_path):
    folder = tmp_path / "payload"
    (folder / "logs").mkdir(parents=True)
    (folder / "setup.sh").write_text("echo hi\n")
    (folder / "run.sh").symlink_to(folder / "setup.sh")

    package_id = add_package(cli, "linked", str(folder))

    package = run_json(cli, "package", "show", str(package_id))
    with zipfile.ZipFile(data_dir / "depot" / package["file_name"]) as archive:
        assert sorted(archive.namelist()) == ["logs/", "run.sh", "setup.sh"]
        assert archive.read("run.sh") == b"echo hi\n"


@pytest.mark.parametrize("target", ["outside", "missing", "folder"])
def test_package_add_folder_bad_link(cli, data_dir, tmp_path, target):
    folder = tmp_path / "payload"
    (folder / "sub").mkdir(parents=True)
    (folder / "setup.sh").write_text("echo hi\n")
    outside = tmp_path / "secret.txt"
    outside.write_text("not for agents\n")
    link_targets = {
        "outside": outside, "missing": folder / "gone.sh", "folder": folder / "sub",
    }
    (folder / "link").symlink_to(link_targets[target])

    result = cli("package", "add", str(folder), "--name", "bad", "--version", "1",
                 "--install", "sh setup.sh")

    assert result.code == 2
    assert f"symbolic link {folder / 'link'}" in result.err
    assert run_json(cli, "package", "list") == []
    assert not any((data_dir / "depot").glob("*.zip"))


def test_package_add_no_payload(cli, data_dir):
    package_id = add_package(cli, "script")

    package = run_json(cli, "package", "show", str(package_id))

    assert package["file_name"] is None
    assert package["size"] is None
    assert not (data_dir / "depot").exists() or not any((data_dir / "depot").iterdir())


def test_package_add_options(cli):
    package_id = run_id(
        cli, "package", "add", "-", "--name", "msi", "--version", "2.1",
        "--install", "msiexec /i x.msi", "--uninstall", "msiexec /x x.msi",
        "--success-codes", "0, 3010", "--post-action", "restart",
        "--post-action-timeout", "10", "--description", "an installer",
    )  # fmt: skip

    package = run_json(cli, "package", "show", str(package_id))

    assert package["id"] == package_id
    assert package["name"] == "msi"
    assert package["version"] == "2.1"
    assert package["install_procedure"] == "msiexec /i x.msi"
    assert package["uninstall_procedure"] == "msiexec /x x.msi"
    assert package["success_codes"] == "0,3010"
    assert package["post_action"] == "restart"
    assert package["post_action_timeout"] == 10
    assert package["description"] == "an installer"


def test_package_list_json(cli):
    second = add_package(cli, "beta")
    first = add_package(cli, "alpha")

    rows = run_json(cli, "package", "list")

    assert [row["id"] for row in rows] == [first, second]
    assert [row["name"] for row in rows] == ["alpha", "beta"]


def test_package_list_table(cli):
    add_package(cli, "alpha")

    result = cli("package", "list")

    header, line = result.out.splitlines()
    assert header.split()[:3] == ["ID", "NAME", "VERSION"]
    assert line.split()[:3] == ["1", "alpha", "1.0"]


def test_package_show_table(cli):
    add_package(cli, "alpha")

    result = cli("package", "show", "1")

    assert result.code == 0
    assert result.out.splitlines()[1].split() == ["name", "alpha"]


def test_package_remove_deletes_payload(cli, data_dir, tmp_path):
    source = make_zip(tmp_path / "payload.zip", {"a.txt": b"a"})
    package_id = add_package(cli, "zipped", str(source))
    stored = data_dir / "depot" / run_json(cli, "package", "show", "1")["file_name"]

    result = cli("package", "remove", str(package_id))

    assert result.code == 0
    assert not stored.exists()
    assert run_json(cli, "package", "list") == []


def test_package_remove_with_active_jobs(cli):
    run_id(cli, "computer", "add", "pc1")
    package_id = add_package(cli, "tool")
    run_id(cli, "deploy", "--name", "r", "--package", "1", "--computer", "pc1")

    result = cli("package", "remove", str(package_id))

    assert result.code == 2
    assert len(result.err.splitlines()) == 1
    assert "has active jobs (1)" in result.err


# deploy and job


def test_deploy_keeps_package_order(cli):
    for hostname in ("pc1", "pc2"):
        run_id(cli, "computer", "add", hostname)
    ids = [add_package(cli, name) for name in ("a", "b", "c")]
    order = [ids[2], ids[0], ids[1]]

    result = cli(
        "deploy", "--name", "rollout", "--package", str(order[0]),
        "--package", str(order[1]), "--package", str(order[2]),
        "--computer", "pc2", "--computer", "pc1",
    )  # fmt: skip

    assert result.code == 0
    assert result.out == "1\n"
    rows = run_json(cli, "job", "list", "--container", "1")
    for hostname in ("pc1", "pc2"):
        mine = [row for row in rows if row["computer"] == hostname]
        assert [row["package_id"] for row in mine] == order
        assert [row["state"] for row in mine] == [0, 0, 0]


def test_deploy_container_options(cli, data_dir):
    run_id(cli, "computer", "add", "pc1")
    add_package(cli, "a")

    container_id = run_id(
        cli, "deploy", "--name", "night", "--package", "1", "--computer", "pc1",
        "--start", "2026-05-01T08:00+02:00", "--end", "2026-05-02",
        "--priority", "7", "--abort-on-failure",
    )  # fmt: skip

    container = read_container(data_dir, container_id)
    assert container["name"] == "night"
    assert container["start_time"] == "2026-05-01 06:00:00"
    assert container["end_time"] == "2026-05-02 00:00:00"
    assert container["priority"] == 7
    assert container["sequence_mode"] == 1


def test_deploy_defaults(cli, data_dir):
    run_id(cli, "computer", "add", "pc1")
    add_package(cli, "a")

    container_id = run_id(
        cli, "deploy", "--name", "now", "--package", "1", "--computer", "pc1"
    )

    container = read_container(data_dir, container_id)
    assert container["start_time"] <= container["created"]
    assert container["end_time"] is None
    assert container["priority"] == 0
    assert container["sequence_mode"] == 0


def test_job_list_filters(cli):
    for hostname in ("pc1", "pc2"):
        run_id(cli, "computer", "add", hostname)
    add_package(cli, "a")
    first = run_id(cli, "deploy", "--name", "one", "--package", "1",
                   "--computer", "pc1", "--computer", "pc2")  # fmt: skip
    second = run_id(cli, "deploy", "--name", "two", "--package", "1",
                    "--computer", "pc1")  # fmt: skip

    everything = run_json(cli, "job", "list")
    by_container = run_json(cli, "job", "list", "--container", str(second))
    by_computer = run_json(cli, "job", "list", "--computer", "pc2")
    both = run_json(cli, "job", "list", "--container", str(first), "--computer", "pc1")

    assert len(everything) == 3
    assert [row["container_id"] for row in by_container] == [second]
    assert [(row["computer"], row["container_id"]) for row in by_computer] == [
        ("pc2", first)
    ]
    assert [(row["computer"], row["container_id"]) for row in both] == [("pc1", first)]


def test_job_list_table(cli, data_dir):
    run_id(cli, "computer", "add", "pc1")
    add_package(cli, "a")
    add_package(cli, "b")
    run_id(cli, "deploy", "--name", "r", "--package", "1", "--package", "2",
           "--computer", "pc1")  # fmt: skip
    report_job(data_dir, "pc1", jobs.StateReport(
        1, jobs.AGENT_FINISHED, 1, "step one\nstep two failed\n", None,
    ))  # fmt: skip
    downloading = jobs.StateReport(2, jobs.AGENT_DOWNLOADING, None, "", 42.5)
    report_job(data_dir, "pc1", downloading)

    result = cli("job", "list")

    lines = result.out.splitlines()
    assert lines[0].split() == [
        "ID", "CONTAINER", "COMPUTER", "PACKAGE", "STATE", "PROGRESS", "RETURN", "CODE",
        "OUTPUT",
    ]  # fmt: skip
    assert "failed (-1)" in lines[1]
    assert lines[1].endswith("1            step two failed")
    assert "downloading (1)" in lines[2]
    assert "42.5%" in lines[2]


def test_job_show_full_output(cli, data_dir):
    run_id(cli, "computer", "add", "pc1")
    add_package(cli, "a")
    run_id(cli, "deploy", "--name", "r", "--package", "1", "--computer", "pc1")
    output = "line one\nline two\nline three"
    finished = jobs.StateReport(1, jobs.AGENT_FINISHED, 0, output, None)
    report_job(data_dir, "pc1", finished)

    result = cli("job", "show", "1")
    job = run_json(cli, "job", "show", "1")

    assert result.code == 0
    assert output in result.out
    assert "succeeded" in result.out
    assert job["id"] == 1
    assert job["state"] == jobs.SUCCEEDED
    assert job["message"] == output
    assert job["return_code"] == 0


def test_job_show_escapes_terminal_control(cli, data_dir):
    run_id(cli, "computer", "add", "pc1")
    add_package(cli, "a")
    run_id(cli, "deploy", "--name", "r", "--package", "1", "--computer", "pc1")
    output = "\x1b[2Jcleared\n\tindented"
    report_job(data_dir, "pc1", jobs.StateReport(1, jobs.AGENT_FINISHED, 0, output, None))

    shown = cli("job", "show", "1").out
    listed = cli("job", "list").out

    assert "\\x1b[2Jcleared\n\tindented" in shown
    assert "\x1b" not in shown
    assert "\x1b" not in listed


# event-rule and setting


def test_event_rule_add_list_remove(cli):
    rule_id = run_id(
        cli, "event-rule", "add", "--log", "System", "--query", "*[Level=1]"
    )

    listed = run_json(cli, "event-rule", "list")
    table = cli("event-rule", "list")
    removed = cli("event-rule", "remove", str(rule_id))

    assert [(row["id"], row["log"], row["query"]) for row in listed] == [
        (rule_id, "System", "*[Level=1]")
    ]
    table_line = table.out.splitlines()[1]
    assert table_line.split()[:3] == [str(rule_id), "System", "*[Level=1]"]
    assert removed.code == 0
    assert run_json(cli, "event-rule", "list") == []


OVERSIZED_RULES = {
    "event-log-name": (
        ["event-rule", "add", "--log", "L" * 300, "--query", "*"],
        "use at most 256 printable characters on one line",
    ),
    "event-query": (
        ["event-rule", "add", "--log", "System", "--query", "q" * 5000],
        "use at most 4096 printable characters",
    ),
    "password-username": (
        ["password-rule", "add", "--username", "u" * 3000, "--alphabet", "abc123",
         "--length", "16", "--valid-days", "30", "--history", "3"],
        "username is 3000 characters long: use at most 256",
    ),
}  # fmt: skip


@pytest.mark.parametrize(
    ("args", "message"), OVERSIZED_RULES.values(), ids=OVERSIZED_RULES
)
def test_oversized_rule_rejected(cli, args, message):
    result = cli(*args)

    assert result.code == 2
    assert message in result.err


def test_setting_set_and_list(cli):
    result = cli("setting", "set", "agent-update-interval", "600")

    rows = run_json(cli, "setting", "list")

    assert result.out == "agent-update-interval = 600\n"
    values = {row["key"]: row["value"] for row in rows}
    assert values["agent-update-interval"] == "600"
    assert values["agent-self-registration-enabled"] == "0"
    assert all(set(row) >= {"key", "value", "description"} for row in rows)


def test_setting_secret_hidden(cli):
    result = cli("setting", "set", "agent-registration-key", "secret-key-123")

    hidden = run_json(cli, "setting", "list")
    shown = run_json(cli, "setting", "list", "--show-secrets")
    table = cli("setting", "list")

    assert "secret-key-123" not in result.out
    hidden_values = {row["key"]: row["value"] for row in hidden}
    assert hidden_values["agent-registration-key"] is None
    shown_values = {row["key"]: row["value"] for row in shown}
    assert shown_values["agent-registration-key"] == "secret-key-123"
    assert "secret-key-123" not in table.out
    assert "(hidden" in table.out


# options and invalid input


def test_options_before_subcommand(capsys, data_dir):
    code = main(["--data-dir", str(data_dir), "computer", "add", "pc1"])

    assert code == 0
    assert capsys.readouterr().out == "1\n"
    assert (data_dir / "ocoserver.sqlite3").exists()


def test_config_option_sets_data_dir(capsys, tmp_path):
    config_file = tmp_path / "ocoserver.toml"
    data_dir = tmp_path / "from-config"
    config_file.write_text(f'[server]\ndata_dir = "{data_dir.as_posix()}"\n')

    code = main(["computer", "add", "pc1", "--config", str(config_file)])

    assert code == 0
    assert (data_dir / "ocoserver.sqlite3").exists()


HELP_COMMANDS = [
    ["computer"], ["computer", "add"], ["computer", "list"], ["computer", "show"],
    ["computer", "remove"], ["computer", "refresh"], ["computer", "merge"],
    ["package"], ["package", "add"],
    ["package", "list"], ["package", "show"], ["package", "remove"], ["deploy"],
    ["job"], ["job", "list"], ["job", "show"], ["event-rule"], ["event-rule", "add"],
    ["event-rule", "list"], ["event-rule", "remove"], ["setting"],
    ["setting", "list"], ["setting", "set"],
]  # fmt: skip


@pytest.mark.parametrize("command", HELP_COMMANDS, ids=" ".join)
def test_help_every_command(capsys, command):
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--help"])

    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: ocoserver {' '.join(command)}")
    assert "--data-dir" in out


def test_group_without_subcommand(capsys, data_dir):
    with pytest.raises(SystemExit) as exit_info:
        main(["computer", "--data-dir", str(data_dir)])

    assert exit_info.value.code == 2
    assert "SUBCOMMAND" in capsys.readouterr().err


@pytest.fixture
def seeded(cli, tmp_path):
    """A computer pc1, package 1 and a ZIP file that is not a ZIP archive."""
    run_id(cli, "computer", "add", "pc1")
    add_package(cli, "a")
    (tmp_path / "fake.zip").write_text("not a zip")
    (tmp_path / "empty").mkdir()
    return tmp_path


DEPLOY = ["deploy", "--name", "r", "--package", "1", "--computer", "pc1"]

# (arguments, text that the error line must contain)
INVALID_INPUT = [
    (["computer", "show", "ghost"], "'ghost'"),
    (["computer", "remove", "ghost"], "'ghost'"),
    (["computer", "refresh", "ghost"], "'ghost'"),
    (["computer", "add", "two words"], "'two words'"),
    (["package", "add", "{tmp}/missing.zip", "--name", "x", "--version", "1",
      "--install", "x"], "missing.zip"),
    (["package", "add", "{tmp}/fake.zip", "--name", "x", "--version", "1",
      "--install", "x"], "fake.zip"),
    (["package", "add", "{tmp}/empty", "--name", "x", "--version", "1",
      "--install", "x"], "empty"),
    (["package", "add", "", "--name", "x", "--version", "1", "--install", "x"],
     "PATH"),
    (["package", "add", "-", "--name", "x", "--version", "1", "--install", "x",
      "--post-action-timeout", "soon"], "'soon'"),
    (["package", "add", "-", "--name", "x", "--version", "1", "--install", "x",
      "--post-action", "reboot"], "'reboot'"),
    (["package", "add", "-", "--name", "x", "--version", "1", "--install", "x",
      "--success-codes", "ok"], "'ok'"),
    (["package", "add", "-", "--name", "a", "--version", "1.0", "--install", "x"],
     "a 1.0"),
    (["package", "show", "99"], "99"),
    (["package", "show", "abc"], "'abc'"),
    (["package", "remove", "0"], "'0'"),
    (["deploy", "--name", "r", "--package", "1", "--computer", "ghost"], "'ghost'"),
    (["deploy", "--name", "r", "--package", "42", "--computer", "pc1"], "42"),
    (["deploy", "--name", "r", "--package", "one", "--computer", "pc1"], "'one'"),
    ([*DEPLOY, "--start", "tomorrow"], "'tomorrow'"),
    ([*DEPLOY, "--end", "2026-02-30"], "'2026-02-30'"),
    ([*DEPLOY, "--start", "2026-05-02", "--end", "2026-05-01"], "2026-05-01"),
    ([*DEPLOY, "--priority", "high"], "'high'"),
    ([*DEPLOY, "--computer", "PC1"], "'pc1'"),
    ([*DEPLOY, "--package", "1"], "'1'"),
    (["deploy", "--name", " ", "--package", "1", "--computer", "pc1"], "--name"),
    (["job", "show", "7"], "7"),
    (["job", "show", "x7"], "'x7'"),
    (["job", "list", "--computer", "ghost"], "'ghost'"),
    (["job", "list", "--container", "5"], "5"),
    (["job", "list", "--container", "-1"], "'-1'"),
    (["event-rule", "add", "--log", "System", "--query", " "], "--query"),
    (["event-rule", "remove", "3"], "3"),
    (["setting", "set", "no-such-key", "1"], "'no-such-key'"),
    (["setting", "set", "agent-update-interval", "10"], "'10'"),
    (["setting", "set", "agent-update-interval", "1" + "0" * 20], "'1" + "0" * 20),
    (["job", "show", "9" * 23], "9" * 23),
    (["package", "remove", "9" * 23], "9" * 23),
    (["event-rule", "remove", "9" * 23], "9" * 23),
    ([*DEPLOY, "--priority", "9" * 23], "9" * 23),
    (["computer-group", "show", "9" * 23], "9" * 23),
    (["deployment-rule", "remove", "9" * 23], "9" * 23),
]  # fmt: skip


@pytest.mark.parametrize(
    ("arguments", "named"), INVALID_INPUT, ids=[" ".join(a) for a, _ in INVALID_INPUT]
)
def test_invalid_input_one_line(cli, seeded, arguments, named):
    arguments = [argument.replace("{tmp}", str(seeded)) for argument in arguments]

    result = cli(*arguments)

    assert result.code != 0
    assert result.out == ""
    lines = result.err.splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith("ocoserver: error: ")
    assert named in lines[0]
    assert "Traceback" not in result.err


def test_invalid_deploy_creates_nothing(cli, seeded):
    result = cli(*DEPLOY, "--computer", "ghost")

    assert result.code == 2
    assert run_json(cli, "job", "list") == []
