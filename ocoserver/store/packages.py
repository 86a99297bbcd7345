"""Packages: install procedures, success codes, post action and payload."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path

import aiosqlite

from ocoserver import compatibility, depot, timefmt
from ocoserver.db import SQLITE_INTEGER_MAX, Database, Row, execute, fetch_one
from ocoserver.errors import AdminError

log = logging.getLogger("ocoserver.packages")

POST_ACTIONS = ("none", "restart", "shutdown", "exit")


@dataclass(frozen=True)
class PackageSpec:
    family: str
    version: str
    install_procedure: str
    uninstall_procedure: str = ""
    success_codes: str = "0"
    post_action: str = "none"
    post_action_timeout: int = 5
    description: str = ""
    # Comma-separated lists; see ocoserver/compatibility.py for the matching.
    compatible_os: str = ""
    compatible_arch: str = ""
    uninstall_post_action: str = "none"
    # Minutes a job may stay executing before it is failed; None: no limit.
    deadline: int | None = None


def parse_success_codes(text: str) -> str:
    """Normalize '0, 3010' to '0,3010'; raise AdminError for anything else."""
    codes = [part.strip() for part in text.split(",") if part.strip()]
    try:
        numbers = [int(code) for code in codes]
    except ValueError:
        raise AdminError(
            f"invalid success codes {text!r}: use integers separated by commas, "
            "such as 0,3010"
        ) from None
    if not numbers:
        raise AdminError("success codes are empty: give at least one, such as 0")
    for number in numbers:
        if abs(number) > SQLITE_INTEGER_MAX:
            raise AdminError(
                f"invalid success code {number}: return codes are 64-bit integers"
            )
    return ",".join(str(number) for number in numbers)


def validate(spec: PackageSpec) -> PackageSpec:
    if not spec.family.strip():
        raise AdminError("package name is empty: give --name")
    if not spec.version.strip():
        raise AdminError("package version is empty: give --version")
    if not spec.install_procedure.strip():
        raise AdminError("install procedure is empty: give --install")
    for option, action in (
        ("post action", spec.post_action),
        ("uninstall post action", spec.uninstall_post_action),
    ):
        if action not in POST_ACTIONS:
            raise AdminError(
                f"invalid {option} {action!r}: use one of {', '.join(POST_ACTIONS)}"
            )
    if spec.uninstall_post_action != "none" and not spec.uninstall_procedure.strip():
        raise AdminError(
            "an uninstall post action needs an uninstall procedure: give --uninstall"
        )
    try:
        compatible_os = compatibility.parse_list(spec.compatible_os, "--compatible-os")
        compatible_arch = compatibility.parse_list(
            spec.compatible_arch, "--compatible-arch"
        )
    except ValueError as error:
        raise AdminError(str(error)) from None
    if spec.post_action_timeout < 0:
        raise AdminError(
            f"invalid post action timeout {spec.post_action_timeout}: use minutes >= 0"
        )
    if spec.deadline is not None and spec.deadline < 1:
        raise AdminError(f"invalid deadline {spec.deadline}: use minutes >= 1")
    return PackageSpec(
        family=spec.family.strip(),
        version=spec.version.strip(),
        install_procedure=spec.install_procedure,
        uninstall_procedure=spec.uninstall_procedure,
        success_codes=parse_success_codes(spec.success_codes),
        post_action=spec.post_action,
        post_action_timeout=spec.post_action_timeout,
        description=spec.description,
        compatible_os=compatible_os,
        compatible_arch=compatible_arch,
        uninstall_post_action=spec.uninstall_post_action,
        deadline=spec.deadline,
    )


async def add(
    database: Database, depot_path: Path, spec: PackageSpec, source: Path | None
) -> int:
    """Store a package; `source` is a ZIP file, a folder, or None for no payload."""
    spec = validate(spec)
    await _check_unique(database, spec)
    payload = None
    if source is not None:
        payload = await asyncio.to_thread(depot.store_payload, depot_path, source)
    try:
        async with database.transaction() as connection:
            package_id = await _insert(connection, spec, payload)
    except BaseException:
        if payload is not None:
            depot.delete_payload(depot_path, payload.file_name)
        raise
    log.info(
        "package %s %s added (id %d, %s)",
        spec.family, spec.version, package_id,
        f"{payload.size} bytes" if payload else "no payload",
    )
    return package_id


async def insert_stored(
    connection: aiosqlite.Connection,
    spec: PackageSpec,
    payload: depot.StoredPayload | None,
) -> int:
    """Insert a validated package whose payload, if any, is already in the depot."""
    existing = await fetch_one(
        connection,
        "SELECT id FROM package WHERE family = ? AND version = ?",
        (spec.family, spec.version),
    )
    if existing is not None:
        raise AdminError(
            f"package {spec.family} {spec.version} already exists (id "
            f"{existing['id']}); choose another version"
        )
    return await _insert(connection, spec, payload)


async def _check_unique(database: Database, spec: PackageSpec) -> None:
    existing = await database.fetch_one(
        "SELECT id FROM package WHERE family = ? AND version = ?",
        (spec.family, spec.version),
    )
    if existing is not None:
        raise AdminError(
            f"package {spec.family} {spec.version} already exists (id "
            f"{existing['id']}); choose another --version"
        )


async def _insert(
    connection: aiosqlite.Connection,
    spec: PackageSpec,
    payload: depot.StoredPayload | None,
) -> int:
    return await execute(
        connection,
        "INSERT INTO package (family, version, description, install_procedure, "
        "uninstall_procedure, success_codes, post_action, post_action_timeout, "
        "file_name, size, sha256, created, compatible_os, compatible_arch, "
        "uninstall_post_action, deadline, file_mtime_ns) VALUES (:family, :version, "
        ":description, :install, :uninstall, :codes, :post_action, :timeout, "
        ":file_name, :size, :sha256, :created, :compatible_os, :compatible_arch, "
        ":uninstall_post_action, :deadline, :mtime_ns)",
        {
            "family": spec.family,
            "version": spec.version,
            "description": spec.description,
            "install": spec.install_procedure,
            "uninstall": spec.uninstall_procedure,
            "codes": spec.success_codes,
            "post_action": spec.post_action,
            "timeout": spec.post_action_timeout,
            "file_name": payload.file_name if payload else None,
            "size": payload.size if payload else None,
            "sha256": payload.sha256 if payload else None,
            "created": timefmt.now_text(),
            "compatible_os": spec.compatible_os,
            "compatible_arch": spec.compatible_arch,
            "uninstall_post_action": spec.uninstall_post_action,
            "deadline": spec.deadline,
            "mtime_ns": payload.mtime_ns if payload else None,
        },
    )


async def list_all(database: Database, family: str | None = None) -> list[Row]:
    """Return packages sorted by family and version, optionally of one family."""
    return await database.fetch_all(
        "SELECT id, family AS name, version, description, install_procedure, "
        "uninstall_procedure, success_codes, post_action, post_action_timeout, "
        "size, sha256, deadline, created, compatible_os, compatible_arch, "
        "uninstall_post_action FROM package "
        "WHERE :family IS NULL OR family = :family COLLATE NOCASE "
        "ORDER BY family, version, id",
        {"family": family},
    )


async def list_families(database: Database) -> list[Row]:
    """Return each package family with its versions and package ids."""
    rows = await database.fetch_all(
        "SELECT family, version, id FROM package ORDER BY family, version, id"
    )
    families: dict[str, Row] = {}
    for row in rows:
        entry = families.setdefault(
            row["family"], {"name": row["family"], "versions": [], "package_ids": []}
        )
        entry["versions"].append(row["version"])
        entry["package_ids"].append(row["id"])
    return list(families.values())


async def get(database: Database, package_id: int) -> Row:
    """Return a package row or raise AdminError."""
    row = await database.fetch_one("SELECT * FROM package WHERE id = ?", (package_id,))
    if row is None:
        raise AdminError(
            f"package {package_id} not found; 'ocoserver package list' shows the ids"
        )
    return row


async def find(connection: aiosqlite.Connection, package_id: int) -> Row | None:
    return await fetch_one(
        connection, "SELECT * FROM package WHERE id = ?", (package_id,)
    )


async def record_verified(database: Database, package_id: int, mtime_ns: int) -> None:
    """Store the modification time at which the payload's SHA-256 last matched."""
    async with database.transaction() as connection:
        await connection.execute(
            "UPDATE package SET file_mtime_ns = ? WHERE id = ?", (mtime_ns, package_id)
        )


async def remove(database: Database, depot_path: Path, package_id: int) -> Row:
    """Delete a package and its payload; refuse while jobs for it are active."""
    row = await get(database, package_id)
    async with database.transaction() as connection:
        active = await fetch_one(
            connection,
            "SELECT (SELECT COUNT(*) FROM job WHERE package_id = :id "
            "AND state IN (0, 1, 2)) + (SELECT COUNT(*) FROM rule_job "
            "WHERE package_id = :id AND state IN (1, 2)) AS count",
            {"id": package_id},
        )
        assert active is not None
        if active["count"]:
            raise AdminError(
                f"package {package_id} has active jobs ({active['count']}); remove "
                "their job containers with 'ocoserver job-container remove ID' "
                "('ocoserver job list --state waiting' shows them), or wait for "
                "its running rule jobs to end"
            )
        await connection.execute("DELETE FROM package WHERE id = ?", (package_id,))
    if row["file_name"]:
        depot.delete_payload(depot_path, row["file_name"])
    log.info("package %s %s (id %d) removed", row["family"], row["version"], package_id)
    return row
