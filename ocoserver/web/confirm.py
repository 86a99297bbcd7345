"""Confirmation pages in front of every Remove button of the web console.

A Remove button is a link to one of these GET pages, which change nothing.
The page names what will be removed and what goes with it, and only its
POST form, which carries the CSRF token, removes. This works without
JavaScript.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ocoserver.appkeys import STATE
from ocoserver.errors import AdminError
from ocoserver.store import (
    containers,
    details,
    events,
    packages,
    password_rules,
    removal,
)
from ocoserver.web.pages import not_found, path_id
from ocoserver.web.session import page
from ocoserver.web.templating import render


def add_routes(app: web.Application) -> None:
    router = app.router
    router.add_get("/computers/{id:\\d+}/remove", confirm_computer)
    router.add_get("/packages/{id:\\d+}/remove", confirm_package)
    router.add_get("/jobs/{id:\\d+}/remove", confirm_container)
    router.add_get("/settings/event-rules/{id:\\d+}/remove", confirm_event_rule)
    router.add_get("/settings/password-rules/{id:\\d+}/remove", confirm_password_rule)


def _confirm_page(
    request: web.Request,
    kind: str,
    name: str,
    cancel: str,
    consequences: list[str] | None = None,
    note: str = "",
) -> web.StreamResponse:
    """Render the confirmation page for removing `name`.

    `consequences` lists what the removal deletes along with it, and its
    form posts to the GET page's own path, where the remove handler is.
    """
    context = {
        "kind": kind,
        "name": name,
        "consequences": consequences or [],
        "note": note,
        "action": request.path,
        "cancel": cancel,
    }
    return render("confirm.html", request, context)


def _count(number: int, singular: str, plural: str | None = None) -> str:
    return f"{number} {singular if number == 1 else plural or singular + 's'}"


@page
async def confirm_computer(request: web.Request) -> web.StreamResponse:
    database = request.app[STATE].database
    try:
        computer = await details.get_computer(database, path_id(request))
    except AdminError as error:
        return not_found(request, str(error))
    counts = await removal.computer_counts(database, computer["id"])
    consequences = [
        f"its inventory: {_count(counts['inventory'], 'entry', 'entries')} "
        "(hardware, software, users, services and the other lists)",
        f"its {_count(counts['events'], 'event')}",
        f"its {_count(counts['jobs'], 'job')} in job containers and "
        f"{_count(counts['rule_jobs'], 'rule job')}",
        f"its {_count(counts['passwords'], 'stored local admin password')}",
        f"its membership in {_count(counts['groups'], 'computer group')}",
    ]
    cancel = f"/computers/{computer['id']}"
    return _confirm_page(
        request, "computer", computer["hostname"], cancel, consequences
    )


@page
async def confirm_package(request: web.Request) -> web.StreamResponse:
    database = request.app[STATE].database
    try:
        package = await packages.get(database, path_id(request))
    except AdminError as error:
        return not_found(request, str(error))
    counts = await removal.package_counts(database, package["id"])
    consequences = [
        f"its {_count(counts['jobs'], 'job')} in job containers and "
        f"{_count(counts['rule_jobs'], 'rule job')}",
        f"the record of its {_count(counts['installations'], 'installation')}",
        f"its membership in {_count(counts['groups'], 'package group')}",
    ]
    if package["file_name"]:
        consequences.insert(0, f"its file ({package['size']} bytes)")
    name = f"{package['family']} {package['version']}"
    cancel = f"/packages#package-{package['id']}"
    return _confirm_page(request, "package", name, cancel, consequences)


@page
async def confirm_container(request: web.Request) -> web.StreamResponse:
    database = request.app[STATE].database
    try:
        container = await containers.get_summary(database, path_id(request))
    except AdminError as error:
        return not_found(request, str(error))
    consequences = [
        f"its {_count(container['jobs'], 'job')}: {container['waiting']} waiting, "
        f"{container['running']} running, {container['succeeded']} succeeded, "
        f"{container['failed'] + container['not_sent']} failed",
    ]
    cancel = f"/jobs/{container['id']}"
    return _confirm_page(
        request, "job container", container["name"], cancel, consequences
    )


def _find(rows: list[Any], row_id: int) -> Any:
    return next((row for row in rows if row["id"] == row_id), None)


@page
async def confirm_event_rule(request: web.Request) -> web.StreamResponse:
    rule_id = path_id(request)
    rules = await events.list_rules(request.app[STATE].database)
    rule = _find(rules, rule_id)
    if rule is None:
        return not_found(request, f"event rule {rule_id} not found")
    note = (
        "Agents stop sending these events at their next check-in. The events "
        "already stored stay."
    )
    name = f"log {rule['log']}, query {rule['query']}"
    return _confirm_page(request, "event rule", name, "/settings", note=note)


@page
async def confirm_password_rule(request: web.Request) -> web.StreamResponse:
    rule_id = path_id(request)
    rules = await password_rules.list_all(request.app[STATE].database)
    rule = _find(rules, rule_id)
    if rule is None:
        return not_found(request, f"password rule {rule_id} not found")
    computers = (
        "all computers" if rule["all_computers"] else ", ".join(rule["computers"])
    )
    note = (
        "The server stops asking agents to rotate this password. The passwords "
        "already stored stay, with no rule."
    )
    name = f"user {rule['username']} on {computers}"
    return _confirm_page(request, "password rule", name, "/settings", note=note)
