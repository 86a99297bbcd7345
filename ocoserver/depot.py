"""The package depot: ZIP payloads on disk, written atomically.

A payload is written under a temporary name in the depot, flushed with
fsync and renamed into place, and its package row is inserted only after
that, so a crash never leaves a half-written file under a name that a
package row points to. The server deletes temporary files of dead uploads
when it starts. Stored file names are chosen by the server; a request never
supplies a path. `resolve` re-checks that a stored name stays inside the
depot before any file is opened.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import logging
import os
import secrets
import shutil
import tempfile
import zipfile
from collections.abc import AsyncIterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import aiofiles

from ocoserver.errors import AdminError, PayloadTooLarge

log = logging.getLogger("ocoserver.depot")

CHUNK_SIZE = 1024 * 1024

# Name prefix of payloads still being written, which are never served.
TEMPORARY_PREFIX = ".upload-"


@dataclass(frozen=True)
class StoredPayload:
    file_name: str
    size: int
    sha256: str
    # st_mtime_ns of the stored file, for the cheap check before downloads.
    mtime_ns: int


def resolve(depot: Path, file_name: str) -> Path:
    """Return the absolute path of a stored payload, inside the depot only."""
    root = depot.resolve()
    path = (root / file_name).resolve()
    if path.parent != root:
        raise ValueError(f"package file {file_name!r} resolves to {path}, outside the depot")
    return path


def store_payload(depot: Path, source: Path) -> StoredPayload:
    """Copy a ZIP file, or zip a folder, into the depot (blocking: run in a thread).

    Raises AdminError when the source is missing or not a ZIP file.
    """
    if not source.exists():
        raise AdminError(f"package source {source} not found; give a ZIP file or a folder")
    depot.mkdir(parents=True, exist_ok=True)
    descriptor, temporary_name = tempfile.mkstemp(prefix=TEMPORARY_PREFIX, dir=depot)
    temporary = Path(temporary_name)
    try:
        # The lock marks the upload as running for `remove_stale_uploads`.
        # The file stays open, and so locked, until it has its final name.
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        with os.fdopen(descriptor, "wb") as target:
            _write_payload(source, target)
            size, sha256 = _measure(temporary)
            file_name = f"{secrets.token_hex(12)}.zip"
            os.replace(temporary, depot / file_name)
            _fsync_directory(depot)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    mtime_ns = (depot / file_name).stat().st_mtime_ns
    return StoredPayload(
        file_name=file_name, size=size, sha256=sha256, mtime_ns=mtime_ns
    )


def _write_payload(source: Path, target: BinaryIO) -> None:
    if source.is_dir():
        _zip_folder(source, target)
    else:
        _copy_zip(source, target)
    target.flush()
    os.fsync(target.fileno())


def remove_stale_uploads(depot: Path) -> int:
    """Delete temporary files of uploads whose process has ended; return the count.

    A `package add` killed while writing leaves its temporary file behind.
    Files whose lock is still held belong to a running upload and are kept.
    """
    removed = 0
    for path in sorted(depot.glob(f"{TEMPORARY_PREFIX}*")):
        if _remove_if_unlocked(path):
            log.info("removed unfinished package upload %s", path)
            removed += 1
    return removed


def _remove_if_unlocked(path: Path) -> bool:
    try:
        descriptor = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    else:
        path.unlink(missing_ok=True)
        return True
    finally:
        os.close(descriptor)


def _copy_zip(source: Path, target: BinaryIO) -> None:
    if not zipfile.is_zipfile(source):
        raise AdminError(
            f"package source {source} is not a ZIP file; give a ZIP file or a folder"
        )
    with source.open("rb") as reader:
        shutil.copyfileobj(reader, target, CHUNK_SIZE)


def _zip_folder(source: Path, target: BinaryIO) -> None:
    entries = _folder_entries(source)
    if not any(path.is_file() for path in entries):
        raise AdminError(f"package folder {source} is empty; add the installer files")
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in entries:
            archive.write(path, path.relative_to(source).as_posix())


def _folder_entries(source: Path) -> list[Path]:
    """List the files and empty folders to zip, checking every symbolic link.

    A link to a file inside the folder is stored as a copy of that file. A
    link that leads outside the folder, to a folder, or nowhere is rejected,
    because it would add files to the package that no administrator chose.
    """
    root = source.resolve()
    entries = []
    for path in sorted(source.rglob("*")):
        if path.is_symlink():
            _check_link(root, path)
        if path.is_file() or (path.is_dir() and not any(path.iterdir())):
            entries.append(path)
    return entries


def _check_link(root: Path, link: Path) -> None:
    target = link.resolve()
    if not target.exists():
        raise AdminError(f"symbolic link {link} in the package folder leads nowhere; remove it")
    if not target.is_relative_to(root):
        raise AdminError(
            f"symbolic link {link} leads outside the package folder to {target}; "
            "copy the file into the folder instead"
        )
    if target.is_dir():
        raise AdminError(
            f"symbolic link {link} leads to a folder; replace it with the folder itself"
        )


def _measure(path: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as reader:
        while chunk := reader.read(CHUNK_SIZE):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def _fsync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def delete_payload(depot: Path, file_name: str) -> None:
    resolve(depot, file_name).unlink(missing_ok=True)


async def receive_payload(
    depot: Path,
    chunks: AsyncIterable[bytes],
    max_size: int,
    limit_setting: str = "client_api.max_upload_size",
) -> StoredPayload:
    """Write a streamed ZIP payload into the depot, hashing it on the way.

    At most about two CHUNK_SIZE buffers are held in memory, whatever the
    payload's size. The file follows the same rule as `store_payload`:
    temporary name, fsync, rename. Raises PayloadTooLarge past `max_size`
    bytes and AdminError when the result is not a ZIP file.
    """
    depot.mkdir(parents=True, exist_ok=True)
    descriptor, temporary_name = tempfile.mkstemp(prefix=TEMPORARY_PREFIX, dir=depot)
    temporary = Path(temporary_name)
    try:
        # As in `store_payload`, the lock marks the upload as running for
        # `remove_stale_uploads` until the file has its final name.
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        size, sha256 = await _write_chunks(temporary, chunks, max_size, limit_setting)
        if not await asyncio.to_thread(zipfile.is_zipfile, temporary):
            raise AdminError("uploaded payload is not a ZIP file; upload a ZIP file")
        file_name = f"{secrets.token_hex(12)}.zip"
        os.replace(temporary, depot / file_name)
        await asyncio.to_thread(_fsync_directory, depot)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    finally:
        os.close(descriptor)
    mtime_ns = (depot / file_name).stat().st_mtime_ns
    return StoredPayload(
        file_name=file_name, size=size, sha256=sha256, mtime_ns=mtime_ns
    )


async def _write_chunks(
    path: Path, chunks: AsyncIterable[bytes], max_size: int, limit_setting: str
) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    pending = bytearray()
    async with aiofiles.open(path, "wb") as target:
        async for chunk in chunks:
            size += len(chunk)
            if size > max_size:
                raise PayloadTooLarge(
                    f"upload exceeds the limit of {max_size} bytes ({limit_setting})"
                )
            digest.update(chunk)
            pending += chunk
            # Network reads return small pieces; writing them in larger
            # blocks saves a thread hand-off per piece.
            if len(pending) >= CHUNK_SIZE:
                await target.write(bytes(pending))
                pending.clear()
        await target.write(bytes(pending))
        await target.flush()
        await asyncio.to_thread(os.fsync, target.fileno())
    return size, digest.hexdigest()
