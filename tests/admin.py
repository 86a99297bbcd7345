"""Test helpers that administer the server through the real CLI."""

from __future__ import annotations

import asyncio
import io
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

from ocoserver.cli import main as cli_main
from ocoserver.config import Config
from ocoserver.db import Database
from ocoserver.store import jobs


async def run_cli(config: Config, *args: str) -> tuple[int, str]:
    """Run an ocoserver command in a thread against the server's data directory."""

    def run() -> tuple[int, str]:
        output = io.StringIO()
        with redirect_stdout(output):
            code = cli_main([*args, "--data-dir", str(config.data_dir)])
        return code, output.getvalue()

    return await asyncio.to_thread(run)


async def register(config: Config, hostname: str = "lab-pc-01") -> None:
    code, _ = await run_cli(config, "computer", "add", hostname)
    assert code == 0


def make_package_folder(tmp_path: Path, text: str = "hello from package 1\n") -> Path:
    folder = tmp_path / "package-src"
    folder.mkdir()
    (folder / "hello.txt").write_text(text)
    (folder / "sub").mkdir()
    (folder / "sub" / "data.bin").write_bytes(bytes(range(256)) * 64)
    return folder


async def add_package(config: Config, source: str, name: str = "hello") -> int:
    code, output = await run_cli(
        config, "package", "add", source, "--name", name, "--version", "1.0",
        "--install", "cat hello.txt",
    )
    assert code == 0
    return int(output.strip())


async def deploy(config: Config, packages: list[int], computers: list[str],
                 *extra: str) -> int:
    args = ["deploy", "--name", "rollout"]
    for package_id in packages:
        args += ["--package", str(package_id)]
    for hostname in computers:
        args += ["--computer", hostname]
    code, output = await run_cli(config, *args, *extra)
    assert code == 0
    return int(output.strip())


async def job_rows(database: Database, container_id: int) -> list[dict[str, Any]]:
    return await jobs.list_jobs(database, container_id=container_id)
