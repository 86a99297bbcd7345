"""Online backup and restore of a data directory: database, password key, depot.

The database is copied with SQLite's online backup API from a connection
of its own, while the server keeps writing. That connection keeps one read
transaction open for the whole copy, so every step copies pages of the same
snapshot. Without it, SQLite restarts a step-wise backup whenever another
connection commits, and a busy server would keep restarting it. In WAL mode
readers do not block the writer (SQLite documentation, "Write-Ahead
Logging"). The price is that the WAL cannot be checkpointed past the
snapshot until the copy ends, so it grows meanwhile.

A backup directory has the layout of a data directory (`ocoserver.sqlite3`,
`password.key`, `depot/`), so the administration commands accept it as
`--data-dir` as it is. These functions block, so callers run them in a
thread.
"""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ocoserver import datalock, passwordkey, timefmt
from ocoserver.config import Config
from ocoserver.db import BUSY_TIMEOUT_MS
from ocoserver.errors import AdminError

log = logging.getLogger("ocoserver.backup")

DATABASE_NAME = "ocoserver.sqlite3"
PASSWORD_KEY_NAME = "password.key"
DEPOT_NAME = "depot"

# Pages copied per backup step: 4 MiB at SQLite's default page size of 4096.
PAGES_PER_STEP = 1024
# Seconds of pause after each step, so the copy leaves disk time to the server.
STEP_PAUSE = 0.005

Report = Callable[[str], None]


@dataclass(frozen=True)
class DatabaseCopy:
    pages: int
    size: int


def create_backup(config: Config, destination: Path, with_depot: bool,
                  report: Report) -> list[str]:
    """Write a backup of the data directory to `destination`; return warnings.

    `report` receives one line per file or folder written. Raises
    AdminError when the destination is not a new or empty directory or the
    database does not exist.
    """
    source_database = config.database_path
    if not source_database.is_file():
        raise AdminError(
            f"database {source_database} not found; give the server's --data-dir "
            "or --config"
        )
    _prepare_destination(destination)

    target_database = destination / DATABASE_NAME
    copy = copy_database(source_database, target_database)
    report(f"database: {target_database} ({copy.pages} pages, {copy.size} bytes, "
           "integrity_check ok)")
    _copy_password_key(config.password_key_path, destination / PASSWORD_KEY_NAME,
                       report)

    warnings: list[str] = []
    if with_depot:
        warnings = copy_depot(target_database, config.depot_path,
                              destination / DEPOT_NAME, report)
    log.info("backup of %s written to %s", config.data_dir, destination)
    return warnings


def _prepare_destination(destination: Path) -> None:
    if destination.exists() and not destination.is_dir():
        raise AdminError(
            f"backup destination {destination} is not a directory; give a new "
            "or empty directory"
        )
    if destination.is_dir() and any(destination.iterdir()):
        raise AdminError(
            f"backup destination {destination} is not empty; give a new or "
            "empty directory"
        )
    destination.mkdir(mode=0o700, parents=True, exist_ok=True)


def copy_database(source: Path, target: Path) -> DatabaseCopy:
    """Copy a consistent snapshot of `source` into the new file `target`.

    Raises AdminError when `target` exists, when SQLite reports an error
    (such as a source that is not a database) or when the copy fails
    integrity_check.
    """
    _create_private_file(target)
    try:
        result, pages, page_size = _run_backup(source, target)
    except sqlite3.Error as error:
        raise AdminError(
            f"copying database {source} to {target} failed: {error}"
        ) from None
    if result != "ok":
        raise AdminError(
            f"the copy {target} failed integrity_check ({result}); check the "
            f"source database {source} with 'sqlite3 {source} \"PRAGMA "
            "integrity_check\"'"
        )
    return DatabaseCopy(pages=pages, size=pages * page_size)


def _run_backup(source: Path, target: Path) -> tuple[str, int, int]:
    """Run the backup API; return integrity_check's result, page count and size."""
    reader = sqlite3.connect(source, isolation_level=None)
    writer = sqlite3.connect(target, isolation_level=None)
    try:
        reader.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        reader.execute("PRAGMA query_only = ON")
        # The read transaction starts at the first read and pins the snapshot.
        reader.execute("BEGIN")
        reader.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
        reader.backup(writer, pages=PAGES_PER_STEP, progress=_pause)
        reader.execute("COMMIT")
        # The copy is one self-contained file; the server turns WAL on again
        # when it opens it.
        writer.execute("PRAGMA journal_mode = DELETE").fetchone()
        result = writer.execute("PRAGMA integrity_check").fetchone()[0]
        pages = writer.execute("PRAGMA page_count").fetchone()[0]
        page_size = writer.execute("PRAGMA page_size").fetchone()[0]
    finally:
        writer.close()
        reader.close()
    return str(result), int(pages), int(page_size)


def _pause(status: int, remaining: int, total: int) -> None:
    time.sleep(STEP_PAUSE)


def _create_private_file(path: Path) -> None:
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise AdminError(
            f"{path} already exists; move it away or give another destination"
        ) from None
    os.close(descriptor)


def _copy_password_key(source: Path, target: Path, report: Report) -> None:
    if not source.exists():
        report(f"password key: {source} not found, not copied (the server "
               "creates it when it stores the first password)")
        return
    try:
        passwordkey.load_key(source)
    except passwordkey.PasswordKeyError as error:
        raise AdminError(str(error)) from None
    _write_private_file(target, source.read_bytes())
    report(f"password key: {target}")


def _write_private_file(path: Path, content: bytes) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(content)
        file.flush()
        os.fsync(file.fileno())


def copy_depot(database: Path, source: Path, target: Path, report: Report) -> list[str]:
    """Copy the package files that `database` refers to; return warnings.

    A file that already exists in `target` with the expected size is kept:
    stored payloads never change after they get their name.
    """
    target.mkdir(mode=0o700, exist_ok=True)
    warnings = []
    copied = 0
    copied_bytes = 0
    present = 0
    for package_id, file_name, size in _package_files(database):
        source_file = source / file_name
        target_file = target / file_name
        if _has_size(target_file, size):
            present += 1
            continue
        if not _has_size(source_file, size):
            warnings.append(
                f"package {package_id}: file {source_file} is missing or not "
                f"{size} bytes, not copied"
            )
            continue
        _copy_file(source_file, target_file)
        copied += 1
        copied_bytes += size
    _fsync_directory(target)
    report(f"depot: {target} ({copied} package files copied, {copied_bytes} bytes; "
           f"{present} already present)")
    return warnings


def _package_files(database: Path) -> list[tuple[int, str, int]]:
    connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        return connection.execute(
            "SELECT id, file_name, size FROM package WHERE file_name IS NOT NULL "
            "ORDER BY id"
        ).fetchall()
    finally:
        connection.close()


def _has_size(path: Path, size: int) -> bool:
    try:
        return path.stat().st_size == size
    except FileNotFoundError:
        return False


def _copy_file(source: Path, target: Path) -> None:
    with source.open("rb") as reader, target.open("xb") as writer:
        shutil.copyfileobj(reader, writer, 1024 * 1024)
        writer.flush()
        os.fsync(writer.fileno())


def _fsync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def restore_backup(config: Config, source: Path, replace: bool,
                   report: Report) -> list[str]:
    """Copy a backup into the data directory; return warnings.

    Raises DataDirInUse while a server runs on the data directory, and
    AdminError when `source` is no backup or the data directory already
    has a database and `replace` is false.
    """
    source_database = source / DATABASE_NAME
    if not source_database.is_file():
        raise AdminError(
            f"{source} contains no {DATABASE_NAME}; give a directory written by "
            "'ocoserver backup'"
        )
    # Restoring the data directory onto itself would move its database aside
    # and then copy from the moved-away path, which no longer exists.
    target = config.data_dir.resolve()
    if source.resolve() == target or source_database.resolve() == (
        config.database_path.resolve()
    ):
        raise AdminError(
            f"{source} is the data directory itself; give a directory written by "
            "'ocoserver backup'"
        )
    with datalock.hold(config.data_dir, "ocoserver restore"):
        _move_current_files(config, replace, report)
        config.database_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        copy = copy_database(source_database, config.database_path)
        report(f"database: {config.database_path} ({copy.pages} pages, "
               f"{copy.size} bytes, integrity_check ok)")
        _copy_password_key(source / PASSWORD_KEY_NAME, config.password_key_path,
                           report)
        warnings = _restore_depot(config, source / DEPOT_NAME, report)
    log.info("restored %s from backup %s", config.data_dir, source)
    return warnings


def _current_files(config: Config) -> list[Path]:
    database = config.database_path
    candidates = [
        database,
        database.with_name(database.name + "-wal"),
        database.with_name(database.name + "-shm"),
        config.password_key_path,
    ]
    return [path for path in candidates if path.exists()]


def _move_current_files(config: Config, replace: bool, report: Report) -> None:
    """Move the current database (with its WAL) and password key aside.

    A WAL file left next to a restored database would be replayed into it,
    so the database's -wal and -shm files move too.
    """
    current = _current_files(config)
    if not current:
        return
    if not replace:
        raise AdminError(
            f"data directory {config.data_dir} already contains {current[0]}; give "
            "--replace to move the current files aside, or restore into a new "
            "--data-dir"
        )
    stamp = timefmt.now_text().replace(" ", "T").replace(":", "")
    aside = config.data_dir / f"replaced-{stamp}"
    aside.mkdir(mode=0o700)
    for path in current:
        shutil.move(path, aside / path.name)
    report(f"moved current files to {aside}: {', '.join(p.name for p in current)}")


def _restore_depot(config: Config, source: Path, report: Report) -> list[str]:
    """Copy the backup's package files, then check that every package has its file.

    Without a depot in the backup, the data directory's depot stays as it is.
    """
    config.depot_path.mkdir(parents=True, exist_ok=True)
    if source.is_dir():
        copy_depot(config.database_path, source, config.depot_path, report)
    else:
        report(f"depot: the backup has none, kept {config.depot_path}")
    return [
        f"package {package_id}: file {config.depot_path / file_name} is missing or "
        f"not {size} bytes; restore it or remove the package"
        for package_id, file_name, size in _package_files(config.database_path)
        if not _has_size(config.depot_path / file_name, size)
    ]
