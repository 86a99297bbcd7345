"""POST forms of the web console: every change an administrator makes.

Each handler runs behind `session.form`, which requires a session and a
valid CSRF token. The package upload reads its multipart body itself, so
that the payload streams to disk instead of into memory.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import BodyPartReader, web

from ocoserver import depot, timefmt
from ocoserver.appkeys import STATE
from ocoserver.client_address import client_address
from ocoserver.db import SQLITE_INTEGER_MAX, id_from_text
from ocoserver.errors import AdminError, RpcError
from ocoserver.logtext import quote
from ocoserver.store import (
    admins,
    computers,
    containers,
    details,
    events,
    jobs,
    packages,
    password_rules,
    passwords,
    settings,
    targets,
)
from ocoserver.web import pages
from ocoserver.web.formbody import form_errors, read_form
from ocoserver.web.messages import console_message
from ocoserver.web.session import (
    CSRF_FIELD,
    FormHandler,
    check_csrf,
    current_session,
    form,
    redirect,
)
from ocoserver.web.templating import SESSION, error_exception, render

log = logging.getLogger("ocoserver.web")

# Largest text field of the upload form, in bytes. Procedures and
# descriptions are far shorter.
MAX_FIELD_SIZE = 64 * 1024


def add_routes(app: web.Application) -> None:
    router = app.router
    router.add_post("/computers/{id:\\d+}/refresh", refresh_computer)
    router.add_post("/computers/{id:\\d+}/remove", remove_computer)
    router.add_post("/computers/{id:\\d+}/passwords", reveal_passwords)
    router.add_post("/packages", upload_package)
    router.add_post("/packages/{id:\\d+}/remove", remove_package)
    router.add_post("/deploy", deploy)
    router.add_post("/jobs/{id:\\d+}/remove", remove_container)
    router.add_post("/jobs/{id:\\d+}/enable", enable_container)
    router.add_post("/jobs/{id:\\d+}/disable", disable_container)
    router.add_post("/jobs/{id:\\d+}/renew", renew_container)
    router.add_post("/settings", change_settings)
    router.add_post("/settings/registration-key", reveal_registration_key)
    router.add_post("/settings/event-rules", add_event_rule)
    router.add_post("/settings/event-rules/{id:\\d+}/remove", remove_event_rule)
    router.add_post("/settings/password-rules", add_password_rule)
    router.add_post("/settings/password-rules/{id:\\d+}/remove", remove_password_rule)


def error_page(request: web.Request, message: str) -> web.Response:
    """Render a 400 page with `message` in the console's terms."""
    context = {"message": console_message(message), "form_error": True}
    return render("error.html", request, context, status=400)


def reports_errors(handler: FormHandler) -> FormHandler:
    """Show an AdminError or RpcError from a form as an error page (400)."""

    @functools.wraps(handler)
    async def wrapper(request: web.Request, data: Any) -> web.StreamResponse:
        try:
            return await handler(request, data)
        except AdminError as error:
            message = str(error)
        except RpcError as error:
            message = error.message
        log.info(
            "rejected %s %s by %s: %s", request.method, request.path,
            quote(request[SESSION].name), quote(message),
        )  # fmt: skip
        return error_page(request, message)

    return wrapper


def _actor(request: web.Request) -> str:
    return quote(request[SESSION].name)


# Computers


@form
@reports_errors
async def refresh_computer(request: web.Request, data: Any) -> web.StreamResponse:
    database = request.app[STATE].database
    computer = await details.get_computer(database, pages.path_id(request))
    await computers.request_refresh(database, computer["hostname"])
    log.info("inventory refresh of %s requested by %s",
             quote(computer["hostname"]), _actor(request))  # fmt: skip
    return redirect(f"/computers/{computer['id']}")


@form
@reports_errors
async def remove_computer(request: web.Request, data: Any) -> web.StreamResponse:
    database = request.app[STATE].database
    computer = await details.get_computer(database, pages.path_id(request))
    await computers.remove(database, computer["hostname"])
    log.info("computer %s removed by %s", quote(computer["hostname"]), _actor(request))
    return redirect("/computers")


@form
@reports_errors
async def reveal_passwords(request: web.Request, data: Any) -> web.StreamResponse:
    """Show the stored passwords of one username and write an audit entry."""
    state = request.app[STATE]
    computer = await details.get_computer(state.database, pages.path_id(request))
    username = str(data.get("username", ""))
    _, history = await passwords.history_for_computer(
        state.database, state.config.password_key_path, computer["hostname"]
    )
    shown = [row for row in history if row["username"].lower() == username.lower()]
    if not shown:
        raise AdminError(
            f"no stored password for user {username!r} on {computer['hostname']}"
        )
    await admins.record_reveal(
        state.database, request[SESSION].name, computer, username,
        client_address(request),
    )  # fmt: skip
    context = {"computer": computer, "username": username, "passwords": shown}
    return _no_store(render("passwords.html", request, context))


def _no_store(response: web.StreamResponse) -> web.StreamResponse:
    """Keep a page that shows a secret out of the browser's cache and history."""
    response.headers["Cache-Control"] = "no-store"
    return response


# Packages


async def _chunks(part: BodyPartReader) -> AsyncIterator[bytes]:
    while chunk := await part.read_chunk(depot.CHUNK_SIZE):
        yield chunk


async def _read_field(part: BodyPartReader) -> str:
    """Read a text field, rejecting one past MAX_FIELD_SIZE before it fills memory."""
    raw = bytearray()
    while chunk := await part.read_chunk(MAX_FIELD_SIZE):
        raw += chunk
        if len(raw) > MAX_FIELD_SIZE:
            raise AdminError(
                f"form field {part.name!r} is too long: use at most "
                f"{MAX_FIELD_SIZE} bytes"
            )
    return raw.decode("utf-8", "replace")


async def _read_upload(
    request: web.Request,
) -> tuple[dict[str, str], depot.StoredPayload | None]:
    """Read the upload form's fields and stream its file into the depot.

    The CSRF token must be the first field, so that no byte of a forged
    upload reaches the disk.
    """
    if request.content_type != "multipart/form-data":
        check_csrf(request, (await read_form(request)).get(CSRF_FIELD))
        raise AdminError("send the upload form as multipart/form-data")
    with form_errors(request):
        return await _read_parts(request)


async def _read_parts(
    request: web.Request,
) -> tuple[dict[str, str], depot.StoredPayload | None]:
    reader = await request.multipart()
    fields: dict[str, str] = {}
    payload = None
    checked = False
    try:
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                message = "nested multipart bodies are not accepted"
                raise error_exception(request, web.HTTPBadRequest, message)
            if not checked:
                value = await _read_field(part) if part.name == CSRF_FIELD else None
                check_csrf(request, value)
                checked = True
            elif part.filename is not None and part.name == "file":
                if payload is None and part.filename:
                    payload = await _receive_file(request, part)
            elif part.name:
                fields[part.name] = await _read_field(part)
    except BaseException:
        # A part after the file failed, so the stored file belongs to no package.
        if payload is not None:
            depot.delete_payload(request.app[STATE].depot, payload.file_name)
        raise
    if not checked:
        check_csrf(request, None)
    return fields, payload


async def _receive_file(
    request: web.Request, part: BodyPartReader
) -> depot.StoredPayload:
    state = request.app[STATE]
    return await depot.receive_payload(
        state.depot, _chunks(part), state.config.web.max_upload_size,
        "web.max_upload_size",
    )  # fmt: skip


async def upload_package(request: web.Request) -> web.StreamResponse:
    """Create a package from the upload form, its payload streamed to disk."""
    session = await current_session(request)
    if session is None:
        return redirect("/login")
    request[SESSION] = session
    state = request.app[STATE]
    payload = None
    try:
        fields, payload = await _read_upload(request)
        spec = packages.validate(_package_spec(fields))
        async with state.database.transaction() as connection:
            package_id = await packages.insert_stored(connection, spec, payload)
    except (AdminError, RpcError) as error:
        if payload is not None:
            depot.delete_payload(state.depot, payload.file_name)
        message = str(error) if isinstance(error, AdminError) else error.message
        log.info("rejected package upload by %s: %s", _actor(request), quote(message))
        return error_page(request, message)
    log.info(
        "package %s %s added by %s (id %d, %s)", quote(spec.family),
        quote(spec.version), _actor(request), package_id,
        f"{payload.size} bytes" if payload else "no payload",
    )  # fmt: skip
    return redirect(f"/packages#package-{package_id}")


def _package_spec(fields: dict[str, str]) -> packages.PackageSpec:
    return packages.PackageSpec(
        family=fields.get("family", "").strip(),
        version=fields.get("version", "").strip(),
        install_procedure=fields.get("install_procedure", ""),
        uninstall_procedure=fields.get("uninstall_procedure", ""),
        success_codes=fields.get("success_codes", "0") or "0",
        post_action=fields.get("post_action", "none"),
        description=fields.get("description", ""),
    )


@form
@reports_errors
async def remove_package(request: web.Request, data: Any) -> web.StreamResponse:
    state = request.app[STATE]
    package = await packages.remove(state.database, state.depot, pages.path_id(request))
    log.info("package %d removed by %s", package["id"], _actor(request))
    return redirect("/packages")


# Deployments


def _ids(data: Any, name: str) -> list[int]:
    ids = [id_from_text(str(value).strip()) for value in data.getall(name, [])]
    if any(row_id is None for row_id in ids):
        raise AdminError(f"invalid {name} value in the form; reload it")
    return [row_id for row_id in ids if row_id is not None]


def _form_time(data: Any, name: str) -> str | None:
    """Return a time field's text, or None when empty.

    `jobs.create_container` parses it, and its message names the field.
    """
    text = str(data.get(name, "")).strip()
    return text or None


def _read_deployment(
    data: Any, package_ids: list[int], computer_ids: list[int]
) -> jobs.Deployment:
    # `jobs.create_container` rejects an empty name with a message that
    # names the field.
    name = str(data.get("name", "")).strip()
    try:
        priority = int(str(data.get("priority", "0")) or "0")
    except ValueError:
        raise AdminError("priority must be a whole number") from None
    if abs(priority) > SQLITE_INTEGER_MAX:
        raise AdminError("priority is too large; use a smaller whole number")
    return jobs.Deployment(
        name=name,
        package_ids=package_ids,
        computer_ids=computer_ids,
        start_time=_form_time(data, "start") or timefmt.now_text(),
        end_time=_form_time(data, "end"),
        priority=priority,
        sequence_mode=1 if data.get("abort_on_failure") else 0,
        force=bool(data.get("force")),
    )


@form
@reports_errors
async def deploy(request: web.Request, data: Any) -> web.StreamResponse:
    """Create a job container from the deploy form and show it."""
    database = request.app[STATE].database
    package_items: list[targets.PackageItem] = [
        ("package", package_id) for package_id in _ids(data, "package")
    ]
    if not package_items:
        raise AdminError("no packages chosen; choose at least one")
    direct = _ids(data, "computer")
    groups = [str(group) for group in _ids(data, "group")]
    if not direct and not groups:
        raise AdminError("no computers or groups chosen; choose at least one")
    for computer_id in direct:
        await details.get_computer(database, computer_id)
    deployment = _read_deployment(
        data,
        await targets.package_ids(database, package_items),
        await targets.computer_ids(database, direct, groups),
    )
    container_id = await jobs.create_container(database, deployment)
    log.info("job container %d created by %s", container_id, _actor(request))
    return redirect(f"/jobs/{container_id}")


@form
@reports_errors
async def remove_container(request: web.Request, data: Any) -> web.StreamResponse:
    await containers.remove(request.app[STATE].database, pages.path_id(request))
    log.info("job container %d removed by %s", pages.path_id(request), _actor(request))
    return redirect("/jobs")


@form
@reports_errors
async def enable_container(request: web.Request, data: Any) -> web.StreamResponse:
    return await _set_container_enabled(request, True)


@form
@reports_errors
async def disable_container(request: web.Request, data: Any) -> web.StreamResponse:
    return await _set_container_enabled(request, False)


async def _set_container_enabled(
    request: web.Request, enabled: bool
) -> web.StreamResponse:
    container_id = pages.path_id(request)
    await containers.set_enabled(request.app[STATE].database, container_id, enabled)
    log.info(
        "job container %d %s by %s", container_id,
        "enabled" if enabled else "disabled", _actor(request),
    )  # fmt: skip
    return redirect(f"/jobs/{container_id}")


@form
@reports_errors
async def renew_container(request: web.Request, data: Any) -> web.StreamResponse:
    """Put the container's failed jobs back to waiting, so agents run them again."""
    count = await containers.renew_failed(
        request.app[STATE].database, pages.path_id(request)
    )
    log.info(
        "job container %d: %d failed jobs renewed by %s",
        pages.path_id(request), count, _actor(request),
    )  # fmt: skip
    return redirect(f"/jobs/{pages.path_id(request)}")


# Settings


@form
@reports_errors
async def change_settings(request: web.Request, data: Any) -> web.StreamResponse:
    database = request.app[STATE].database
    values = {
        settings.SELF_REGISTRATION: "1" if data.get("self_registration") else "0",
        settings.UPDATE_INTERVAL: str(data.get("update_interval", "")).strip(),
    }
    if data.get("registration_key"):
        values[settings.REGISTRATION_KEY] = str(data["registration_key"])
    for key, value in values.items():
        settings.validate(key, value)
    for key, value in values.items():
        await settings.set_value(database, key, value)
    log.info("settings changed by %s: %s", _actor(request), ", ".join(values))
    return redirect("/settings")


@form
@reports_errors
async def reveal_registration_key(
    request: web.Request, data: Any
) -> web.StreamResponse:
    log.info("registration key shown to %s", _actor(request))
    context = await pages.settings_context(request.app[STATE].database)
    context["show_key"] = True
    return _no_store(render("settings.html", request, context))


@form
@reports_errors
async def add_event_rule(request: web.Request, data: Any) -> web.StreamResponse:
    rule_id = await events.add_rule(
        request.app[STATE].database,
        str(data.get("log", "")),
        str(data.get("query", "")),
    )
    log.info("event rule %d added by %s", rule_id, _actor(request))
    return redirect("/settings")


@form
@reports_errors
async def remove_event_rule(request: web.Request, data: Any) -> web.StreamResponse:
    await events.remove_rule(request.app[STATE].database, pages.path_id(request))
    log.info("event rule %d removed by %s", pages.path_id(request), _actor(request))
    return redirect("/settings")


def _form_integer(data: Any, name: str) -> int:
    label = name.replace("_", " ")
    try:
        number = int(str(data.get(name, "")).strip())
    except ValueError:
        raise AdminError(f"{label} must be a whole number") from None
    if abs(number) > SQLITE_INTEGER_MAX:
        raise AdminError(f"{label} is too large; use a smaller whole number")
    return number


@form
@reports_errors
async def add_password_rule(request: web.Request, data: Any) -> web.StreamResponse:
    hostnames = str(data.get("computers", "")).replace(",", " ").split()
    spec = password_rules.RuleSpec(
        username=str(data.get("username", "")).strip(),
        hostnames=tuple(hostnames),
        alphabet=str(data.get("alphabet", "")),
        length=_form_integer(data, "length"),
        valid_days=_form_integer(data, "valid_days"),
        history=_form_integer(data, "history"),
    )
    rule_id = await password_rules.add(request.app[STATE].database, spec)
    log.info("password rule %d added by %s", rule_id, _actor(request))
    return redirect("/settings")


@form
@reports_errors
async def remove_password_rule(request: web.Request, data: Any) -> web.StreamResponse:
    await password_rules.remove(request.app[STATE].database, pages.path_id(request))
    log.info("password rule %d removed by %s", pages.path_id(request), _actor(request))
    return redirect("/settings")
