"""The agent endpoint: JSON-RPC over POST and package downloads over GET.

`/api-agent.php` is the path agents are configured with; `/agent` is an
alias. POST carries a JSON-RPC request. GET is a package download, either
generation 1 (`?id=&hostname=&uid=&agent-key=`, no body) or generation 2
(a signed `oco.agent.download` JSON-RPC body sent with GET).
"""

from __future__ import annotations

import logging

import aiosqlite
from aiohttp import web

from ocoserver import package_download
from ocoserver.agent_auth import AgentCall, Caller, Rejected, authenticate
from ocoserver.agent_methods import METHODS, MethodContext
from ocoserver.appkeys import RPC_ID, STATE
from ocoserver.client_address import client_address
from ocoserver.db import Database, Row
from ocoserver.errors import InvalidParams, InvalidRequest, MethodNotFound, NotFound
from ocoserver.errors import Unauthorized
from ocoserver.rpc import JSON_CONTENT_TYPE, RpcRequest, parse_request, success_body
from ocoserver.signing import SERVER_SIGNATURE_HEADER, SIGNATURE_HEADER, sign
from ocoserver.store import jobs, packages

log = logging.getLogger("ocoserver.agent")

AGENT_PATHS = ("/api-agent.php", "/agent")
DOWNLOAD_METHOD = "oco.agent.download"


def add_routes(app: web.Application) -> None:
    for path in AGENT_PATHS:
        app.router.add_post(path, handle_rpc)
        app.router.add_get(path, handle_download)
    app.on_response_prepare.append(package_download.set_package_etag)


def _require_json_content_type(request: web.Request) -> None:
    if request.content_type != "application/json":
        raise InvalidRequest(
            f"Content-Type {request.content_type!r} is not accepted; "
            "send application/json"
        )


async def _read_rpc(request: web.Request) -> RpcRequest:
    body = await request.read()
    rpc = parse_request(body)
    request[RPC_ID] = rpc.request_id
    return rpc


async def handle_rpc(request: web.Request) -> web.Response:
    """Authenticate a JSON-RPC agent request, run its method, sign the answer."""
    _require_json_content_type(request)
    rpc = await _read_rpc(request)
    method = METHODS.get(rpc.method)
    if method is None:
        raise MethodNotFound(f"method {rpc.method!r} does not exist")
    state = request.app[STATE]
    remote = client_address(request)
    signature = request.headers.get(SIGNATURE_HEADER)
    caller = await authenticate(
        state.database, state.config.agent, AgentCall.from_rpc(rpc, signature, remote)
    )
    context = MethodContext(
        state.database, caller, rpc, remote, state.config.password_key_path,
        state.config.agent,
    )
    params = await method(context)
    return await _respond(request, caller, rpc, params)


async def _respond(
    request: web.Request, caller: Caller, rpc: RpcRequest, params: dict[str, object]
) -> web.Response:
    state = request.app[STATE]
    if caller.generation == 1:
        return web.Response(
            body=success_body(rpc.request_id, params), content_type="application/json",
            charset="utf-8",
        )
    timestamp = await state.clock.next(state.database)
    body = success_body(rpc.request_id, params, timestamp)
    # The body is serialized once and these exact bytes are signed and sent.
    signature = sign(body, caller.computer["server_key"])
    return web.Response(
        body=body,
        headers={"Content-Type": JSON_CONTENT_TYPE, SERVER_SIGNATURE_HEADER: signature},
    )


async def handle_download(request: web.Request) -> web.StreamResponse:
    """Stream a package ZIP to a computer that has a pending job for it."""
    views = package_download.RequestViews.capture(request)
    if "id" in request.query:
        call, package_value = _plain_download_call(request)
    else:
        call, package_value = await _signed_download_call(request)
    package_id = _parse_package_id(package_value)
    state = request.app[STATE]

    async def authorize(connection: aiosqlite.Connection, caller: Caller) -> None:
        package = await packages.find(connection, package_id)
        if package is None or package["file_name"] is None:
            log.warning(
                "rejected download: hostname=%s remote=%s package=%d reason=no such file",
                caller.hostname, call.remote, package_id,
            )
            raise NotFound(f"package {package_id} has no file to download")
        if not await jobs.has_pending_job_for_package(
            connection, caller.computer_id, package_id, call.remote
        ):
            raise Rejected(
                f"computer {caller.hostname} has no pending job for package {package_id}"
            )

    caller = await authenticate(state.database, state.config.agent, call, authorize)
    package = await _find_package_file(state.database, package_id)
    path = await package_download.verified_payload(state.database, state.depot, package)
    log.info(
        "computer %s downloads package %d (range %s)", caller.hostname, package_id,
        request.headers.get("Range", "none"),
    )
    return package_download.PackageFileResponse(
        path, package_id, package["sha256"], views
    )


def _plain_download_call(request: web.Request) -> tuple[AgentCall, str]:
    query = request.query
    params = {
        "hostname": query.get("hostname"),
        "uid": query.get("uid", ""),
        "agent-key": query.get("agent-key"),
    }
    call = AgentCall(DOWNLOAD_METHOD, params, b"", None, client_address(request))
    return call, query["id"]


async def _signed_download_call(request: web.Request) -> tuple[AgentCall, object]:
    _require_json_content_type(request)
    rpc = await _read_rpc(request)
    if rpc.method != DOWNLOAD_METHOD:
        raise MethodNotFound(
            f"method {rpc.method!r} is not a download; use POST for other methods"
        )
    signature = request.headers.get(SIGNATURE_HEADER)
    if signature is None:
        raise Unauthorized(f"{DOWNLOAD_METHOD} requires the {SIGNATURE_HEADER} header")
    call = AgentCall.from_rpc(rpc, signature, client_address(request))
    return call, rpc.params.get("package-id")


def _parse_package_id(value: object) -> int:
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    raise InvalidParams(f"package id {value!r} is not a package id")


async def _find_package_file(database: Database, package_id: int) -> Row:
    async with database.reader() as connection:
        package = await packages.find(connection, package_id)
    if package is None or package["file_name"] is None:
        raise NotFound(f"package {package_id} has no file to download")
    return package
