"""Running the server process: bind, log the agent URL, stop on signals.

On SIGTERM or SIGINT the server first closes its listening socket, so new
connections are refused. Running requests and downloads then get up to
`server.shutdown_timeout` seconds to finish before they are cancelled, and
the database is closed with a WAL checkpoint.
"""

from __future__ import annotations

import asyncio
import logging
import signal

from aiohttp import web

from ocoserver import __version__, datalock
from ocoserver.app import create_app
from ocoserver.config import Config

log = logging.getLogger("ocoserver.server")


def agent_url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/api-agent.php"


async def serve(config: Config) -> None:
    """Serve until SIGINT or SIGTERM, then finish running requests and close.

    Raises DataDirInUse when another server or a restore uses the data
    directory.
    """
    with datalock.hold(config.data_dir, "ocoserver server"):
        await _serve_locked(config)


async def _serve_locked(config: Config) -> None:
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
        site = web.TCPSite(runner, config.server.host, config.server.port)
        await site.start()
        port = _bound_port(runner, config.server.port)
        log.info("ocoserver %s serving on %s:%d (data directory %s)", __version__,
                 config.server.host, port, config.data_dir.resolve())
        log.info("agent api-url: %s", agent_url(config.server.host, port))
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
