"""One simulated OCO agent: check-in, inventory, jobs, response checks.

A simulated agent checks every response the way a strict agent would and
raises ProtocolError, with a short kind such as `signature` or
`job-shape`, for anything a real agent would reject or stumble over.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

from ocoserver.simulate import payloads
from ocoserver.simulate.stats import Stats

SIGNATURE_HEADER = "x-oco-agent-signature"
SERVER_SIGNATURE_HEADER = "x-oco-server-signature"
TIME_PATTERN = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")
JOB_KEYS = frozenset(
    ("id", "container-id", "package-id", "download", "procedure", "sequence-mode",
     "restart", "shutdown", "exit")
)  # fmt: skip
HELLO_KEYS = ("server-key", "agent-key", "update", "logins-since", "software-jobs",
              "events")  # fmt: skip
DOWNLOAD_CHUNK = 256 * 1024


class ProtocolError(Exception):
    """A response that breaks the agent protocol; `kind` groups the summary."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass
class AgentIdentity:
    """The state an agent keeps between runs: its keys and last timestamps."""

    hostname: str
    generation: int
    agent_key: str = ""
    server_key: str = ""
    # True once the server issued keys to this agent.
    keys_received: bool = False
    last_timestamp: float = 0.0
    last_server_timestamp: float = 0.0


@dataclass
class SimulatedAgent:
    identity: AgentIdentity
    index: int
    url: str
    session: aiohttp.ClientSession
    stats: Stats
    software: list[dict[str, str]]
    started: float = field(default_factory=time.monotonic)
    finished_jobs: set[int | str] = field(default_factory=set)
    request_id: int = 0

    @property
    def generation(self) -> int:
        return self.identity.generation

    def uptime(self) -> float:
        return round(3600.0 + time.monotonic() - self.started, 3)

    async def check_in(self) -> None:
        """Run one agent cycle: hello, inventory when asked, then every job."""
        params = await self.hello()
        if params["update"] == 1:
            await self.send_inventory(params["logins-since"])
        for job in params["software-jobs"]:
            await self.run_job(job)

    async def hello(self) -> dict[str, Any]:
        data = payloads.hello_data(self.generation, self.index, self.uptime())
        params = await self.call("oco.agent.hello", data)
        _check_hello_shape(params, self.generation)
        self._take_keys(params)
        return params

    async def send_inventory(self, logins_since: str) -> None:
        identity = self.identity
        data = payloads.inventory_data(
            self.generation, identity.hostname, self.index, self.uptime(),
            self.software, logins_since,
        )  # fmt: skip
        await self.call("oco.agent.update", data)
        self.stats.inventories += 1

    async def run_job(self, job: dict[str, Any]) -> None:
        """Download the package if asked, then report downloading, executing, done."""
        job_id = job["id"]
        if job_id in self.finished_jobs:
            raise ProtocolError(
                "job-repeated", f"job {job_id!r} was sent again after it finished"
            )
        if job["download"]:
            await self._report(payloads.job_state_data(job_id, 1, progress=0))
            await self.download(job["package-id"])
            await self._report(payloads.job_state_data(job_id, 1, progress=101))
        await self._report(payloads.job_state_data(job_id, 2, progress=100))
        output = f"{job['procedure']}: done on {self.identity.hostname}\n"
        result = await self._report(payloads.job_state_data(job_id, 3, 0, output))
        self.finished_jobs.add(job_id)
        if result.get("job-succeeded") is True:
            self.stats.jobs_succeeded += 1
        else:
            self.stats.jobs_failed += 1

    async def _report(self, data: dict[str, Any]) -> dict[str, Any]:
        params = await self.call("oco.agent.update_job_state", data)
        if not isinstance(params.get("job-succeeded"), bool):
            raise ProtocolError(
                "shape", f"update_job_state returned job-succeeded "
                f"{params.get('job-succeeded')!r}, expected a boolean",
            )  # fmt: skip
        return params

    async def download(self, package_id: int) -> None:
        """Fetch a package ZIP the way this agent generation does and count its bytes."""
        if self.generation == 1:
            query = {
                "id": str(package_id), "hostname": self.identity.hostname,
                "uid": payloads.computer_uid(self.identity.hostname),
                "agent-key": self.identity.agent_key,
            }  # fmt: skip
            request = self.session.get(self.url, params=query)
        else:
            body, headers = self._build("oco.agent.download", None, package_id)
            request = self.session.get(self.url, data=body, headers=headers)
        started = time.perf_counter()
        async with request as response:
            if response.status != 200:
                text = await response.text()
                raise ProtocolError(f"http-{response.status}", f"download: {text[:200]}")
            received = 0
            async for chunk in response.content.iter_chunked(DOWNLOAD_CHUNK):
                received += len(chunk)
        self.stats.record("download", time.perf_counter() - started)
        self.stats.bytes_downloaded += received
        if response.content_length is not None and received != response.content_length:
            raise ProtocolError(
                "download-size", f"package {package_id}: received {received} bytes "
                f"of Content-Length {response.content_length}",
            )  # fmt: skip

    async def call(self, method: str, data: dict[str, Any]) -> dict[str, Any]:
        """Send one JSON-RPC request, check the response, return result.params."""
        body, headers = self._build(method, data)
        started = time.perf_counter()
        async with self.session.post(self.url, data=body, headers=headers) as response:
            raw = await response.read()
        self.stats.record(method, time.perf_counter() - started)
        if response.status != 200:
            raise ProtocolError(
                f"http-{response.status}", f"{method}: {raw[:300].decode(errors='replace')}"
            )
        try:
            payload = orjson.loads(raw)
        except orjson.JSONDecodeError as error:
            raise ProtocolError("json", f"{method}: response is not JSON: {error}") from None
        params = _check_envelope(payload, self.request_id, method)
        if self.generation == 2:
            self._check_signed(response, raw, payload, method)
        return params

    def _build(
        self, method: str, data: dict[str, Any] | None, package_id: int | None = None
    ) -> tuple[bytes, dict[str, str]]:
        identity = self.identity
        self.request_id += 1
        params: dict[str, Any] = {
            "uid": payloads.computer_uid(identity.hostname),
            "hostname": identity.hostname,
        }
        if self.generation == 1:
            params["agent-key"] = identity.agent_key
        else:
            params["timestamp"] = self._next_timestamp()
        if data is not None:
            params["data"] = data
        if package_id is not None:
            params["package-id"] = package_id
        body = orjson.dumps(
            {"jsonrpc": "2.0", "id": self.request_id, "method": method, "params": params}
        )
        headers = {"content-type": "application/json"}
        if self.generation == 2:
            headers[SIGNATURE_HEADER] = _hmac_hex(identity.agent_key, body)
        return body, headers

    def _next_timestamp(self) -> float:
        # Agents round to 4 decimals; a step keeps two requests in one
        # 0.1 ms apart, as the server rejects an exact repeat.
        value = max(round(time.time(), 4), round(self.identity.last_timestamp + 0.0001, 4))
        self.identity.last_timestamp = value
        return value

    def _check_signed(
        self, response: aiohttp.ClientResponse, raw: bytes, payload: Any, method: str
    ) -> None:
        """Check result.timestamp and the server signature as agent 1.2.0 does."""
        identity = self.identity
        timestamp = payload["result"].get("timestamp")
        if isinstance(timestamp, bool) or not isinstance(timestamp, int | float):
            raise ProtocolError("timestamp", f"{method}: result.timestamp {timestamp!r}")
        if timestamp <= identity.last_server_timestamp:
            raise ProtocolError(
                "timestamp", f"{method}: result.timestamp {timestamp} is not above "
                f"the last one, {identity.last_server_timestamp}",
            )  # fmt: skip
        identity.last_server_timestamp = float(timestamp)
        if response.charset != "utf-8":
            raise ProtocolError("content-type", f"{method}: charset {response.charset!r}")
        params = payload["result"]["params"]
        server_key = identity.server_key
        if method == "oco.agent.hello" and params.get("server-key"):
            server_key = params["server-key"]
        signature = response.headers.get(SERVER_SIGNATURE_HEADER, "")
        text = raw.decode("utf-8")
        if not hmac.compare_digest(_hmac_hex(server_key, text.encode("utf-8")), signature):
            raise ProtocolError("signature", f"{method}: server signature does not match")

    def _take_keys(self, params: dict[str, Any]) -> None:
        """Store issued keys; keys sent again after that are a protocol error."""
        identity = self.identity
        agent_key, server_key = params["agent-key"], params["server-key"]
        if agent_key is not None:
            if identity.keys_received:
                raise ProtocolError("keys", "hello sent a new agent-key a second time")
            if not isinstance(agent_key, str) or not isinstance(server_key, str):
                raise ProtocolError("keys", "issued keys are not strings")
            identity.agent_key, identity.server_key = agent_key, server_key
            identity.keys_received = True
            return
        if self.generation == 2 and server_key is not None:
            raise ProtocolError("keys", "server-key sent without a new agent-key")
        if self.generation == 1 and server_key != identity.server_key:
            raise ProtocolError("keys", "server-key differs from the stored one")


def _hmac_hex(key: str, body: bytes) -> str:
    return hmac.new(key.encode("utf-8"), body, hashlib.sha256).hexdigest()


def _check_envelope(payload: Any, request_id: int, method: str) -> dict[str, Any]:
    if not isinstance(payload, dict) or payload.get("id") != request_id:
        raise ProtocolError("envelope", f"{method}: response id does not match")
    if payload.get("error") is not None:
        raise ProtocolError("envelope", f"{method}: error {payload['error']!r}")
    result = payload.get("result")
    if not isinstance(result, dict) or result.get("success") is not True:
        raise ProtocolError("envelope", f"{method}: result.success is not true")
    params = result.get("params")
    if not isinstance(params, dict):
        raise ProtocolError("envelope", f"{method}: result.params is not an object")
    return params


def _check_hello_shape(params: dict[str, Any], generation: int) -> None:
    missing = [key for key in HELLO_KEYS if key not in params]
    if generation == 2 and not isinstance(params.get("update-passwords"), list):
        missing.append("update-passwords")
    if missing:
        raise ProtocolError("hello-shape", f"hello lacks {', '.join(missing)}")
    if params["update"] not in (0, 1):
        raise ProtocolError("hello-shape", f"update is {params['update']!r}, not 0 or 1")
    if not TIME_PATTERN.match(str(params["logins-since"])):
        raise ProtocolError("hello-shape", f"logins-since {params['logins-since']!r}")
    if not isinstance(params["events"], list):
        raise ProtocolError("hello-shape", "events is not a list")
    jobs = params["software-jobs"]
    if not isinstance(jobs, list):
        raise ProtocolError("job-shape", "software-jobs is not a list")
    for job in jobs:
        _check_job_shape(job)


def _check_job_shape(job: Any) -> None:
    if not isinstance(job, dict) or set(job) != JOB_KEYS:
        raise ProtocolError("job-shape", f"job entry {job!r} has other keys")
    job_id = job["id"]
    if not (isinstance(job_id, int) or str(job_id).startswith("dynamic-")):
        raise ProtocolError("job-shape", f"job id {job_id!r}")
    if not isinstance(job["download"], bool) or not isinstance(job["procedure"], str):
        raise ProtocolError("job-shape", f"job {job_id}: download or procedure type")
    if not isinstance(job["package-id"], int) or job["sequence-mode"] not in (0, 1):
        raise ProtocolError("job-shape", f"job {job_id}: package-id or sequence-mode")
