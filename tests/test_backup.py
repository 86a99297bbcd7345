"""`ocoserver backup` while agents write, and `ocoserver restore`."""

from __future__ import annotations

import asyncio
import stat
import sys
from pathlib import Path

from ocoserver import passwordkey
from ocoserver.config import Config
from tests.admin import add_package, make_package_folder, run_cli
from tests.agent_load import (
    HOSTNAMES,
    Progress,
    connect_agents,
    integrity_check,
    prepare,
    read_markers,
    start_load,
)
from tests.server_process import (
    ROOT,
    ServerProcess,
    free_port,
    process_environment,
    run_cli_process,
)


async def run_backup_process(data_dir: Path, destination: Path) -> tuple[int, str]:
    """Run `ocoserver backup` in its own process without blocking the event loop."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ocoserver", "backup", str(destination), "--with-depot",
        "--data-dir", str(data_dir),
        stdout=asyncio.subprocess.PIPE,
        env=process_environment(),
        cwd=ROOT,
    )
    stdout, _ = await process.communicate()
    assert process.returncode is not None
    return process.returncode, stdout.decode()


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def populate(data_dir: Path, tmp_path: Path) -> int:
    """Set up the load computers, a package with a payload and a password key."""
    await prepare(data_dir)
    package_id = await add_package(
        Config.for_tests(data_dir), str(make_package_folder(tmp_path)), name="payload"
    )
    passwordkey.load_or_create_key(data_dir / "password.key")
    return package_id


async def test_backup_under_load_is_consistent(tmp_path: Path):
    data_dir = tmp_path / "data"
    backup_dir = tmp_path / "backup"
    await populate(data_dir, tmp_path)
    server = ServerProcess(data_dir, tmp_path / "server.log")
    progress = Progress()
    stop = asyncio.Event()
    try:
        server.start()
        async with server.session() as session:
            tasks = start_load(await connect_agents(session), progress, stop)
            await asyncio.sleep(0.5)
            acked_before = progress.total_acked()
            code, output = await run_backup_process(data_dir, backup_dir)
            acked_after = progress.total_acked()
            stop.set()
            await asyncio.wait_for(asyncio.gather(*tasks), timeout=10)
        assert server.terminate() == 0
    finally:
        server.stop()

    assert code == 0
    assert acked_after > acked_before
    assert f"database: {backup_dir / 'ocoserver.sqlite3'}" in output
    assert f"password key: {backup_dir / 'password.key'}" in output
    assert "(1 package files copied" in output
    assert integrity_check(backup_dir / "ocoserver.sqlite3") == "ok"
    markers = read_markers(backup_dir / "ocoserver.sqlite3")
    for hostname in HOSTNAMES:
        assert markers[hostname].serial is not None, hostname
        assert markers[hostname].software == {markers[hostname].serial}, hostname
    assert mode_of(backup_dir / "password.key") == 0o600
    key = (backup_dir / "password.key").read_bytes()
    assert key == (data_dir / "password.key").read_bytes()
    [copied] = list((backup_dir / "depot").iterdir())
    assert copied.read_bytes() == (data_dir / "depot" / copied.name).read_bytes()
    show_code, show_output = await run_cli(
        Config.for_tests(backup_dir), "computer", "show", "load-signed-1"
    )
    assert show_code == 0
    assert "load-signed-1" in show_output


async def test_backup_opens_as_data_dir(tmp_path: Path):
    data_dir = tmp_path / "data"
    backup_dir = tmp_path / "backup"
    await populate(data_dir, tmp_path)

    code, output = await run_cli(
        Config.for_tests(data_dir), "backup", str(backup_dir), "--with-depot"
    )
    backup_config = Config.for_tests(backup_dir)
    show_code, show_output = await run_cli(backup_config, "computer", "show", "load-plain-1")
    list_code, listed = await run_cli(backup_config, "computer", "list")

    assert code == 0
    assert "integrity_check ok" in output
    assert show_code == 0
    assert "load-plain-1" in show_output
    assert list_code == 0
    for hostname in HOSTNAMES:
        assert hostname in listed


async def test_backup_rejects_nonempty_destination(tmp_path: Path, capsys):
    data_dir = tmp_path / "data"
    await populate(data_dir, tmp_path)
    destination = tmp_path / "backup"
    destination.mkdir()
    (destination / "old.txt").write_text("x")

    code, _ = await run_cli(Config.for_tests(data_dir), "backup", str(destination))

    assert code == 2
    assert f"backup destination {destination} is not empty" in capsys.readouterr().err
    assert sorted(p.name for p in destination.iterdir()) == ["old.txt"]


async def test_backup_rejects_file_destination(tmp_path: Path, capsys):
    data_dir = tmp_path / "data"
    await populate(data_dir, tmp_path)
    destination = tmp_path / "backup.txt"
    destination.write_text("x")

    code, _ = await run_cli(Config.for_tests(data_dir), "backup", str(destination))

    assert code == 2
    assert "is not a directory" in capsys.readouterr().err


async def test_backup_without_database_fails(tmp_path: Path, capsys):
    data_dir = tmp_path / "empty"
    destination = tmp_path / "backup"

    code, _ = await run_cli(Config.for_tests(data_dir), "backup", str(destination))

    assert code == 2
    assert f"database {data_dir / 'ocoserver.sqlite3'} not found" in capsys.readouterr().err
    assert not destination.exists()
    assert not (data_dir / "ocoserver.sqlite3").exists()


async def test_backup_rejects_corrupt_database(tmp_path: Path, capsys):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "ocoserver.sqlite3").write_bytes(b"not a database " * 100)

    code, _ = await run_cli(
        Config.for_tests(data_dir), "backup", str(tmp_path / "backup")
    )

    assert code == 2
    assert "failed: file is not a database" in capsys.readouterr().err


async def test_backup_warns_missing_package_file(tmp_path: Path, capsys):
    data_dir = tmp_path / "data"
    package_id = await populate(data_dir, tmp_path)
    [payload] = list((data_dir / "depot").iterdir())
    payload.unlink()

    code, output = await run_cli(
        Config.for_tests(data_dir), "backup", str(tmp_path / "backup"), "--with-depot"
    )

    assert code == 1
    assert "(0 package files copied" in output
    assert f"warning: package {package_id}: file {payload} is missing" in (
        capsys.readouterr().err
    )


async def make_backup(tmp_path: Path) -> Path:
    data_dir = tmp_path / "data"
    backup_dir = tmp_path / "backup"
    await populate(data_dir, tmp_path)
    code, _ = await run_cli(
        Config.for_tests(data_dir), "backup", str(backup_dir), "--with-depot"
    )
    assert code == 0
    return backup_dir


async def test_restore_into_new_data_dir(tmp_path: Path):
    backup_dir = await make_backup(tmp_path)
    target = Config.for_tests(tmp_path / "restored")

    code, output = await run_cli(target, "restore", str(backup_dir))
    list_code, listed = await run_cli(target, "computer", "list")
    package_code, packages = await run_cli(target, "package", "list")

    assert code == 0
    assert "integrity_check ok" in output
    assert list_code == 0
    for hostname in HOSTNAMES:
        assert hostname in listed
    assert package_code == 0
    assert "payload" in packages
    assert mode_of(target.password_key_path) == 0o600
    key = target.password_key_path.read_bytes()
    assert key == (backup_dir / "password.key").read_bytes()
    [restored] = list(target.depot_path.iterdir())
    assert restored.read_bytes() == (backup_dir / "depot" / restored.name).read_bytes()


async def test_restore_rejects_existing_database(tmp_path: Path, capsys):
    backup_dir = await make_backup(tmp_path)
    data_config = Config.for_tests(tmp_path / "data")
    before = data_config.database_path.read_bytes()

    code, _ = await run_cli(data_config, "restore", str(backup_dir))

    assert code == 2
    assert "give --replace" in capsys.readouterr().err
    assert data_config.database_path.read_bytes() == before


async def test_restore_rejects_own_data_dir(tmp_path: Path, capsys):
    await make_backup(tmp_path)
    data_config = Config.for_tests(tmp_path / "data")
    before = data_config.database_path.read_bytes()

    code, _ = await run_cli(
        data_config, "restore", str(data_config.data_dir), "--replace"
    )

    assert code == 2
    assert "is the data directory itself" in capsys.readouterr().err
    assert data_config.database_path.read_bytes() == before
    assert list(data_config.data_dir.glob("replaced-*")) == []


async def test_restore_replace_moves_files_aside(tmp_path: Path):
    backup_dir = await make_backup(tmp_path)
    data_config = Config.for_tests(tmp_path / "data")
    key_before = data_config.password_key_path.read_bytes()

    code, output = await run_cli(data_config, "restore", str(backup_dir), "--replace")
    list_code, listed = await run_cli(data_config, "computer", "list")

    assert code == 0
    [aside] = list(data_config.data_dir.glob("replaced-*"))
    assert f"moved current files to {aside}" in output
    assert (aside / "ocoserver.sqlite3").is_file()
    assert (aside / "password.key").read_bytes() == key_before
    assert list_code == 0
    assert "load-signed-3" in listed


async def test_running_server_locks_data_dir(tmp_path: Path, capsys):
    backup_dir = await make_backup(tmp_path)
    data_dir = tmp_path / "data"
    server = ServerProcess(data_dir, tmp_path / "server.log")
    try:
        server.start()
        restore_code, _ = await run_cli(
            Config.for_tests(data_dir), "restore", str(backup_dir), "--replace"
        )
        second = await asyncio.to_thread(
            run_cli_process, data_dir, "serve", "--port", str(free_port())
        )
        assert server.terminate() == 0
    finally:
        server.stop()

    in_use = f"data directory {data_dir} is in use by ocoserver server pid"
    assert restore_code == 2
    assert in_use in capsys.readouterr().err
    assert list(data_dir.glob("replaced-*")) == []
    assert second.returncode == 2
    assert in_use in second.stderr
