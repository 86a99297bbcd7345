"""The agent endpoint: JSON-RPC over POST and package downloads over GET.

`/api-agent.php` is the path agents are configured with; `/agent` is an
alias. POST carries a JSON-RPC request. GET is a package download, either
generation 1 (`?id=&hostname=&uid=&agent-key=`, no body) or generation 2
(a signed `oco.agent.download` JSON-RPC body sent with GET).
"""

from __future__ import annotations

import asyncio
import logging

import aiosqlite
from aiohttp import ClientPayloadError, web
from aiohttp.web_protocol import RequestPayloadError

from ocoserver import package_download
from ocoserver.agent_auth import AgentCall, Authorizer, Caller, authenticate
from ocoserver.agent_methods import METHODS, MethodContext
from ocoserver.appkeys import RPC_ID, STATE, ServerState
from ocoserver.client_address import client_address
from ocoserver.db import Database, Row
from ocoserver.errors import (
    InvalidRequest,
    MethodNotFound,
    NotFound,
    NotPermitted,
    PayloadTooLarge,
    RequestTimeout,
    Unauthorized,
    preview,
)
from ocoserver.logtext import quote
from ocoserver.params import read_int
from ocoserver.request_body import broken_body_message, close_after_response
from ocoserver.rpc import JSON_CONTENT_TYPE, RpcRequest, parse_request, success_body
from ocoserver.signing import SERVER_SIGNATURE_HEADER, SIGNATURE_HEADER, sign
from ocoserver.store import jobs, packages, rule_jobs

log = logging.getLogger("ocoserver.agent")

AGENT_PATHS = ("/api-agent.php", "/agent")
DOWNLOAD_METHOD = "oco.agent.download"


def add_routes(app: web.Application) -> None:
    for path in AGENT_PATHS:
        app.router.add_post(path, handle_rpc)
        app.router.add_get(path, handle_download)
    app.on_response_prepare.append(package_download.set_package_etag)


def _require_json_content_type(request: web.Request) -> None:
    """Reject a body not declared as JSON in UTF-8, the only encoding of JSON.

    RFC 8259 requires UTF-8 for JSON exchanged between systems, so a
    charset parameter may name nothing else.
    """
    if request.content_type != "application/json":
        raise InvalidRequest(
            f"Content-Type {preview(request.content_type)} is not accepted; "
            "send application/json"
        )
    charset = request.charset
    if charset is not None and charset.lower() not in ("utf-8", "utf8"):
        raise InvalidRequest(
            f"charset {preview(charset)} is not accepted; JSON must be sent as utf-8"
        )


async def _read_rpc(request: web.Request) -> RpcRequest:
    rpc = parse_request(await _read_body(request))
    request[RPC_ID] = rpc.request_id
    return rpc


def _admit(request: web.Request) -> str:
    """Return the client address of an agent request, rejecting a blocked one.

    This is the one place that decides the address which authentication
    failures count against and which the agent methods record.
    """
    remote = client_address(request)
    request.app[STATE].throttle.check(remote)
    return remote


async def _read_body(request: web.Request) -> bytes:
    """Read the body, rejecting a declared length over the limit before reading.

    aiohttp stops a longer body, chunked or not, at `client_max_size` while
    reading it.
    """
    limit = request.app[STATE].config.server.max_body_size
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(
            f"request body of {request.content_length} bytes exceeds the limit of "
            f"{limit} bytes (server.max_body_size)"
        )
    timeout = request.app[STATE].config.server.body_timeout
    try:
        async with asyncio.timeout(timeout):
            return await request.read()
    except (ClientPayloadError, RequestPayloadError) as error:
        raise broken_body_error(request, error, "request body") from None
    except TimeoutError:
        raise RequestTimeout(
            f"request body not received within {timeout:g} seconds "
            "(server.body_timeout)"
        ) from None


def broken_body_error(
    request: web.Request, error: Exception, body_name: str
) -> InvalidRequest:
    """Build the error for a body that failed to read and close the connection.

    The connection closes after the response (see `close_after_response`).
    """
    close_after_response(request)
    return InvalidRequest(broken_body_message(request, error, body_name))


async def handle_rpc(request: web.Request) -> web.Response:
    """Validate and authenticate a JSON-RPC agent request, run it, sign the response."""
    remote = _admit(request)
    _require_json_content_type(request)
    rpc = await _read_rpc(request)
    method = METHODS.get(rpc.method)
    if method is None:
        raise MethodNotFound(f"method {preview(rpc.method)} does not exist")
    # Validating before authenticating means an invalid request changes nothing.
    arguments = method.read(rpc)
    check = method.check(arguments) if method.check is not None else None
    state = request.app[STATE]
    signature = request.headers.get(SIGNATURE_HEADER)
    caller = await _authenticate(
        state, AgentCall.from_rpc(rpc, signature, remote), check
    )
    context = MethodContext(
        state.database, caller, rpc, remote, state.config.password_key_path,
        arguments=arguments, agent_config=state.config.agent,
    )
    params = await method.run(context)
    return await _respond(request, caller, rpc, params)


async def _authenticate(
    state: ServerState, call: AgentCall, authorize: Authorizer | None
) -> Caller:
    """Authenticate `call`, adding a rejection with its reason to the dashboard."""
    try:
        return await authenticate(
            state.database, state.config.agent, call, authorize,
            throttle=state.throttle,
        )  # fmt: skip
    except Unauthorized as error:
        hostname = call.params.get("hostname")
        reason = getattr(error, "log_detail", None) or error.message
        state.throttle.record_rejection(
            call.remote, hostname if isinstance(hostname, str) else "", reason
        )
        raise


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
    remote = _admit(request)
    views = package_download.RequestViews.capture(request)
    if "id" in request.query:
        call, package_value = _plain_download_call(request, remote)
    else:
        call, package_value = await _signed_download_call(request, remote)
    package_id = _parse_package_id(package_value)
    state = request.app[STATE]

    async def authorize(connection: aiosqlite.Connection, caller: Caller) -> None:
        package = await packages.find(connection, package_id)
        if package is None or package["file_name"] is None:
            log.warning(
                "rejected download: remote=%s hostname=%s package=%d "
                "reason=\"no such file\"",
                quote(call.remote), quote(caller.hostname), package_id,
            )
            raise NotFound(f"package {package_id} has no file to download")
        if not (
            await jobs.has_pending_job_for_package(
                connection, caller.computer_id, package_id, call.remote
            )
            or await rule_jobs.has_pending_job_for_package(
                connection, caller.computer_id, package_id
            )
        ):
            raise NotPermitted(
                f"computer {caller.hostname} has no pending job for package {package_id}"
            )

    caller = await _authenticate(state, call, authorize)
    package = await _find_package_file(state.database, package_id)
    path = await package_download.verified_payload(state.database, state.depot, package)
    log.info(
        "computer %s downloads package %d (range %s)", quote(caller.hostname), package_id,
        quote(request.headers.get("Range", "none")),
    )
    return package_download.PackageFileResponse(
        path, package_id, package["sha256"], views
    )


def _plain_download_call(
    request: web.Request, remote: str
) -> tuple[AgentCall, object]:
    query = request.query
    params = {
        "hostname": query.get("hostname"),
        "uid": query.get("uid", ""),
        "agent-key": query.get("agent-key"),
    }
    call = AgentCall(DOWNLOAD_METHOD, params, b"", None, remote)
    return call, query["id"]


async def _signed_download_call(
    request: web.Request, remote: str
) -> tuple[AgentCall, object]:
    _require_json_content_type(request)
    rpc = await _read_rpc(request)
    if rpc.method != DOWNLOAD_METHOD:
        raise MethodNotFound(
            f"method {preview(rpc.method)} is not a download; use POST for other "
            "methods"
        )
    signature = request.headers.get(SIGNATURE_HEADER)
    if signature is None:
        raise Unauthorized(f"{DOWNLOAD_METHOD} requires the {SIGNATURE_HEADER} header")
    call = AgentCall.from_rpc(rpc, signature, remote)
    return call, rpc.params.get("package-id")


def _parse_package_id(value: object) -> int:
    return read_int(value, "package id", minimum=1)


async def _find_package_file(database: Database, package_id: int) -> Row:
    async with database.reader() as connection:
        package = await packages.find(connection, package_id)
    if package is None or package["file_name"] is None:
        raise NotFound(f"package {package_id} has no file to download")
    return package
