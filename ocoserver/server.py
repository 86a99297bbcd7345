"""Running the server process: bind, log the agent URL, stop on signals."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import signal

from aiohttp import web

from ocoserver import __version__, tls
from ocoserver.app import create_app
from ocoserver.config import Config

log = logging.getLogger("ocoserver.server")

# Seconds that running requests and downloads get to finish after a stop signal.
SHUTDOWN_TIMEOUT = 30.0


def agent_url(host: str, port: int, https: bool = False) -> str:
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
    files are invalid.
    """
    ssl_context = tls.server_context(config.server)
    runner = web.AppRunner(
        create_app(config), access_log=None, handle_signals=False,
        shutdown_timeout=SHUTDOWN_TIMEOUT,
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
        await site.start()
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
        log.info("stop signal received; finishing running requests")
    finally:
        await runner.cleanup()
        log.info("ocoserver stopped")


def _bound_port(runner: web.AppRunner, configured: int) -> int:
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            return int(address[1])
    return configured
