"""Command-line arguments and data directories the CLI rejects in one line.

Arguments that are not UTF-8 and a data directory that is a file are
rejected before any command runs, so no database is created or opened.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ocoserver.cli import main
from tests.server_process import process_environment


def undecodable(raw: bytes) -> str:
    """Return `raw` as Python decodes a command-line argument that is not UTF-8."""
    return os.fsdecode(raw)


def run(capsys: pytest.CaptureFixture[str], *arguments: str) -> tuple[int, str, str]:
    code = main(list(arguments))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_process_rejects_undecodable_argument(tmp_path):
    data_dir = tmp_path / "data"

    result = subprocess.run(
        [sys.executable, "-m", "ocoserver", "computer", "add", b"\xff\xfe",
         "--data-dir", str(data_dir)],
        capture_output=True, env=process_environment(), timeout=60,
    )  # fmt: skip

    assert result.returncode == 2
    assert result.stdout == b""
    assert result.stderr == (
        b"ocoserver: error: argument 3 '\\xff\\xfe' is not valid UTF-8: "
        b"pass names, paths and other text as UTF-8\n"
    )
    assert not data_dir.exists()


UNDECODABLE = {
    "computer-add": (["computer", "add", undecodable(b"\xff\xfe")], "argument 3"),
    "computer-show": (["computer", "show", undecodable(b"\xff")], "argument 3 '\\xff'"),
    "mixed-text": (["computer", "add", undecodable(b"pc\xe9")], "argument 3 'pc\\xe9'"),
    "option-value": (
        ["job", "list", "--computer", undecodable(b"\xff")],
        "argument 4 (after --computer)",
    ),
    "setting-value": (
        ["setting", "set", "agent-registration-key", undecodable(b"key\xff\xff")],
        "argument 4",
    ),
    "serve-host": (["--host", undecodable(b"\xff")], "argument 2 (after --host)"),
}


@pytest.mark.parametrize("arguments, named", UNDECODABLE.values(), ids=UNDECODABLE)
def test_undecodable_argument_one_line(capsys, tmp_path, arguments, named):
    data_dir = tmp_path / "data"

    code, out, err = run(capsys, *arguments, "--data-dir", str(data_dir))

    assert code == 2
    assert out == ""
    assert len(err.splitlines()) == 1
    assert err.startswith(f"ocoserver: error: {named}")
    assert "is not valid UTF-8" in err
    assert not data_dir.exists()


def test_undecodable_data_dir_named(capsys, tmp_path):
    data_dir = str(tmp_path) + undecodable(b"/d\xff")

    code, _, err = run(capsys, "computer", "list", "--data-dir", data_dir)

    assert code == 2
    assert f"argument 4 (after --data-dir) '{tmp_path}/d\\xff'" in err


@pytest.fixture
def plain_file(tmp_path: Path) -> Path:
    path = tmp_path / "p.zip"
    path.write_bytes(b"PK")
    return path


def test_file_as_data_dir_one_line(capsys, plain_file):
    code, out, err = run(capsys, "computer", "list", "--data-dir", str(plain_file))

    assert code == 2
    assert out == ""
    assert err == (
        f"ocoserver: error: data directory {plain_file} is not a directory: "
        "pass a directory with --data-dir or server.data_dir\n"
    )


def test_data_dir_under_file_one_line(capsys, plain_file):
    data_dir = plain_file / "sub"

    code, _, err = run(capsys, "computer", "add", "pc1", "--data-dir", str(data_dir))

    assert code == 2
    assert err == (
        f"ocoserver: error: {plain_file} is not a directory, so data directory "
        f"{data_dir} cannot be created: pass a directory with --data-dir or "
        "server.data_dir\n"
    )


def test_serve_rejects_file_data_dir(capsys, plain_file):
    code, _, err = run(capsys, "--port", "0", "--data-dir", str(plain_file))

    assert code == 2
    assert "is not a directory" in err
    assert plain_file.read_bytes() == b"PK"


def test_empty_registration_key_explained(capsys, tmp_path):
    data_dir = str(tmp_path / "data")

    code, out, _ = run(
        capsys, "setting", "set", "agent-registration-key", "", "--data-dir", data_dir
    )

    assert code == 0
    assert out == (
        "agent-registration-key = (empty): unknown computers cannot register "
        "themselves until a key is set\n"
    )


def test_secret_registration_key_hidden(capsys, tmp_path):
    data_dir = str(tmp_path / "data")

    code, out, _ = run(
        capsys, "setting", "set", "agent-registration-key", "secret-key-123",
        "--data-dir", data_dir,
    )  # fmt: skip

    assert code == 0
    assert out == "agent-registration-key = (hidden)\n"


def test_empty_data_dir_rejected(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    code, _, err = run(capsys, "computer", "list", "--data-dir", "")

    assert code == 2
    assert "data directory is empty" in err
    assert list(tmp_path.iterdir()) == []


def test_non_utf8_data_dir_variable_rejected(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("OCOSERVER_DATA_DIR", f"{tmp_path}/d\udcff")

    code, _, err = run(capsys, "computer", "list")

    assert code == 2
    assert f"data directory {tmp_path}/d\\udcff is not valid UTF-8" in err
    assert list(tmp_path.iterdir()) == []
