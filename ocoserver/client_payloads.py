"""Package payloads sent inside an `oco.package.create` request as base64.

`file` is a ZIP file, or any other file when `file_name` names it; `files`
is a list of `{"name", "content"}` objects. Non-ZIP content is zipped, and
the result goes through the depot like a payload added with the CLI. Large
payloads belong in the streaming upload instead, because a JSON body is
held in memory and limited by server.max_body_size.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
import tempfile
import zipfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path, PurePosixPath
from typing import Any

from ocoserver.errors import InvalidParams, preview

MAX_FILES = 1000


@asynccontextmanager
async def decoded_payload(data: dict[str, Any], work_dir: Path) -> AsyncIterator[Path]:
    """Write the request's base64 payload below `work_dir` and yield its path.

    The path is a ZIP file or a folder, as `packages.add` takes it; both are
    deleted when the block ends.
    """
    files = _read_files(data)
    work_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".client-api-", dir=work_dir) as temporary:
        root = Path(temporary)
        yield await asyncio.to_thread(_write_payload, root, files)


def has_payload(data: dict[str, Any]) -> bool:
    return bool(data.get("file")) or bool(data.get("files"))


def _read_files(data: dict[str, Any]) -> list[tuple[str | None, bytes]]:
    if data.get("file") and data.get("files"):
        raise InvalidParams("give either data.file or data.files, not both")
    if data.get("file"):
        name = data.get("file_name") or None
        if name is not None:
            name = _check_name(name, "data.file_name")
        return [(name, _decode(data["file"], "data.file"))]
    items = data["files"]
    if not isinstance(items, list) or len(items) > MAX_FILES:
        raise InvalidParams(
            f"data.files must be an array of at most {MAX_FILES} objects with "
            "name and content"
        )
    files = [_read_item(index, item) for index, item in enumerate(items)]
    names = [name for name, _ in files]
    if len(set(names)) < len(names):
        raise InvalidParams("data.files names a file twice; give each name once")
    return files


def _read_item(index: int, item: Any) -> tuple[str | None, bytes]:
    where = f"data.files[{index}]"
    if not isinstance(item, dict):
        raise InvalidParams(f"{where} must be an object with name and content")
    name = _check_name(item.get("name"), f"{where}.name")
    return name, _decode(item.get("content"), f"{where}.content")


# Longest accepted relative file name in a payload, in UTF-8 bytes.
MAX_NAME_BYTES = 1024


def _check_name(name: Any, where: str) -> str:
    """Accept a relative path inside the package, such as 'setup/app.msi'."""
    if not isinstance(name, str) or not name.strip():
        raise InvalidParams(f"{where} must be a file name")
    path = PurePosixPath(name.replace("\\", "/"))
    if (
        path.is_absolute()
        or ".." in path.parts
        or not path.parts
        or path.parts[0] == "."
        or ":" in path.parts[0]
        or not name.isprintable()
    ):
        raise InvalidParams(
            f"{where} {preview(name)} is invalid: use a relative path inside the "
            "package without '..', such as setup/app.msi"
        )
    # Linux limits: 255 bytes per path component and 4096 for a whole path;
    # the package folder's own path takes part of the latter.
    too_long = any(len(part.encode()) > 255 for part in path.parts)
    if too_long or len(path.as_posix().encode()) > MAX_NAME_BYTES:
        raise InvalidParams(
            f"{where} {preview(name)} is too long: use at most 255 bytes per "
            f"folder or file name and {MAX_NAME_BYTES} bytes in all"
        )
    return path.as_posix()


def _decode(value: Any, where: str) -> bytes:
    if not isinstance(value, str):
        raise InvalidParams(f"{where} must be a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidParams(f"{where} is not valid base64") from None


def _write_payload(root: Path, files: list[tuple[str | None, bytes]]) -> Path:
    name, content = files[0]
    if len(files) == 1 and name is None:
        if not zipfile.is_zipfile(io.BytesIO(content)):
            raise InvalidParams(
                "data.file is not a ZIP file; give data.file_name to store "
                "another kind of file"
            )
        path = root / "payload.zip"
        path.write_bytes(content)
        return path
    folder = root / "payload"
    for name, content in files:
        assert name is not None
        target = folder / name
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
        except (FileExistsError, IsADirectoryError, NotADirectoryError):
            # Such as 'a' and 'a/b': one name is a folder of the other.
            raise InvalidParams(
                f"data.files name {preview(name)} conflicts with another file name"
            ) from None
    return folder
