"""The aiohttp application: state, middlewares and routes."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import hdrs, web

from ocoserver import agent_http, client_http, depot, housekeeping
from ocoserver import web as web_console
from ocoserver.appkeys import RPC_ID, STATE, ServerState
from ocoserver.auth_throttle import AuthThrottle
from ocoserver.client_address import client_address
from ocoserver.config import Config
from ocoserver.db import Database
from ocoserver.errors import (
    InternalError,
    InvalidRequest,
    PayloadTooLarge,
    RpcError,
    TooManyRequests,
)
from ocoserver.logtext import filter_malformed_requests, quote
from ocoserver.request_body import CLOSING, close_after_response
from ocoserver.rpc import JSON_CONTENT_TYPE, error_body
from ocoserver.signing import ResponseClock

log = logging.getLogger("ocoserver.app")
access_log = logging.getLogger("ocoserver.access")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _error_response(request: web.Request, error: RpcError) -> web.Response:
    body = error_body(request.get(RPC_ID), error)
    return web.Response(
        status=error.status,
        body=body,
        headers={"Content-Type": JSON_CONTENT_TYPE, **error.headers},
    )


@web.middleware
async def connection_close_middleware(
    request: web.Request, handler: Handler
) -> web.StreamResponse:
    """Mark the response `Connection: close` when the connection closes after it.

    The connection closes after a body that failed to read (see
    `close_after_response`). It also closes after a response that left an
    encoded body unread. aiohttp would otherwise read that body after the
    response, and a gzip body that does not decode makes it log a traceback.
    """
    try:
        response = await handler(request)
    except web.HTTPException as error:
        _mark_closing(request, error)
        raise
    _mark_closing(request, response)
    return response


def _mark_closing(request: web.Request, response: web.StreamResponse) -> None:
    if hdrs.CONTENT_ENCODING in request.headers and not request.content.is_eof():
        close_after_response(request)
    if request.get(CLOSING) and not response.prepared:
        response.force_close()


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn every error into a JSON-RPC error object with its HTTP status.

    This is the one place that builds error responses. An unexpected
    exception is logged here with its traceback and answered with a
    generic internal error, so no trace, SQL or key reaches a client.
    """
    started = time.perf_counter()
    try:
        response = await handler(request)
    except RpcError as error:
        if error.status >= 500:
            log.error("request %s %s failed: %s", request.method, request.path,
                      error.message)
        elif isinstance(error, TooManyRequests):
            # The block itself is logged once when it starts, so a flood of
            # rejected requests does not flood the log.
            log.debug("rejected request from blocked address %s", client_address(request))
        else:
            # The message can repeat client text such as a hostname, so it is
            # quoted to keep it on one line that no log filter misreads.
            log.info(
                "rejected request %s %s from %s: %s (%d)", request.method,
                request.path, client_address(request), quote(error.message), error.code,
            )
        response = _error_response(request, error)
    except web.HTTPRequestEntityTooLarge:
        # aiohttp raises this while reading a body, chunked or not, that
        # grows past client_max_size; the exception does not keep the limit.
        limit = request.app[STATE].config.server.max_body_size
        response = _error_response(
            request,
            PayloadTooLarge(
                f"request body exceeds the limit of {limit} bytes "
                "(server.max_body_size)"
            ),
        )
        log.warning("rejected request from %s: body too large", client_address(request))
    except web.HTTPException:
        raise
    except ConnectionResetError:
        # The client went away, for example in the middle of an upload. The
        # response below reaches no client, and aiohttp drops it quietly.
        log.info("client %s closed the connection during %s %s",
                 client_address(request), request.method, request.path)
        response = _error_response(
            request, InvalidRequest("the client closed the connection")
        )
    except Exception:
        log.exception("internal error in %s %s", request.method, request.path)
        response = _error_response(request, InternalError("internal server error"))
    access_log.debug(
        "%s %s %s %d %.1fms", client_address(request), request.method, request.path_qs
        if "agent-key" not in request.query else request.path,
        response.status, (time.perf_counter() - started) * 1000,
    )
    return response


def create_app(config: Config) -> web.Application:
    """Build the application; the database opens when the app starts."""
    filter_malformed_requests()
    app = web.Application(
        client_max_size=config.server.max_body_size,
        middlewares=[connection_close_middleware, error_middleware],
    )
    app.cleanup_ctx.append(_state_context(config))
    app.cleanup_ctx.append(housekeeping.housekeeping_context)
    agent_http.add_routes(app)
    client_http.add_routes(app)
    web_console.add_routes(app)
    return app


def _state_context(
    config: Config,
) -> Callable[[web.Application], AsyncIterator[None]]:
    async def open_state(app: web.Application) -> AsyncIterator[None]:
        config.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        config.depot_path.mkdir(parents=True, exist_ok=True)
        depot.remove_stale_uploads(config.depot_path)
        database = Database(config.database_path)
        await database.open()
        clock = ResponseClock()
        await clock.load(database)
        app[STATE] = ServerState(
            config=config,
            database=database,
            clock=clock,
            throttle=AuthThrottle(config.security),
        )
        yield
        await database.close()
        log.info("closed database %s with a WAL checkpoint", config.database_path)

    return open_state
