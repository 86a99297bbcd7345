"""Running the server process: bind, log the agent URL, stop on signals.

On SIGTERM or SIGINT the server first closes its listening socket, so new
connections are refused. Running requests and downloads then get up to
`server.shutdown_timeout` seconds to finish before they are cancelled, and
the database is closed with a WAL checkpoint.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import signal
import socket
import ssl

from aiohttp import web

from ocoserver import __version__, datalock, tls
from ocoserver.app import create_app
from ocoserver.config import Config

log = logging.getLogger("ocoserver.server")


def agent_url(host: str, port: int, https: bool = False) -> str:
    """Return the api-url for agents; for a wildcard address, use this machine's name."""
    if host in ("0.0.0.0", "::", ""):
        host = socket.getfqdn()
    shown = f"[{host}]" if ":" in host else host
    scheme = "https" if https else "http"
    return f"{scheme}://{shown}:{port}/api-agent.php"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def serve(config: Config) -> None:
    """Serve until SIGINT or SIGTERM, then finish running requests and close.

    Raises ConfigError before binding or opening the database when the TLS
    files are invalid, and DataDirInUse when another server or a restore
    uses the data directory.
    """
    ssl_context = tls.server_context(config.server)
    with datalock.hold(config.data_dir, "ocoserver server"):
        await _serve_locked(config, ssl_context)


class ListenError(RuntimeError):
    """A failure to listen on the configured host and port."""


async def _serve_locked(config: Config, ssl_context: ssl.SSLContext | None) -> None:
    # NOTE: aiohttp waits up to `timeout` for running handlers, then cancels
    # them and waits up to `timeout` again, so a stop can take twice as long
    # when a cancelled handler is slow to end.
    timeout = config.server.shutdown_timeout
    runner = web.AppRunner(
        create_app(config), access_log=None, handle_signals=False,
        shutdown_timeout=timeout,
    )
    await runner.setup()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        site = web.TCPSite(
            runner, config.server.host, config.server.port, ssl_context=ssl_context
        )
        try:
            await site.start()
        except OSError as error:
            raise ListenError(
                f"cannot listen on {config.server.host}:{config.server.port}: "
                f"{error.strerror or error}; choose another --host or --port"
            ) from None
        port = _bound_port(runner, config.server.port)
        https = ssl_context is not None
        log.info("ocoserver %s serving %s on %s:%d (data directory %s)", __version__,
                 "HTTPS" if https else "HTTP", config.server.host, port,
                 config.data_dir.resolve())
        log.info("agent api-url: %s", agent_url(config.server.host, port, https))
        if not https and not _is_loopback(config.server.host):
            log.warning(
                "serving plain HTTP on %s: the agent keys of agents up to 1.1.6 "
                "and all inventories cross the network unencrypted; set "
                "server.tls_cert and server.tls_key or put a TLS reverse proxy "
                "in front", config.server.host,
            )
        await stop.wait()
        log.info(
            "stop signal received; refusing new connections, waiting up to %g s "
            "for running requests on %d open connections", timeout,
            _open_connections(runner),
        )
    finally:
        await runner.cleanup()
    log.info("ocoserver stopped")


def _open_connections(runner: web.AppRunner) -> int:
    return len(runner.server.connections) if runner.server is not None else 0


def _bound_port(runner: web.AppRunner, configured: int) -> int:
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            return int(address[1])
    return configured
