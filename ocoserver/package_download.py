"""Serving a package ZIP: payload verification, SHA-256 ETag and If-Range.

Before a download is served, the payload's size is compared with the size
recorded when the package was added, and its modification time with the
one recorded at the last verification. Only when the modification time
differs is the file hashed again; a matching SHA-256 records the new time,
a different one rejects the download. A file changed in place with its
size and modification time kept is therefore not detected.

aiohttp's FileResponse (read in 3.14.5) derives its ETag from the modification time
and size, and evaluates If-Range only as an HTTP date: an If-Range entity
tag is ignored and the Range is served, which could splice bytes of two
different files. PackageFileResponse therefore evaluates If-Match,
If-None-Match and an If-Range entity tag against an ETag made from the
package's SHA-256, removes them, and leaves ranges, dates and sendfile to
FileResponse. The `set_package_etag` response hook puts that ETag on the
response.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from aiohttp import hdrs, web
from aiohttp.abc import AbstractStreamWriter
from aiohttp.helpers import ETag
from multidict import CIMultiDict

from ocoserver import depot
from ocoserver.db import Database, Row
from ocoserver.errors import InternalError, NotFound, preview
from ocoserver.logtext import quote
from ocoserver.store import packages

log = logging.getLogger("ocoserver.download")

CHUNK_SIZE = 256 * 1024


async def verified_payload(database: Database, depot_path: Path, package: Row) -> Path:
    """Return the package's payload path after checking it is the file added.

    Raises NotFound when the file is gone and InternalError when it changed,
    and logs both.
    """
    package_id = package["id"]
    try:
        path = depot.resolve(depot_path, package["file_name"])
    except ValueError as error:
        # The stored name is the server's own, so the file in the depot was
        # replaced by a link that leads elsewhere.
        log.error("package %d file rejected: %s", package_id, error)
        raise InternalError(
            f"package {package_id} file is not a plain file in the depot; add the "
            "package again"
        ) from None
    try:
        status = await asyncio.to_thread(os.stat, path)
    except FileNotFoundError:
        log.error("package %d file %s is missing from the depot", package_id, path)
        raise NotFound(f"package {package_id} file is missing on the server") from None
    if status.st_size != package["size"]:
        _reject_changed(
            package, path, f"size {status.st_size}, expected {package['size']}"
        )
    if status.st_mtime_ns != package["file_mtime_ns"]:
        sha256 = await asyncio.to_thread(file_sha256, path)
        if sha256 != package["sha256"]:
            _reject_changed(
                package, path, f"SHA-256 {sha256}, expected {package['sha256']}"
            )
        await packages.record_verified(database, package_id, status.st_mtime_ns)
        log.info(
            "package %d file %s verified again after its modification time changed",
            package_id,
            path,
        )
    return path


def _reject_changed(package: Row, path: Path, difference: str) -> None:
    log.error(
        "package %d file %s changed since it was added (%s); downloads rejected "
        "until the package is added again",
        package["id"],
        path,
        difference,
    )
    raise InternalError(
        f"package {package['id']} file changed on the server since it was added; "
        "the administrator must add the package again"
    )


def file_sha256(path: Path) -> str:
    """Hash a file in chunks (blocking: run in a thread)."""
    digest = hashlib.sha256()
    with path.open("rb") as reader:
        while chunk := reader.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


# Conditional headers that PackageFileResponse evaluates itself.
_ETAG_CONDITIONS = (hdrs.IF_MATCH, hdrs.IF_NONE_MATCH, hdrs.IF_RANGE)


@dataclass(frozen=True)
class RequestViews:
    """A download request as FileResponse must see it, with or without its Range.

    aiohttp clones a request only before its body is read, and a generation
    2 download reads its body to authenticate, so `capture` runs first.
    """

    original: web.Request
    # Without If-Match, If-None-Match and an If-Range entity tag.
    ranged: web.BaseRequest
    # Also without Range, for an If-Range entity tag that does not match.
    whole: web.BaseRequest

    @classmethod
    def capture(cls, request: web.Request) -> RequestViews:
        unusable_range = _has_unusable_range(request)
        has_conditions = any(name in request.headers for name in _ETAG_CONDITIONS)
        if not has_conditions and not unusable_range:
            return cls(request, request, request)

        headers = CIMultiDict(request.headers)
        if unusable_range:
            log.info(
                "ignoring Range %s, which is not one byte range; sending the "
                "whole package file", preview(request.headers[hdrs.RANGE]),
            )
            headers.popall(hdrs.RANGE)
        for name in (hdrs.IF_MATCH, hdrs.IF_NONE_MATCH):
            headers.popall(name, None)
        if _if_range_tag(request) is not None:
            del headers[hdrs.IF_RANGE]
        ranged = request.clone(headers=headers)
        headers.popall(hdrs.RANGE, None)
        return cls(request, ranged, request.clone(headers=headers))


def _has_unusable_range(request: web.BaseRequest) -> bool:
    """Tell whether the Range header is present but not one byte range.

    FileResponse responds to such a header (another unit, several ranges,
    bad syntax) with 416. Range support is optional in HTTP, so a server may
    send the whole file instead, which lets the client go on.
    """
    if hdrs.RANGE not in request.headers:
        return False
    try:
        # Reading the property parses the header.
        _ = request.http_range
    except ValueError:
        return True
    return False


def _if_range_tag(request: web.BaseRequest) -> str | None:
    """Return the If-Range header unless it is an HTTP date, which aiohttp checks.

    A value that is neither an entity tag nor a date, such as a SHA-256
    without quotes, matches nothing, so the whole file is sent for it.
    """
    value = request.headers.get(hdrs.IF_RANGE, "").strip()
    if not value:
        return None
    if value.startswith(('"', "W/")) or request.if_range is None:
        return value
    return None


class PackageFileResponse(web.FileResponse):
    """A FileResponse whose ETag is the package's SHA-256 (see the module text)."""

    def __init__(
        self, path: Path, package_id: int, sha256: str, views: RequestViews
    ) -> None:
        super().__init__(
            path,
            chunk_size=CHUNK_SIZE,
            headers={
                hdrs.CONTENT_DISPOSITION: f'attachment; filename="package-{package_id}.zip"',
            },
        )
        self.package_etag = sha256
        self._views = views

    async def prepare(self, request: web.BaseRequest) -> AbstractStreamWriter | None:
        if_match = request.if_match
        if if_match is not None and not _etag_in(
            self.package_etag, if_match, weak=False
        ):
            self.set_status(412)
            return await web.StreamResponse.prepare(self, request)
        if_none_match = request.if_none_match
        if if_none_match is not None and _etag_in(
            self.package_etag, if_none_match, weak=True
        ):
            self.set_status(304)
            return await web.StreamResponse.prepare(self, request)
        # A weak tag never matches If-Range (RFC 9110, 13.1.5).
        tag = _if_range_tag(request)
        if tag is not None and tag != f'"{self.package_etag}"':
            log.info(
                "If-Range %s is stale; sending the whole package file", quote(tag)
            )
            return await super().prepare(self._views.whole)
        return await super().prepare(self._views.ranged)


def _etag_in(sha256: str, etags: tuple[ETag, ...], weak: bool) -> bool:
    """Compare with RFC 9110 rules: weak comparison for If-None-Match only."""
    for etag in etags:
        if etag.value == "*":
            return True
        if etag.value == sha256 and (weak or not etag.is_weak):
            return True
    return False


async def set_package_etag(request: web.Request, response: web.StreamResponse) -> None:
    """Response hook: replace FileResponse's ETag with the package's SHA-256."""
    if isinstance(response, PackageFileResponse):
        response.etag = response.package_etag
