"""Package payloads uploaded over HTTP before the package that uses them exists.

An upload is streamed into the depot under its final file name and recorded
here under a random upload id. `oco.package.create` with that id turns the
record into a package row in one transaction, so the file belongs either to
an upload or to a package. Housekeeping deletes uploads that no package
used within `housekeeping.purge_uploads_after` seconds.
"""

from __future__ import annotations

import logging
import secrets

import aiosqlite

from ocoserver import depot, timefmt
from ocoserver.db import Database, Row, fetch_all, fetch_one
from ocoserver.errors import AdminError
from ocoserver.store import packages

log = logging.getLogger("ocoserver.packages")


async def record(
    database: Database, payload: depot.StoredPayload, key_name: str
) -> str:
    """Record an uploaded payload and return its upload id."""
    upload_id = secrets.token_hex(16)
    async with database.transaction() as connection:
        await connection.execute(
            "INSERT INTO package_upload (id, file_name, size, sha256, key_name, "
            "created, mtime_ns) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                upload_id,
                payload.file_name,
                payload.size,
                payload.sha256,
                key_name,
                timefmt.now_text(),
                payload.mtime_ns,
            ),
        )
    log.info(
        "package payload uploaded by API key %r: upload %s, %d bytes, sha256 %s",
        key_name,
        upload_id,
        payload.size,
        payload.sha256,
    )
    return upload_id


async def create_package(
    database: Database, spec: packages.PackageSpec, upload_id: str
) -> int:
    """Create a package from an uploaded payload; the upload id is used up."""
    spec = packages.validate(spec)
    async with database.transaction() as connection:
        row = await fetch_one(
            connection, "SELECT * FROM package_upload WHERE id = ?", (upload_id,)
        )
        if row is None:
            raise AdminError(
                f"upload {upload_id!r} not found or already used; upload the "
                "payload with PUT /api-client/package-upload"
            )
        payload = depot.StoredPayload(
            row["file_name"], row["size"], row["sha256"], row["mtime_ns"]
        )
        package_id = await packages.insert_stored(connection, spec, payload)
        await connection.execute(
            "DELETE FROM package_upload WHERE id = ?", (upload_id,)
        )
    log.info(
        "package %s %s added (id %d, %d bytes from upload %s)",
        spec.family,
        spec.version,
        package_id,
        payload.size,
        upload_id,
    )
    return package_id


async def purge_unused(connection: aiosqlite.Connection, cutoff: str) -> list[Row]:
    """Delete the records of uploads made before `cutoff` and return them.

    The caller deletes the files after the commit, so a crash in between
    leaves a file without a record, never a record without its file.
    """
    rows = await fetch_all(
        connection,
        "SELECT id, file_name, key_name FROM package_upload WHERE created < ?",
        (cutoff,),
    )
    await connection.executemany(
        "DELETE FROM package_upload WHERE id = ?", [(row["id"],) for row in rows]
    )
    return rows
