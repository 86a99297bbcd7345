"""ocoserver as a library: start a server inside a test rig and drive it.

`OcoServer` runs the real application on a free port of 127.0.0.1 in the
caller's event loop; `SyncOcoServer` runs it in an event loop on a
background thread for rigs without asyncio. Their methods call the same
store functions as the CLI, on the server's own database connection, and
raise AdminError for a value the store rejects (an unknown hostname, a
duplicate package version).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import threading
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from aiohttp import web

from ocoserver import datalock, timefmt
from ocoserver.app import create_app
from ocoserver.appkeys import STATE, ServerState
from ocoserver.client_http import CLIENT_PATH
from ocoserver.config import Config
from ocoserver.db import Database
from ocoserver.errors import AdminError
from ocoserver.store import api_keys, computers, containers, jobs, packages, targets

log = logging.getLogger("ocoserver.embed")

T = TypeVar("T")

# Seconds between two database reads while waiting for a job.
POLL_INTERVAL = 0.05


class OcoServer:
    """A running ocoserver for the length of an `async with` block.

    `data_dir` contains the database and the depot, as `--data-dir` does; an
    existing one is used as it is. `config` supplies every other setting.
    """

    def __init__(
        self,
        data_dir: Path | str,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        config: Config | None = None,
    ) -> None:
        self.config = (config or Config()).with_overrides(
            data_dir=str(data_dir), host=host, port=port
        )
        self._runner: web.AppRunner | None = None
        self._lock = contextlib.ExitStack()
        self._state: ServerState | None = None
        self.port = 0

    async def __aenter__(self) -> OcoServer:
        # The same lock as `python -m ocoserver`: one server per data directory.
        lock = contextlib.ExitStack()
        lock.enter_context(datalock.hold(self.config.data_dir, "embedded ocoserver"))
        app = create_app(self.config)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        try:
            await runner.setup()
            site = web.TCPSite(runner, self.config.server.host, self.config.server.port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            lock.close()
            raise
        self._lock = lock
        self._runner = runner
        self._state = app[STATE]
        self.port = _bound_port(runner)
        log.info("embedded ocoserver serving on %s", self.url)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
            self._lock.close()
            log.info("embedded ocoserver stopped")

    @property
    def url(self) -> str:
        """Base URL, such as http://127.0.0.1:41234."""
        return f"http://{self.config.server.host}:{self.port}"

    @property
    def agent_url(self) -> str:
        """The api-url to configure agents with."""
        return f"{self.url}/api-agent.php"

    @property
    def client_url(self) -> str:
        """The client API endpoint."""
        return f"{self.url}{CLIENT_PATH}"

    @property
    def database(self) -> Database:
        if self._state is None:
            raise RuntimeError(
                "the server is not running; use 'async with OcoServer(...)'"
            )
        return self._state.database

    async def add_computer(self, hostname: str, notes: str = "") -> int:
        """Pre-register a computer and return its id."""
        return await computers.add(self.database, hostname, notes)

    async def add_package(
        self,
        source: Path | str | None,
        *,
        name: str,
        version: str,
        install: str,
        **options: Any,
    ) -> int:
        """Add a package from a ZIP file, a folder or None; return its id.

        `options` are the other PackageSpec fields, such as uninstall_procedure,
        success_codes or post_action.
        """
        codes = options.get("success_codes")
        if isinstance(codes, list | tuple):
            options["success_codes"] = ",".join(str(code) for code in codes)
        spec = _build(
            packages.PackageSpec,
            family=name, version=version, install_procedure=install, **options,
        )
        path = None if source is None else Path(source)
        return await packages.add(self.database, self.config.depot_path, spec, path)

    async def deploy(
        self,
        name: str,
        *,
        packages: list[int],
        computers: list[int | str],
        **options: Any,
    ) -> int:
        """Create a job container and return its id.

        `computers` are ids or hostnames. `options` are the other Deployment
        fields, such as start_time, priority, force, upgrade or uninstall.
        """
        database = self.database
        items: list[targets.PackageItem] = [("package", number) for number in packages]
        options.setdefault("start_time", timefmt.now_text())
        deployment = _build(
            jobs.Deployment,
            name=name,
            package_ids=await targets.package_ids(database, items),
            computer_ids=await self._computer_ids(computers),
            **options,
        )
        return await jobs.create_container(database, deployment)

    async def _computer_ids(self, refs: list[int | str]) -> list[int]:
        ids = []
        for ref in refs:
            if isinstance(ref, str):
                ref = (await computers.get_by_hostname(self.database, ref))["id"]
            ids.append(ref)
        return await targets.computer_ids(self.database, ids, [])

    async def add_api_key(self, name: str, scope: str) -> str:
        """Create a client API key and return it."""
        _, key = await api_keys.add(self.database, name, scope)
        return key

    async def wait_for_job(
        self,
        job_id: int | None = None,
        *,
        container_id: int | None = None,
        timeout: float = 30.0,
    ) -> dict[str, Any]:
        """Wait until a job, or every job of a container, has a final state.

        Returns the job (with `state` and `state_name`), or for a container
        its summary with job counts by state and its `jobs`. Raises
        TimeoutError naming the states still open after `timeout` seconds.
        """
        if (job_id is None) == (container_id is None):
            raise ValueError("give either job_id or container_id")
        deadline = time.monotonic() + timeout
        while True:
            found = await self._final_state(job_id, container_id)
            if found.done:
                return found.value
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"{found.label} not finished within {timeout:g} s: {found.open}"
                )
            await asyncio.sleep(POLL_INTERVAL)

    async def _final_state(
        self, job_id: int | None, container_id: int | None
    ) -> _WaitResult:
        if job_id is not None:
            job = _job_record(await jobs.get_job(self.database, job_id))
            done = job["state"] not in jobs.ACTIVE_STATES
            return _WaitResult(done, job, f"job {job_id}", job["state_name"])
        assert container_id is not None
        summary = dict(await containers.get_summary(self.database, container_id))
        rows = await jobs.list_jobs(self.database, container_id=container_id)
        summary["jobs"] = [_job_record(row) for row in rows]
        open_jobs = [
            job for job in summary["jobs"] if job["state"] in jobs.ACTIVE_STATES
        ]
        states = ", ".join(f"job {job['id']} {job['state_name']}" for job in open_jobs)
        return _WaitResult(
            not open_jobs, summary, f"job container {container_id}", states
        )


@dataclass(frozen=True)
class _WaitResult:
    done: bool
    value: dict[str, Any]
    label: str
    # The states still open, for the timeout message.
    open: str


def _build(kind: type[T], **fields: Any) -> T:
    """Build a dataclass from keyword options, naming an unknown option."""
    known = {field.name for field in dataclasses.fields(kind)}  # type: ignore[arg-type]
    unknown = sorted(set(fields) - known)
    if unknown:
        raise AdminError(
            f"unknown option {unknown[0]!r}; known options: {', '.join(sorted(known))}"
        )
    return kind(**fields)


def _job_record(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "state_name": jobs.STATE_NAMES.get(row["state"], "unknown")}


def _bound_port(runner: web.AppRunner) -> int:
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            return int(address[1])
    raise RuntimeError("the server has no TCP address")


class SyncOcoServer:
    """OcoServer for code without asyncio, used as `with SyncOcoServer(...)`.

    The server's event loop runs on a background thread; each method blocks
    until the call on that loop has finished.
    """

    def __init__(self, data_dir: Path | str, **options: Any) -> None:
        self._server = OcoServer(data_dir, **options)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="ocoserver", daemon=True
        )

    def __enter__(self) -> SyncOcoServer:
        self._thread.start()
        try:
            self._run(self._server.__aenter__())
        except BaseException:
            self._stop_loop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            self._run(self._server.__aexit__(exc_type, exc, traceback))
        finally:
            self._stop_loop()

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    @property
    def url(self) -> str:
        return self._server.url

    @property
    def agent_url(self) -> str:
        return self._server.agent_url

    @property
    def client_url(self) -> str:
        return self._server.client_url

    def add_computer(self, hostname: str, notes: str = "") -> int:
        return self._run(self._server.add_computer(hostname, notes))

    def add_package(self, source: Path | str | None, **fields: Any) -> int:
        return self._run(self._server.add_package(source, **fields))

    def deploy(self, name: str, **fields: Any) -> int:
        return self._run(self._server.deploy(name, **fields))

    def add_api_key(self, name: str, scope: str) -> str:
        return self._run(self._server.add_api_key(name, scope))

    def wait_for_job(self, job_id: int | None = None, **options: Any) -> dict[str, Any]:
        return self._run(self._server.wait_for_job(job_id, **options))
