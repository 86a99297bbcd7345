"""Group, deployment rule, job container and package family commands.

Like tests/test_cli.py, these run `cli.main` in-process against a fresh data
directory and check the database through the store functions.
"""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import Callable
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import pytest

from ocoserver import compatibility
from ocoserver.cli import main
from ocoserver.store import jobs
from tests.test_cli import Result, report_job, run_id, run_json


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], data_dir: Path) -> Callable[..., Result]:
    def run(*args: str) -> Result:
        code = main([*args, "--data-dir", str(data_dir)])
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


def add_version(cli: Callable[..., Result], name: str, version: str = "1.0") -> int:
    return run_id(
        cli, "package", "add", "-", "--name", name, "--version", version,
        "--install", f"install-{name}-{version}",
    )  # fmt: skip


def ok(cli: Callable[..., Result], *args: str) -> str:
    result = cli(*args)
    assert result.code == 0, result.err
    return result.out


@pytest.fixture(scope="module")
def tree_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build the `tree` data directory once through the CLI; tests copy it."""
    data_dir = tmp_path_factory.mktemp("tree") / "data"

    def cli(*args: str) -> Result:
        output = io.StringIO()
        with redirect_stdout(output):
            code = main([*args, "--data-dir", str(data_dir)])
        return Result(code, output.getvalue(), "")

    _build_tree(cli)
    return data_dir


@pytest.fixture
def tree(cli, data_dir, tree_template, capsys):
    """Computer groups all > lab > bench, package groups base > extra."""
    shutil.copytree(tree_template, data_dir)
    capsys.readouterr()
    return cli


def _build_tree(cli: Callable[..., Result]) -> None:
    for hostname in ("pc1", "pc2", "pc3"):
        run_id(cli, "computer", "add", hostname)
    for name in ("a", "b", "c"):
        add_version(cli, name)
    run_id(cli, "computer-group", "add", "all")
    run_id(cli, "computer-group", "add", "lab", "--parent", "all")
    run_id(cli, "computer-group", "add", "bench", "--parent", "lab")
    ok(cli, "computer-group", "add-member", "all", "pc1")
    ok(cli, "computer-group", "add-member", "bench", "pc3")
    run_id(cli, "package-group", "add", "base")
    run_id(cli, "package-group", "add", "extra", "--parent", "base")
    ok(cli, "package-group", "add-member", "base", "3")
    ok(cli, "package-group", "add-member", "base", "1")
    ok(cli, "package-group", "add-member", "extra", "2")
    ok(cli, "package-group", "add-member", "extra", "3")


def container_jobs(
    cli: Callable[..., Result], container_id: int
) -> list[dict[str, Any]]:
    return run_json(cli, "job", "list", "--container", str(container_id))


def test_group_show_includes_subgroups(tree):
    group = run_json(tree, "computer-group", "show", "all")

    assert group["name"] == "all"
    assert [member["hostname"] for member in group["members"]] == ["pc1", "pc3"]


def test_package_group_order_documented(tree):
    group = run_json(tree, "package-group", "show", "base")

    # Own packages by position (3, then 1), then subgroup extra (2; 3 again).
    assert [member["id"] for member in group["members"]] == [3, 1, 2]


def test_deploy_groups_expand_and_dedupe(tree):
    container_id = run_id(
        tree, "deploy", "--name", "r", "--package", "2", "--package-group", "base",
        "--computer", "pc3", "--computer-group", "lab",
    )  # fmt: skip

    rows = container_jobs(tree, container_id)
    assert [(row["computer"], row["package_id"]) for row in rows] == [
        ("pc3", 2), ("pc3", 3), ("pc3", 1),
    ]  # fmt: skip


def test_group_move_rejects_cycle(tree):
    result = tree("computer-group", "move", "all", "--parent", "bench")

    assert result.code == 2
    assert "'bench'" in result.err
    assert "cycle" in result.err
    parents = {
        row["name"]: row["parent"] for row in run_json(tree, "computer-group", "list")
    }
    assert parents == {"all": None, "lab": "all", "bench": "lab"}


def test_group_move_to_itself(tree):
    result = tree("package-group", "move", "extra", "--parent", "extra")

    assert result.code == 2
    assert "own parent" in result.err


def test_group_move_to_top(tree):
    ok(tree, "computer-group", "move", "bench", "--top")

    group = run_json(tree, "computer-group", "show", "all")
    assert [member["hostname"] for member in group["members"]] == ["pc1"]


def test_group_remove_with_subgroups(tree):
    result = tree("computer-group", "remove", "lab")

    assert result.code == 2
    assert "'bench'" in result.err
    ok(tree, "computer-group", "remove", "bench")
    assert len(run_json(tree, "computer-group", "list")) == 2


def test_group_remove_used_by_rule(tree):
    ok(
        tree, "deployment-rule", "add", "--name", "r", "--computer-group", "bench",
        "--package-group", "extra",
    )  # fmt: skip

    result = tree("package-group", "remove", "extra")

    assert result.code == 2
    assert "deployment rule 'r'" in result.err


def test_rule_jobs_follow_membership(tree, data_dir):
    rule_id = run_id(
        tree, "deployment-rule", "add", "--name", "r", "--computer-group", "lab",
        "--package-group", "extra", "--priority", "5",
    )  # fmt: skip
    before = run_json(tree, "deployment-rule", "show", str(rule_id))

    ok(tree, "computer-group", "add-member", "lab", "pc2")

    after = run_json(tree, "deployment-rule", "show", "r")
    assert [(job["computer"], job["package_id"]) for job in before["jobs"]] == [
        ("pc3", 2), ("pc3", 3),
    ]  # fmt: skip
    assert [(job["computer"], job["package_id"]) for job in after["jobs"]] == [
        ("pc2", 2), ("pc2", 3), ("pc3", 2), ("pc3", 3),
    ]  # fmt: skip
    assert after["jobs"][0]["agent_job_id"] == "dynamic-3"
    assert after["priority"] == 5


def test_rule_list_and_remove(tree):
    ok(
        tree, "deployment-rule", "add", "--name", "r", "--computer-group", "lab",
        "--package-group", "base",
    )  # fmt: skip
    [rule] = run_json(tree, "deployment-rule", "list")
    assert rule["id"] == 1
    assert rule["jobs"] == 3

    ok(tree, "deployment-rule", "remove", "r")

    assert run_json(tree, "deployment-rule", "list") == []


def test_package_families_and_filter(cli):
    add_version(cli, "Fx", "2.0")
    add_version(cli, "Fx", "1.0")
    add_version(cli, "Zip", "9")

    families = run_json(cli, "package", "families")
    listed = run_json(cli, "package", "list", "--family", "fx")

    assert families == [
        {"name": "Fx", "versions": ["1.0", "2.0"], "package_ids": [2, 1]},
        {"name": "Zip", "versions": ["9"], "package_ids": [3]},
    ]
    assert [row["id"] for row in listed] == [2, 1]


def test_package_add_compatibility(cli):
    package_id = run_id(
        cli, "package", "add", "-", "--name", "x", "--version", "1", "--install", "i",
        "--compatible-os", "Windows, linux", "--compatible-arch", "X86_64",
    )  # fmt: skip

    package = run_json(cli, "package", "show", str(package_id))
    assert package["compatible_os"] == "windows,linux"
    assert package["compatible_arch"] == "x86_64"


def test_job_container_commands(tree, data_dir):
    container_id = run_id(
        tree, "deploy", "--name", "r", "--package", "1", "--computer", "pc1",
        "--computer", "pc2",
    )  # fmt: skip
    [first, second] = container_jobs(tree, container_id)
    report_job(data_dir, "pc1", jobs.StateReport(first["id"], 3, 1, "boom", None))

    [listed] = run_json(tree, "job-container", "list")
    assert listed["id"] == container_id
    assert listed["failed"] == 1
    assert listed["waiting"] == 1

    ok(tree, "job-container", "disable", str(container_id))
    container = run_json(tree, "job-container", "show", str(container_id))
    assert container["enabled"] == 0
    assert [job["id"] for job in container["jobs"]] == [first["id"], second["id"]]

    ok(tree, "job-container", "enable", str(container_id))
    assert run_json(tree, "job-container", "show", str(container_id))["enabled"] == 1

    assert ok(tree, "job-container", "renew-failed", str(container_id)) == (
        "renewed 1 failed jobs\n"
    )
    renewed = run_json(tree, "job", "show", str(first["id"]))
    assert renewed["state"] == jobs.WAITING
    assert renewed["return_code"] is None
    assert renewed["message"] == ""

    ok(tree, "job-container", "remove", str(container_id))
    assert run_json(tree, "job-container", "list") == []
    assert run_json(tree, "job", "list") == []


def test_job_list_state_filter(tree, data_dir):
    container_id = run_id(
        tree, "deploy", "--name", "r", "--package", "1", "--computer", "pc1",
        "--computer", "pc2",
    )  # fmt: skip
    [first, _] = container_jobs(tree, container_id)
    report_job(data_dir, "pc1", jobs.StateReport(first["id"], 3, 1, "boom", None))

    by_name = run_json(tree, "job", "list", "--state", "failed")
    by_number = run_json(tree, "job", "list", "--state", "-1")
    waiting = run_json(tree, "job", "list", "--state", "WAITING")

    assert [job["id"] for job in by_name] == [first["id"]]
    assert [job["id"] for job in by_number] == [first["id"]]
    assert [job["computer"] for job in waiting] == ["pc2"]


def test_uninstall_rejects_no_procedure(tree):
    result = tree("uninstall", "--package", "1", "--computer", "pc1")

    assert result.code == 2
    assert "no uninstall procedure" in result.err
    assert "--uninstall CMD" in result.err
    assert run_json(tree, "job-container", "list") == []


def test_uninstall_first_without_procedure(tree, data_dir):
    container_id = run_id(
        tree, "deploy", "--name", "r", "--package", "1", "--computer", "pc1"
    )
    [job] = container_jobs(tree, container_id)
    report_job(data_dir, "pc1", jobs.StateReport(job["id"], 3, 0, "", None))
    add_version(tree, "a", "2.0")

    result = tree(
        "deploy", "--name", "up", "--package", "4", "--computer", "pc1",
        "--upgrade", "uninstall-first",
    )  # fmt: skip

    assert result.code == 2
    assert "a 1.0 (id 1)" in result.err
    assert "--upgrade replace" in result.err


GROUP_HELP = [
    [kind, sub]
    for kind in ("computer-group", "package-group")
    for sub in ("add", "list", "show", "add-member", "remove-member", "move", "remove")
] + [
    ["deployment-rule", sub] for sub in ("add", "list", "show", "enable", "disable",
                                         "remove")
] + [
    ["job-container", sub] for sub in ("list", "show", "enable", "disable", "remove",
                                       "renew-failed")
] + [["uninstall"], ["package", "families"]]  # fmt: skip


@pytest.mark.parametrize("command", GROUP_HELP, ids=" ".join)
def test_help_new_commands(capsys, command):
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--help"])

    assert exit_info.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: ocoserver {' '.join(command)}")


DEPLOY = ["deploy", "--name", "r", "--computer", "pc1"]

# (arguments, text that the error line must contain)
INVALID_INPUT = [
    ([*DEPLOY, "--package-group", "ghost"], "'ghost'"),
    (["deploy", "--name", "r", "--package", "1", "--computer-group", "nobody"],
     "'nobody'"),
    (["deploy", "--name", "r", "--package", "1"], "--computer"),
    ([*DEPLOY], "--package"),
    ([*DEPLOY, "--package", "1", "--upgrade", "sideways"], "'sideways'"),
    (["job", "list", "--state", "broken"], "'broken'"),
    (["job", "list", "--state", "7"], "'7'"),
    (["computer-group", "add", "123"], "'123'"),
    (["computer-group", "add", "all"], "'all'"),
    (["computer-group", "add", "x", "--parent", "99"], "'99'"),
    (["computer-group", "add-member", "all", "ghost"], "'ghost'"),
    (["computer-group", "add-member", "all", "pc1"], "'pc1'"),
    (["computer-group", "remove-member", "all", "pc3"], "'pc3'"),
    (["package-group", "add-member", "base", "77"], "'77'"),
    (["package-group", "show", "nothing"], "'nothing'"),
    (["deployment-rule", "add", "--name", "r", "--computer-group", "all",
      "--package-group", "none"], "'none'"),
    (["deployment-rule", "remove", "9"], "'9'"),
    (["job-container", "show", "5"], "5"),
    (["job-container", "renew-failed", "x"], "'x'"),
    (["package", "add", "-", "--name", "x", "--version", "1", "--install", "i",
      "--compatible-os", "win;dows"], "'win;dows'"),
    (["package", "add", "-", "--name", "x", "--version", "1", "--install", "i",
      "--uninstall-post-action", "restart"], "--uninstall"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("arguments", "named"), INVALID_INPUT, ids=[" ".join(a) for a, _ in INVALID_INPUT]
)
def test_invalid_input_one_line(tree, arguments, named):
    result = tree(*arguments)

    assert result.code == 2
    assert result.out == ""
    lines = result.err.splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith("ocoserver: error: ")
    assert named in lines[0]


OS_CASES = [
    ("windows", "Microsoft Windows 11 Pro", True),
    ("windows", "Debian GNU/Linux", False),
    ("linux", "Ubuntu", True),
    ("linux", "macOS", False),
    ("macos", "macOS", True),
    ("debian", "Debian GNU/Linux", True),
    ("", "anything", True),
    ("windows", "", True),
]  # fmt: skip


@pytest.mark.parametrize(("listed", "os_value", "expected"), OS_CASES)
def test_os_matching_rule(listed, os_value, expected):
    assert compatibility.os_matches(listed, os_value) is expected


def test_arch_aliases_match():
    assert compatibility.arch_matches("x86_64", "AMD64") is True
    assert compatibility.arch_matches("arm64", "aarch64") is True
    assert compatibility.arch_matches("x86", "i686") is True
    assert compatibility.arch_matches("x86", "x86_64") is False


def test_group_list_json_objects(tree):
    rows = run_json(tree, "package-group", "list")

    assert json.dumps([row["id"] for row in rows]) == "[1, 2]"
