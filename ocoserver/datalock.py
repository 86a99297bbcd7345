"""The data directory lock: one server or restore at a time per data directory.

The server holds an exclusive `flock` on `<data_dir>/ocoserver.lock` while
it runs, and `ocoserver restore` holds it while it replaces files. The
kernel releases the lock when the process ends, also after a crash or
SIGKILL, so a stale lock file never blocks a restart. The file contains
the holder's purpose and process id, for the error message of the
process that finds the lock taken.
"""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger("ocoserver.datalock")

LOCK_FILE_NAME = "ocoserver.lock"


class DataDirInUse(RuntimeError):
    """Another process holds the lock on the data directory."""


def lock_path(data_dir: Path) -> Path:
    return data_dir / LOCK_FILE_NAME


@contextmanager
def hold(data_dir: Path, purpose: str) -> Iterator[None]:
    """Hold the data directory lock for a block, or raise DataDirInUse.

    `purpose` names the holder in the lock file, such as "ocoserver server".
    """
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = lock_path(data_dir)
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        _lock(descriptor, path, data_dir)
        os.ftruncate(descriptor, 0)
        os.write(descriptor, f"{purpose} pid {os.getpid()}\n".encode())
        log.debug("locked data directory %s for %s", data_dir, purpose)
        yield
    finally:
        # Closing the descriptor releases the lock. The file stays: removing
        # it could let two processes lock two different files of one name.
        os.close(descriptor)


def _lock(descriptor: int, path: Path, data_dir: Path) -> None:
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(descriptor, 200, 0).decode("utf-8", "replace").strip()
        raise DataDirInUse(
            f"data directory {data_dir} is in use by {holder or 'another process'} "
            f"(lock file {path}); stop that process first"
        ) from None

