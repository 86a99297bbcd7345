"""GET pages of the web console and the JSON endpoint the live view polls."""

from __future__ import annotations

import datetime
import math
from typing import Any

from aiohttp import web

from ocoserver import timefmt
from ocoserver.appkeys import STATE
from ocoserver.auth_throttle import MAX_RECENT_FAILURES
from ocoserver.db import id_from_text
from ocoserver.errors import AdminError
from ocoserver.store import (
    admins,
    console,
    containers,
    details,
    events,
    inventory,
    jobs,
    packages,
    password_rules,
    settings,
)
from ocoserver.store.groups import COMPUTER_GROUPS
from ocoserver.web.messages import console_message
from ocoserver.web.session import page
from ocoserver.web.templating import render

# Inventory sections in the order the computer page shows them.
SECTION_TITLES = {
    "networks": "Networks", "screens": "Screens", "printers": "Printers",
    "partitions": "Partitions", "software": "Software", "logins": "Logins",
    "users": "Local users", "devices": "USB devices", "services": "Services",
}  # fmt: skip
HARDWARE_FIELDS = (
    "os", "os_version", "os_license", "os_language", "kernel_version",
    "architecture", "cpu", "gpu", "ram", "serial", "manufacturer", "model",
    "bios_version", "uptime", "boot_type", "secure_boot", "domain",
    "battery_level", "battery_status", "agent_version", "remote_address",
    "uid", "created", "last_seen", "last_update", "notes",
)  # fmt: skip


def add_routes(app: web.Application) -> None:
    app.router.add_get("/", dashboard)
    app.router.add_get("/computers", computer_list)
    app.router.add_get("/computers/{id:\\d+}", computer_page)
    app.router.add_get("/jobs", container_list)
    app.router.add_get("/jobs/{id:\\d+}", container_page)
    app.router.add_get("/jobs/{id:\\d+}/state.json", container_state)
    app.router.add_get("/packages", package_list)
    app.router.add_get("/deploy", deploy_form)
    app.router.add_get("/software", software_search)
    app.router.add_get("/settings", settings_page)


def state_name(state: int | None) -> str:
    return jobs.STATE_NAMES.get(state, str(state)) if state is not None else ""


def percent(part: Any, whole: Any) -> int:
    """Return part/whole in whole percent, 0 when either is not a number."""
    try:
        ratio = float(part) / float(whole)
    except (TypeError, ValueError, ZeroDivisionError):
        return 0
    return max(0, min(100, round(ratio * 100)))


def width_class(part: Any, whole: Any) -> str:
    """Return the stylesheet class (w-0 to w-100) for a bar of part/whole.

    Widths go in steps of 5 %, and a part above zero gets at least 5 %, so
    that it stays visible. static/live.js rounds the same way.
    """
    try:
        ratio = float(part) / float(whole)
    except (TypeError, ValueError, ZeroDivisionError):
        return "w-0"
    if not ratio > 0:
        return "w-0"
    step = max(1, min(20, math.floor(ratio * 20 + 0.5)))
    return f"w-{step * 5}"


def path_id(request: web.Request) -> int:
    """Return the id in the path; an id no row can have is not found."""
    row_id = id_from_text(request.match_info["id"])
    if row_id is None:
        raise web.HTTPNotFound()
    return row_id


def not_found(request: web.Request, message: str) -> web.Response:
    """Render a 404 page with `message` in the console's terms.

    Only GET pages call this, so the page suggests no form to correct.
    """
    context = {"message": console_message(message), "heading": "Not found"}
    return render("error.html", request, context, status=404)


@page
async def dashboard(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    web_config = state.config.web
    context = await console.dashboard(
        state.database, web_config.online_window, web_config.stale_inventory
    )
    context["rejections"] = [
        {"time": _utc_text(failure.time), "remote": failure.remote,
         "name": failure.name, "reason": failure.reason, "count": failure.count}
        for failure in state.throttle.recent_failures()
    ]  # fmt: skip
    context["rejections_max"] = MAX_RECENT_FAILURES
    return render("dashboard.html", request, context)


def _utc_text(seconds: float) -> str:
    return timefmt.to_text(datetime.datetime.fromtimestamp(seconds, datetime.UTC))


@page
async def computer_list(request: web.Request) -> web.StreamResponse:
    search = request.query.get("q", "")
    sort = request.query.get("sort", "hostname")
    rows = await console.computers(request.app[STATE].database, search, sort)
    context = {"computers": rows, "q": search, "sort": sort,
               "sorts": console.COMPUTER_SORTS}  # fmt: skip
    return render("computers.html", request, context)


@page
async def computer_page(request: web.Request) -> web.StreamResponse:
    database = request.app[STATE].database
    try:
        computer = await details.get_computer(database, path_id(request))
    except AdminError as error:
        return not_found(request, str(error))
    context = {
        "computer": computer,
        "fields": [(name, computer.get(name)) for name in HARDWARE_FIELDS],
        "sections": await inventory.read_sections(database, computer["id"]),
        "titles": SECTION_TITLES,
        "events": await events.list_for_computer(database, computer["id"]),
        "groups": await details.groups_of_member(
            database, COMPUTER_GROUPS, computer["id"]
        ),
        "installed": await jobs.installed_packages(database, computer["id"]),
        "jobs": await console.computer_jobs(database, computer["id"]),
        "passwords": await console.password_usernames(database, computer["id"]),
        "software_filter": request.query.get("software", ""),
    }
    return render("computer.html", request, context)


@page
async def container_list(request: web.Request) -> web.StreamResponse:
    rows = await containers.list_all(request.app[STATE].database)
    context = {"containers": list(reversed(rows))}
    return render("containers.html", request, context)


async def _container_data(request: web.Request) -> dict[str, Any]:
    database = request.app[STATE].database
    summary = await containers.get_summary(database, path_id(request))
    rows = await details.container_jobs(database, summary["id"])
    return {
        "container": summary,
        "jobs": [_job_view(row) for row in rows],
    }


def _job_view(row: dict[str, Any]) -> dict[str, Any]:
    return {
        **row,
        "state_name": state_name(row["state"]),
        "download_progress": download_percent(row["download_progress"]),
    }


def download_percent(progress: float | None) -> int | None:
    """Return an agent's download progress (0 to 100) as a whole percent.

    It rounds down, so 100 shows only once the download is complete.
    """
    if progress is None:
        return None
    return max(0, min(100, math.floor(progress)))


@page
async def container_page(request: web.Request) -> web.StreamResponse:
    try:
        context = await _container_data(request)
    except AdminError as error:
        return not_found(request, str(error))
    return render("container.html", request, context)


@page
async def container_state(request: web.Request) -> web.StreamResponse:
    try:
        data = await _container_data(request)
    except AdminError as error:
        return web.json_response({"error": str(error)}, status=404)
    return web.json_response(data, headers={"Cache-Control": "no-store"})


@page
async def package_list(request: web.Request) -> web.StreamResponse:
    rows = await packages.list_all(request.app[STATE].database)
    context = {"packages": rows, "post_actions": packages.POST_ACTIONS}
    return render("packages.html", request, context)


@page
async def deploy_form(request: web.Request) -> web.StreamResponse:
    database = request.app[STATE].database
    context = {
        "computers": await console.computer_choices(database),
        "groups": await console.group_choices(database),
        "packages": await packages.list_all(database),
        "selected_packages": request.query.getall("package", []),
        "selected_computers": request.query.getall("computer", []),
    }
    return render("deploy.html", request, context)


@page
async def software_search(request: web.Request) -> web.StreamResponse:
    name = request.query.get("name", "")
    version = request.query.get("version", "")
    rows = []
    if name or version:
        rows = await console.software(request.app[STATE].database, name, version)
    context = {"name": name, "version": version, "rows": rows,
               "limit": console.MAX_SEARCH_ROWS}  # fmt: skip
    return render("software.html", request, context)


async def settings_context(database: Any) -> dict[str, Any]:
    return {
        "values": await settings.read_all(database),
        "definitions": settings.DEFINITIONS,
        "keys": {
            "self_registration": settings.SELF_REGISTRATION,
            "registration_key": settings.REGISTRATION_KEY,
            "update_interval": settings.UPDATE_INTERVAL,
        },  # fmt: skip
        "event_rules": await events.list_rules(database),
        "password_rules": await password_rules.list_all(database),
        "reveals": await admins.list_reveals(database),
        "show_key": False,
        # The browser enforces the store's length limits before sending.
        "limits": {
            "log": events.MAX_RULE_LOG_LENGTH,
            "query": events.MAX_RULE_QUERY_LENGTH,
            "username": password_rules.MAX_USERNAME_LENGTH,
        },
    }


@page
async def settings_page(request: web.Request) -> web.StreamResponse:
    context = await settings_context(request.app[STATE].database)
    return render("settings.html", request, context)
