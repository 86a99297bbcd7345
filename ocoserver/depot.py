"""The package depot: ZIP payloads on disk, written atomically.

A payload is written under a temporary name in the depot, flushed with
fsync and renamed into place, so a crash never leaves a half-written file
under a name that a package row points to. Stored file names are chosen by
the server; a request never supplies a path. `resolve` re-checks that a
stored name stays inside the depot before any file is opened.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from ocoserver.errors import AdminError

CHUNK_SIZE = 1024 * 1024


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
        raise ValueError(f"package file name {file_name!r} leaves the depot")
    return path


def store_payload(depot: Path, source: Path) -> StoredPayload:
    """Copy a ZIP file, or zip a folder, into the depot (blocking: run in a thread).

    Raises AdminError when the source is missing or not a ZIP file.
    """
    if not source.exists():
        raise AdminError(f"package source {source} not found; give a ZIP file or a folder")
    depot.mkdir(parents=True, exist_ok=True)
    descriptor, temporary_name = tempfile.mkstemp(prefix=".upload-", dir=depot)
    temporary = Path(temporary_name)
    try:
        with os.fdopen(descriptor, "wb") as target:
            if source.is_dir():
                _zip_folder(source, target)
            else:
                _copy_zip(source, target)
            target.flush()
            os.fsync(target.fileno())
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


def _copy_zip(source: Path, target: object) -> None:
    if not zipfile.is_zipfile(source):
        raise AdminError(
            f"package source {source} is not a ZIP file; give a ZIP file or a folder"
        )
    with source.open("rb") as reader:
        shutil.copyfileobj(reader, target, CHUNK_SIZE)  # type: ignore[misc]


def _zip_folder(source: Path, target: object) -> None:
    files = sorted(p for p in source.rglob("*") if p.is_file())
    if not files:
        raise AdminError(f"package folder {source} is empty; add the installer files")
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:  # type: ignore[arg-type]
        for path in files:
            archive.write(path, path.relative_to(source).as_posix())


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
