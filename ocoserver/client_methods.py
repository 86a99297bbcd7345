"""The client API methods, one function per JSON-RPC method.

Method and parameter names follow the OCO client API, where ocoserver has
the feature; `params.data` carries the parameters. Each method is
registered with the scope a key needs to call it. Every method works through
the store functions that the CLI uses too.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from ocoserver import __version__, client_payloads, timefmt
from ocoserver.client_params import (
    read_boolean,
    read_id,
    read_id_list,
    read_integer,
    read_optional_id,
    read_text,
    read_time,
    reject_unsupported,
)
from ocoserver.config import Config
from ocoserver.db import Database, Row
from ocoserver.errors import ActionFailed, InvalidParams, preview
from ocoserver.store import (
    computers,
    containers,
    deployment_rules,
    details,
    inventory,
    jobs,
    memberships,
    packages,
    targets,
    uploads,
)
from ocoserver.store.groups import COMPUTER_GROUPS, PACKAGE_GROUPS, GroupKind

# OCO's numeric post actions, by ocoserver's names.
POST_ACTION_CODES = {"none": 0, "restart": 1, "shutdown": 2, "exit": 3}
POST_ACTION_NAMES = {code: name for name, code in POST_ACTION_CODES.items()}

# Inventory sections under the names the OCO client API uses for them.
SECTION_NAMES = {"partitions": "filesystems", "software": "recognised_software"}


@dataclass(frozen=True)
class ClientContext:
    database: Database
    config: Config
    key: Row
    remote: str


MethodFunction = Callable[[ClientContext, dict[str, Any]], Awaitable[Any]]


@dataclass(frozen=True)
class ClientMethod:
    name: str
    scope: str
    run: MethodFunction


METHODS: dict[str, ClientMethod] = {}


def client_method(name: str, scope: str) -> Callable[[MethodFunction], MethodFunction]:
    def register(function: MethodFunction) -> MethodFunction:
        METHODS[name] = ClientMethod(name, scope, function)
        return function

    return register


@client_method("oco.info", "read")
async def info(context: ClientContext, data: dict[str, Any]) -> dict[str, Any]:
    """Return the server version and the calling key's name and scope."""
    return {
        "version": __version__,
        "server": "ocoserver",
        "api_key": context.key["name"],
        "scope": context.key["scope"],
    }


# Computers


@client_method("oco.computer.list", "read")
async def computer_list(context: ClientContext, data: dict[str, Any]) -> dict[str, Any]:
    """List all computers and top-level groups, or a group's computers and subgroups."""
    database = context.database
    group_id = read_optional_id(data, "computer_group_id")
    if group_id is None:
        return {
            "computers": await computers.list_all(database),
            "groups": await details.child_groups(database, COMPUTER_GROUPS, None),
        }
    group = await details.get_group(database, COMPUTER_GROUPS, group_id)
    return {
        "name": group["name"],
        "computers": await details.direct_members(database, COMPUTER_GROUPS, group_id),
        "groups": await details.child_groups(database, COMPUTER_GROUPS, group_id),
    }


@client_method("oco.computer.get", "read")
async def computer_get(context: ClientContext, data: dict[str, Any]) -> dict[str, Any]:
    """Return a computer with groups, inventory, installed packages and pending jobs."""
    database = context.database
    computer = await details.get_computer(database, read_id(data, "id"))
    sections = await inventory.read_sections(database, computer["id"])
    result: dict[str, Any] = {
        "general": computer,
        "groups": await details.groups_of_member(
            database, COMPUTER_GROUPS, computer["id"]
        ),
    }
    for name, rows in sections.items():
        result[SECTION_NAMES.get(name, name)] = rows
    result["installed_packages"] = await jobs.installed_packages(
        database, computer["id"]
    )
    result["pending_jobs"] = _job_records(
        await details.pending_jobs_of_computer(database, computer["id"])
    )
    return result


@client_method("oco.computer.create", "admin")
async def computer_create(
    context: ClientContext, data: dict[str, Any]
) -> dict[str, Any]:
    """Pre-register a computer and return its id."""
    computer_id = await computers.add(
        context.database, read_text(data, "hostname"), read_text(data, "notes", "")
    )
    return {"id": computer_id}


@client_method("oco.computer.remove", "admin")
async def computer_remove(context: ClientContext, data: dict[str, Any]) -> list[Any]:
    """Delete a computer with its inventory and jobs; force=false spares pending jobs."""
    computer = await details.get_computer(context.database, read_id(data, "id"))
    if not read_boolean(data, "force", True):
        pending = await details.pending_jobs_of_computer(
            context.database, computer["id"]
        )
        if pending:
            raise ActionFailed(
                f"computer {computer['id']} has {len(pending)} pending jobs; send "
                "force=true to remove it anyway"
            )
    await computers.remove(context.database, computer["hostname"])
    return []


@client_method("oco.computer.add_to_group", "admin")
async def computer_add_to_group(
    context: ClientContext, data: dict[str, Any]
) -> list[Any]:
    """Add a computer to a computer group (computer_id, computer_group_id)."""
    computer = await details.get_computer(
        context.database, read_id(data, "computer_id")
    )
    await _change_membership(
        context, COMPUTER_GROUPS, read_id(data, "computer_group_id"),
        computer["hostname"], add=True,
    )  # fmt: skip
    return []


@client_method("oco.computer.remove_from_group", "admin")
async def computer_remove_from_group(
    context: ClientContext, data: dict[str, Any]
) -> list[Any]:
    """Remove a computer from a computer group (computer_id, computer_group_id)."""
    computer = await details.get_computer(
        context.database, read_id(data, "computer_id")
    )
    await _change_membership(
        context, COMPUTER_GROUPS, read_id(data, "computer_group_id"),
        computer["hostname"], add=False,
    )  # fmt: skip
    return []


async def _change_membership(
    context: ClientContext, kind: GroupKind, group_id: int, member: str, add: bool
) -> None:
    # The store resolves an all-digit reference as a group id.
    await details.get_group(context.database, kind, group_id)
    if add:
        await memberships.add_member(context.database, kind, str(group_id), member)
    else:
        await memberships.remove_member(context.database, kind, str(group_id), member)


# Packages


@client_method("oco.package_family.list", "read")
async def package_family_list(
    context: ClientContext, data: dict[str, Any]
) -> list[Row]:
    """List package families (packages of one name) with versions and package ids."""
    return await packages.list_families(context.database)


@client_method("oco.package.list", "read")
async def package_list(context: ClientContext, data: dict[str, Any]) -> dict[str, Any]:
    """List the packages of a family or of a group, or all packages."""
    database = context.database
    group_id = read_optional_id(data, "package_group_id")
    if group_id is not None:
        group = await details.get_group(database, PACKAGE_GROUPS, group_id)
        rows = await details.direct_members(database, PACKAGE_GROUPS, group_id)
        return {
            "name": group["name"],
            "packages": [package_record(row) for row in rows],
            "groups": await details.child_groups(database, PACKAGE_GROUPS, group_id),
        }
    if data.get("package_family_id") is not None:
        raise InvalidParams(
            "ocoserver has no package family ids; send data.package_family_name"
        )
    family = data.get("package_family_name")
    name = None if family is None else read_text(data, "package_family_name")
    rows = await packages.list_all(database, name)
    return {
        "name": name,
        "packages": [package_record(row) for row in rows],
        "groups": await details.child_groups(database, PACKAGE_GROUPS, None),
    }


@client_method("oco.package.get", "read")
async def package_get(context: ClientContext, data: dict[str, Any]) -> dict[str, Any]:
    """Return a package with its groups, installations and pending jobs."""
    database = context.database
    package = await packages.get(database, read_id(data, "id"))
    return {
        "general": package_record(package),
        "groups": await details.groups_of_member(
            database, PACKAGE_GROUPS, package["id"]
        ),
        "installations": await details.installations(database, package["id"]),
        "pending_jobs": _job_records(
            await details.pending_jobs_of_package(database, package["id"])
        ),
    }


@client_method("oco.package.create", "admin")
async def package_create(
    context: ClientContext, data: dict[str, Any]
) -> dict[str, Any]:
    """Create a package with a base64 payload, an uploaded one or none; return its id."""
    reject_unsupported(
        data, ("license_count", "compatible_os_version"),
        "leave it out",
    )  # fmt: skip
    spec = _package_spec(data)
    upload_id = data.get("upload_id")
    if upload_id is not None:
        if client_payloads.has_payload(data):
            raise InvalidParams("give either data.upload_id or data.file(s), not both")
        upload = read_text(data, "upload_id")
        return {"id": await uploads.create_package(context.database, spec, upload)}
    depot = context.config.depot_path
    if not client_payloads.has_payload(data):
        return {"id": await packages.add(context.database, depot, spec, None)}
    async with client_payloads.decoded_payload(data, context.config.data_dir) as source:
        package_id = await packages.add(context.database, depot, spec, source)
    return {"id": package_id}


def _package_spec(data: dict[str, Any]) -> packages.PackageSpec:
    codes = read_text(data, "install_procedure_success_return_codes", "0")
    uninstall_codes = data.get("uninstall_procedure_success_return_codes")
    # ocoserver keeps one list of success codes for both procedures.
    if uninstall_codes not in (None, "") and packages.parse_success_codes(
        str(uninstall_codes)
    ) != packages.parse_success_codes(codes):
        raise InvalidParams(
            "data.uninstall_procedure_success_return_codes differs from "
            "data.install_procedure_success_return_codes; ocoserver uses one list "
            "for both, so send the same codes or leave it out"
        )
    return packages.PackageSpec(
        family=read_text(data, "package_family_name"),
        version=read_text(data, "version"),
        install_procedure=read_text(data, "install_procedure"),
        uninstall_procedure=read_text(data, "uninstall_procedure", ""),
        success_codes=codes,
        post_action=_read_post_action(data, "install_procedure_post_action"),
        post_action_timeout=read_integer(data, "post_action_timeout", 5, minimum=0),
        description=read_text(data, "description", ""),
        compatible_os=read_text(data, "compatible_os", ""),
        compatible_arch=read_text(data, "compatible_architecture", ""),
        uninstall_post_action=_read_post_action(
            data, "uninstall_procedure_post_action"
        ),
    )


def _read_post_action(data: dict[str, Any], name: str) -> str:
    value = data.get(name)
    if value is None or value == "":
        return "none"
    if isinstance(value, str) and value in POST_ACTION_CODES:
        return value
    code = read_integer(data, name, 0, minimum=0)
    if code not in POST_ACTION_NAMES:
        raise InvalidParams(
            f"data.{name} {preview(value)} is invalid: use 0 (none), 1 (restart), "
            "2 (shutdown) or 3 (exit)"
        )
    return POST_ACTION_NAMES[code]


@client_method("oco.package.remove", "admin")
async def package_remove(context: ClientContext, data: dict[str, Any]) -> list[Any]:
    """Delete a package and its payload, rejected while jobs for it are active."""
    await packages.remove(
        context.database, context.config.depot_path, read_id(data, "id")
    )
    return []


@client_method("oco.package.add_to_group", "admin")
async def package_add_to_group(
    context: ClientContext, data: dict[str, Any]
) -> list[Any]:
    """Append a package to a package group (package_id, package_group_id)."""
    package_id = read_id(data, "package_id")
    await packages.get(context.database, package_id)
    await _change_membership(
        context, PACKAGE_GROUPS, read_id(data, "package_group_id"), str(package_id),
        add=True,
    )  # fmt: skip
    return []


@client_method("oco.package.remove_from_group", "admin")
async def package_remove_from_group(
    context: ClientContext, data: dict[str, Any]
) -> list[Any]:
    """Remove a package from a package group (package_id, package_group_id)."""
    package_id = read_id(data, "package_id")
    await _change_membership(
        context, PACKAGE_GROUPS, read_id(data, "package_group_id"), str(package_id),
        add=False,
    )  # fmt: skip
    return []


def package_record(row: Row) -> dict[str, Any]:
    """Return a package row under the field names of the OCO client API."""
    family = row["family"] if "family" in row else row["name"]
    return {
        "id": row["id"],
        "package_family_name": family,
        "version": row["version"],
        "notes": row["description"],
        "install_procedure": row["install_procedure"],
        "install_procedure_success_return_codes": row["success_codes"],
        "install_procedure_post_action": POST_ACTION_CODES[row["post_action"]],
        "uninstall_procedure": row["uninstall_procedure"],
        "uninstall_procedure_success_return_codes": row["success_codes"],
        "uninstall_procedure_post_action": POST_ACTION_CODES[
            row["uninstall_post_action"]
        ],
        "post_action_timeout": row["post_action_timeout"],
        "compatible_os": row["compatible_os"],
        "compatible_architecture": row["compatible_arch"],
        "size": row["size"],
        "sha256": row["sha256"],
        "created": row["created"],
    }


# Job containers


@client_method("oco.job_container.list", "read")
async def job_container_list(context: ClientContext, data: dict[str, Any]) -> list[Row]:
    """List job containers with their job counts by state."""
    return await containers.list_all(context.database)


@client_method("oco.job_container.job.list", "read")
async def job_container_job_list(
    context: ClientContext, data: dict[str, Any]
) -> list[dict[str, Any]]:
    """List a container's jobs with state, progress, return code and output."""
    container_id = read_id(data, "id")
    await jobs.get_container(context.database, container_id)
    return _job_records(await details.container_jobs(context.database, container_id))


@client_method("oco.job_container.deploy", "deploy")
async def job_container_deploy(
    context: ClientContext, data: dict[str, Any]
) -> dict[str, Any]:
    """Create a job container that installs packages on computers; returns its id."""
    deployment = await _read_deployment(context, data, uninstall=False)
    return {"id": await jobs.create_container(context.database, deployment)}


@client_method("oco.job_container.uninstall", "deploy")
async def job_container_uninstall(
    context: ClientContext, data: dict[str, Any]
) -> dict[str, Any]:
    """Create a job container that uninstalls packages from computers; returns its id."""
    reject_unsupported(
        data, ("installation_ids",),
        "give data.computer_ids and data.package_ids (or their group ids) instead",
    )  # fmt: skip
    deployment = await _read_deployment(context, data, uninstall=True)
    return {"id": await jobs.create_container(context.database, deployment)}


@client_method("oco.job_container.remove", "deploy")
async def job_container_remove(
    context: ClientContext, data: dict[str, Any]
) -> list[Any]:
    """Delete a job container with all its jobs (id)."""
    await containers.remove(context.database, read_id(data, "id"))
    return []


async def _read_deployment(
    context: ClientContext, data: dict[str, Any], uninstall: bool
) -> jobs.Deployment:
    reject_unsupported(
        data,
        ("computer_report_ids", "package_report_ids", "agent_ip_ranges",
         "constraint_ip_ranges", "time_frames"),
        "ocoserver has no reports or agent conditions; leave it out",
    )  # fmt: skip
    package_items: list[targets.PackageItem] = [
        ("package", package_id) for package_id in read_id_list(data, "package_ids")
    ] + [("group", str(group)) for group in read_id_list(data, "package_group_ids")]
    if not package_items:
        raise InvalidParams(
            "no packages given: send data.package_ids or package_group_ids"
        )
    database = context.database
    computer_ids = read_id_list(data, "computer_ids")
    group_ids = read_id_list(data, "computer_group_ids")
    if not computer_ids and not group_ids:
        raise InvalidParams(
            "no computers given: send data.computer_ids or computer_group_ids"
        )
    for computer_id in computer_ids:
        await details.get_computer(database, computer_id)
    upgrade = read_text(data, "upgrade", "none")
    if upgrade not in jobs.UPGRADE_MODES:
        raise InvalidParams(
            f"data.upgrade {preview(upgrade)} is invalid: use one of "
            f"{', '.join(jobs.UPGRADE_MODES)}"
        )
    return jobs.Deployment(
        name=read_text(data, "name"),
        package_ids=await targets.package_ids(database, package_items),
        computer_ids=await targets.computer_ids(
            database, computer_ids, [str(group) for group in group_ids]
        ),
        start_time=read_time(data, "date_start") or timefmt.now_text(),
        end_time=read_time(data, "date_end"),
        priority=read_integer(data, "priority", 0),
        sequence_mode=1 if read_boolean(data, "sequence_mode", False) else 0,
        force=read_boolean(data, "force_install_same_version", False),
        upgrade="none" if uninstall else upgrade,
        uninstall=uninstall,
    )


def _job_records(rows: list[Row]) -> list[dict[str, Any]]:
    return [{**row, "state_name": jobs.STATE_NAMES.get(row["state"])} for row in rows]


# Deployment rules


@client_method("oco.deployment_rule.list", "read")
async def deployment_rule_list(
    context: ClientContext, data: dict[str, Any]
) -> list[Row]:
    """List deployment rules with their groups and job counts."""
    return await deployment_rules.list_all(context.database)


@client_method("oco.deployment_rule.get", "read")
async def deployment_rule_get(
    context: ClientContext, data: dict[str, Any]
) -> dict[str, Any]:
    """Return a deployment rule and its jobs."""
    rule, rule_jobs = await deployment_rules.show(
        context.database, str(read_id(data, "id"))
    )
    return {"general": rule, "jobs": _job_records(rule_jobs)}


@client_method("oco.deployment_rule.job.list", "read")
async def deployment_rule_job_list(
    context: ClientContext, data: dict[str, Any]
) -> list[dict[str, Any]]:
    """List the jobs of a deployment rule."""
    _, rule_jobs = await deployment_rules.show(
        context.database, str(read_id(data, "id"))
    )
    return _job_records(rule_jobs)


@client_method("oco.deployment_rule.create", "admin")
async def deployment_rule_create(
    context: ClientContext, data: dict[str, Any]
) -> dict[str, Any]:
    """Create a rule: the computers of a group get the packages of a group; returns its id."""
    spec = deployment_rules.RuleSpec(
        name=read_text(data, "name"),
        computer_group=str(read_id(data, "computer_group_id")),
        package_group=str(read_id(data, "package_group_id")),
        priority=read_integer(data, "priority", 0),
        sequence_mode=1 if read_boolean(data, "sequence_mode", False) else 0,
    )
    return {"id": await deployment_rules.add(context.database, spec)}


@client_method("oco.deployment_rule.remove", "admin")
async def deployment_rule_remove(
    context: ClientContext, data: dict[str, Any]
) -> list[Any]:
    """Delete a deployment rule with its jobs (id)."""
    await deployment_rules.remove(context.database, str(read_id(data, "id")))
    return []
