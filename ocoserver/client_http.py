"""The client API endpoint: administration over HTTP with API keys.

`/api-client.php` takes a JSON-RPC 2.0 request over POST, in the method
names of the OCO client API (see client_methods.py). The key travels as
`params.api_key` or as the password of HTTP Basic authentication; the
Basic user name is ignored. `/api-client/package-upload` takes a package
payload as the body of a PUT and streams it into the depot.

Errors use the JSON-RPC error objects of the agent endpoint, built by the
error middleware in app.py. While at least one key exists, every
request that gets past the JSON-RPC envelope is written to the audit log
with its outcome, and every failed
key counts against the client address like a failed agent authentication.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import orjson
from aiohttp import ClientPayloadError, hdrs, web
from aiohttp.web_protocol import RequestPayloadError

from ocoserver import depot
from ocoserver.agent_http import (
    _read_body,
    _require_json_content_type,
    broken_body_error,
)
from ocoserver.appkeys import RPC_ID, STATE, ServerState
from ocoserver.client_address import client_address
from ocoserver.client_methods import METHODS, ClientContext
from ocoserver.client_params import read_data
from ocoserver.db import Row
from ocoserver.errors import (
    INTERNAL_ERROR,
    ActionFailed,
    AdminError,
    Forbidden,
    MethodNotFound,
    PayloadTooLarge,
    RequestTimeout,
    RpcError,
    Unauthorized,
    preview,
)
from ocoserver.logtext import quote
from ocoserver.rpc import JSON_CONTENT_TYPE, parse_request
from ocoserver.store import api_keys, uploads
from ocoserver.store.api_keys import AuditEntry

log = logging.getLogger("ocoserver.client_api")

T = TypeVar("T")

CLIENT_PATH = "/api-client.php"
UPLOAD_PATH = "/api-client/package-upload"
UPLOAD_METHOD = "package-upload"

# The name under which the dashboard lists failed key attempts. The
# throttle counts them per address only: a key claims no name, and a key
# of 256 random bits cannot be guessed by spreading tries over addresses.
THROTTLE_NAME = "client-api"

# Data fields whose values the audit log keeps as the call's targets.
TARGET_FIELDS = (
    "id", "computer_id", "computer_group_id", "package_id", "package_group_id",
    "computer_ids", "computer_group_ids", "package_ids", "package_group_ids",
    "hostname", "upload_id", "name", "package_family_name", "version",
)  # fmt: skip
MAX_TARGET_ITEMS = 100
MAX_TARGET_TEXT = 200


def add_routes(app: web.Application) -> None:
    app.router.add_post(CLIENT_PATH, handle_rpc)
    app.router.add_put(UPLOAD_PATH, handle_upload)


def _admit(request: web.Request) -> str:
    """Return the client address, rejecting one blocked by the throttle."""
    remote = client_address(request)
    request.app[STATE].throttle.check(remote)
    return remote


async def handle_rpc(request: web.Request) -> web.Response:
    """Authenticate a client API request, check the key's scope, run the method."""
    remote = _admit(request)
    _require_json_content_type(request)
    rpc = parse_request(await _read_body(request))
    request[RPC_ID] = rpc.request_id
    state = request.app[STATE]
    await _require_enabled(state)
    entry = AuditEntry(rpc.method, None, None, remote, _targets(rpc.params.get("data")))

    async def call() -> Any:
        key = await _authenticate(request, state, rpc.params.get("api_key"))
        entry.key_id, entry.key_name = key["id"], key["name"]
        method = METHODS.get(rpc.method)
        if method is None:
            raise MethodNotFound(f"method {preview(rpc.method)} does not exist")
        _check_scope(key, method.scope, rpc.method)
        context = ClientContext(state.database, state.config, key, remote)
        return await method.run(context, read_data(rpc.params))

    data = await _audited(state, entry, call)
    if isinstance(data, dict) and isinstance(data.get("id"), int):
        entry.targets["result_id"] = data["id"]
    await api_keys.record_call(state.database, entry)
    log.debug("client API call %s by key %r succeeded", rpc.method, entry.key_name)
    body = {"jsonrpc": "2.0", "id": rpc.request_id, "error": None,
            "result": {"success": True, "data": data}}  # fmt: skip
    return web.Response(
        body=orjson.dumps(body), headers={"Content-Type": JSON_CONTENT_TYPE}
    )


async def _audited(
    state: ServerState, entry: AuditEntry, call: Callable[[], Awaitable[T]]
) -> T:
    """Run `call`, writing the audit row with the error code when it fails.

    `call` fills in the key of `entry` once it is known. The caller writes
    the row on success, after adding what the result names.
    """
    try:
        return await call()
    except AdminError as error:
        failure: RpcError = ActionFailed(str(error))
        entry.error_code = failure.code
        await api_keys.record_call(state.database, entry)
        raise failure from None
    except RpcError as error:
        entry.error_code = error.code
        await api_keys.record_call(state.database, entry)
        raise
    except Exception:
        entry.error_code = INTERNAL_ERROR
        await api_keys.record_call(state.database, entry)
        raise


async def _require_enabled(state: ServerState) -> None:
    """Reject every request while no API key exists.

    These requests are not audited: nobody can use the API yet, and an
    unauthenticated client could otherwise fill the audit log.
    """
    if not await api_keys.has_active(state.database):
        raise Forbidden(
            "the client API is disabled because no API key exists; create one "
            "with 'ocoserver api-key add NAME --scope read|deploy|admin'"
        )


async def _authenticate(
    request: web.Request, state: ServerState, params_key: Any
) -> Row:
    """Return the key row for the presented key, or raise.

    `params.api_key` is used when present, so that an OCO client that sends
    its own Basic credentials and the key in params still works.
    """
    key = params_key if isinstance(params_key, str) and params_key else None
    if key is None:
        key = _basic_password(request)
    row = None if key is None else await api_keys.find_by_key(state.database, key)
    if row is None:
        remote = client_address(request)
        reason = "no key sent" if key is None else "unknown or revoked key"
        state.throttle.record_failure(remote, None)
        state.throttle.record_rejection(remote, THROTTLE_NAME, reason)
        log.warning(
            "rejected client API request: remote=%s path=%s reason=%s",
            quote(remote),
            request.path,
            reason,
        )
        raise Unauthorized(
            "missing API key: send it as params.api_key or as the HTTP Basic password"
            if key is None
            else "invalid or revoked API key"
        )
    return row


def _basic_password(request: web.Request) -> str | None:
    """Return the password of an HTTP Basic Authorization header (RFC 7617)."""
    scheme, _, encoded = request.headers.get(hdrs.AUTHORIZATION, "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        credentials = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    _, _, password = credentials.partition(":")
    return password or None


def _check_scope(key: Row, required: str, method: str) -> None:
    if not api_keys.scope_allows(key["scope"], required):
        raise Forbidden(
            f"API key {key['name']!r} has scope {key['scope']}; {method} needs "
            f"scope {required} or higher"
        )


def _targets(data: Any) -> dict[str, object]:
    """Pick the ids and names a call acts on from its data, for the audit log."""
    if not isinstance(data, dict):
        return {}
    found: dict[str, object] = {}
    for name in TARGET_FIELDS:
        value = data.get(name)
        if _is_target_value(value):
            found[name] = value
        elif isinstance(value, list):
            items = value[:MAX_TARGET_ITEMS]
            found[name] = [item for item in items if _is_target_value(item)]
    return found


def _is_target_value(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (
        isinstance(value, str) and len(value) <= MAX_TARGET_TEXT
    )


async def handle_upload(request: web.Request) -> web.Response:
    """Stream a package payload into the depot and return its upload id."""
    remote = _admit(request)
    state = request.app[STATE]
    await _require_enabled(state)
    entry = AuditEntry(UPLOAD_METHOD, None, None, remote)

    async def call() -> dict[str, Any]:
        key = await _authenticate(request, state, None)
        entry.key_id, entry.key_name = key["id"], key["name"]
        _check_scope(key, "admin", UPLOAD_METHOD)
        limit = state.config.client_api.max_upload_size
        if request.content_length is not None and request.content_length > limit:
            raise PayloadTooLarge(
                f"upload of {request.content_length} bytes exceeds the limit of "
                f"{limit} bytes (client_api.max_upload_size)"
            )
        chunks = _body_chunks(request, state.config.server.body_timeout)
        payload = await depot.receive_payload(state.depot, chunks, limit)
        upload_id = await uploads.record(state.database, payload, key["name"])
        entry.targets["upload_id"] = upload_id
        return {"upload_id": upload_id, "size": payload.size, "sha256": payload.sha256}

    result = await _audited(state, entry, call)
    await api_keys.record_call(state.database, entry)
    return web.Response(
        body=orjson.dumps(result), headers={"Content-Type": JSON_CONTENT_TYPE}
    )


async def _body_chunks(request: web.Request, timeout: float) -> AsyncIterator[bytes]:
    """Yield the request body as it arrives; each read must finish in `timeout`."""
    while True:
        try:
            async with asyncio.timeout(timeout):
                chunk = await request.content.readany()
        except TimeoutError:
            raise RequestTimeout(
                f"upload stalled: no data within {timeout:g} seconds "
                "(server.body_timeout)"
            ) from None
        except (ClientPayloadError, RequestPayloadError) as error:
            raise broken_body_error(request, error, "upload body") from None
        if not chunk:
            return
        yield chunk
