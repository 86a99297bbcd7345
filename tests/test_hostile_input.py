"""Malformed and hostile agent requests against the real server.

Every row of REJECTED is sent by a registered agent with valid keys (and,
for generation 2, a valid signature and a fresh timestamp), so the request
fails only for the hostile value. Each must get its HTTP status and
JSON-RPC error code and leave the database exactly as it was.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from ocoserver.config import Config
from ocoserver.store.inventory import LIST_TABLES
from tests.agents import AGENT_PATH, agent_dumps, snapshot
from tests.hostile import Fleet, FleetTemplate, build_template

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
UNAUTHORIZED = -32001
PAYLOAD_TOO_LARGE = -32013

WIDE_INTEGER = 2**70
Edit = Callable[[dict[str, Any], Fleet, int], Any]


@dataclass(frozen=True)
class Case:
    name: str
    fixture: str
    # Changes the request body in place, or returns raw bytes to send instead.
    edit: Edit
    status: int
    code: int
    generations: tuple[int, ...] = (1, 2)
    content_type: str = "application/json"
    http_method: str = "POST"


def data(values: dict[str, Any]) -> Edit:
    def edit(body: dict[str, Any], fleet: Fleet, generation: int) -> None:
        body["params"]["data"].update(copy.deepcopy(values))

    return edit


def params(values: dict[str, Any]) -> Edit:
    def edit(body: dict[str, Any], fleet: Fleet, generation: int) -> None:
        body["params"].update(copy.deepcopy(values))

    return edit


def envelope(values: dict[str, Any]) -> Edit:
    def edit(body: dict[str, Any], fleet: Fleet, generation: int) -> None:
        body.update(copy.deepcopy(values))

    return edit


def drop(*path: str) -> Edit:
    def edit(body: dict[str, Any], fleet: Fleet, generation: int) -> None:
        target = body
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]

    return edit


def raw(content: bytes) -> Edit:
    return lambda body, fleet, generation: content


def replaced(old: bytes, new: bytes) -> Edit:
    """Edit the serialized body, for what json.dumps cannot produce."""
    return lambda body, fleet, generation: agent_dumps(body).replace(old, new, 1)


def nested(depth: int) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = [value]
    return value


def job_of(owner: str) -> Edit:
    def edit(body: dict[str, Any], fleet: Fleet, generation: int) -> None:
        if owner == "own":
            body["params"]["data"]["job-id"] = fleet.own_job(generation)
        else:
            body["params"]["data"]["job-id"] = fleet.other_job(generation)

    return edit


LONG = "x" * 65537
HELLO = "hello.json"
UPDATE = "update.json"
STATE = "update_job_state-executing-output.json"
EVENTS = "events.json"
PASSWORDS = "passwords.json"
DOWNLOAD = "download.json"
GEN2_ONLY = (2,)
ONCE = (1,)

REJECTED = [
    # The body and its declared type.
    Case("not json", HELLO, raw(b"hello server"), 400, PARSE_ERROR, ONCE),
    Case("empty body", HELLO, raw(b""), 400, PARSE_ERROR, ONCE),
    Case("truncated json", HELLO, raw(b'{"jsonrpc": "2.0", "method": "oco.'), 400,
         PARSE_ERROR, ONCE),
    Case("form data declared json", HELLO, raw(b"hostname=lab-pc-01&agent-key=k"), 400,
         PARSE_ERROR, ONCE),
    Case("json declared text", HELLO, data({}), 400, INVALID_REQUEST,
         content_type="text/plain"),
    Case("json declared form", HELLO, data({}), 400, INVALID_REQUEST,
         content_type="application/x-www-form-urlencoded"),
    Case("latin-1 charset", HELLO, data({}), 400, INVALID_REQUEST,
         content_type="application/json; charset=iso-8859-1"),
    Case("invalid utf-8", HELLO, replaced(b'"ifb0"', b'"ifb\xff\xfe"'), 400,
         PARSE_ERROR),
    Case("raw control character", HELLO, replaced(b'"ifb0"', b'"ifb\x01"'), 400,
         PARSE_ERROR),
    Case("nan literal", HELLO, replaced(b'"uptime": ', b'"uptime": NaN, "x": '), 400,
         PARSE_ERROR),
    Case("infinity literal", HELLO,
         replaced(b'"uptime": ', b'"uptime": -Infinity, "x": '), 400, PARSE_ERROR),
    Case("nested too deep", UPDATE, data({"os": nested(40)}), 400, PARSE_ERROR),
    # json.dumps cannot build these, so the nesting goes into the bytes.
    Case("nested beyond decoder", UPDATE,
         replaced(b'"os": ', b'"os": ' + b"[" * 2000 + b"]" * 2000 + b', "x": '), 400,
         PARSE_ERROR, ONCE),
    Case("deep with lone surrogate", UPDATE,
         replaced(b'"os": ', b'"cpu": "\\udcfc", "os": ' + b"[" * 2000 + b"]" * 2000
                  + b', "x": '), 400, PARSE_ERROR, ONCE),
    # The JSON-RPC envelope.
    Case("batch array", HELLO, raw(b'[{"jsonrpc": "2.0"}]'), 400, INVALID_REQUEST,
         ONCE),
    Case("string body", HELLO, raw(b'"oco.agent.hello"'), 400, INVALID_REQUEST, ONCE),
    Case("method missing", HELLO, drop("method"), 400, INVALID_REQUEST),
    Case("method number", HELLO, envelope({"method": 7}), 400, INVALID_REQUEST),
    Case("method unknown", HELLO, envelope({"method": "oco.agent.reboot"}), 400,
         METHOD_NOT_FOUND),
    Case("method huge", HELLO, envelope({"method": "m" * 100000}), 400,
         INVALID_REQUEST),
    Case("id boolean", HELLO, envelope({"id": True}), 400, INVALID_REQUEST),
    Case("id object", HELLO, envelope({"id": {"n": 1}}), 400, INVALID_REQUEST),
    Case("id huge string", HELLO, envelope({"id": LONG}), 400, INVALID_REQUEST),
    Case("params array", HELLO, envelope({"params": [1, 2]}), 400, INVALID_PARAMS),
    Case("params null", HELLO, envelope({"params": None}), 400, INVALID_PARAMS),
    Case("data array", HELLO, params({"data": []}), 400, INVALID_PARAMS),
    Case("data string", UPDATE, params({"data": "inventory"}), 400, INVALID_PARAMS),
    Case("data missing", STATE, drop("params", "data"), 400, INVALID_PARAMS),
    # Identity.
    Case("hostname missing", HELLO, drop("params", "hostname"), 400, INVALID_PARAMS),
    Case("hostname number", HELLO, params({"hostname": 17}), 400, INVALID_PARAMS),
    Case("hostname array", UPDATE, params({"hostname": ["lab-pc-01"]}), 400,
         INVALID_PARAMS),
    Case("hostname newline", HELLO, params({"hostname": "lab-pc-01\nWARNING x"}), 400,
         INVALID_PARAMS),
    Case("hostname nul", HELLO, params({"hostname": "lab-pc-01\u0000"}), 400,
         INVALID_PARAMS),
    Case("hostname too long", HELLO, params({"hostname": "h" * 300}), 400,
         INVALID_PARAMS),
    Case("uid object", HELLO, params({"uid": {"id": 1}}), 400, INVALID_PARAMS),
    Case("uid number", HELLO, params({"uid": 12345}), 400, INVALID_PARAMS),
    Case("uid too long", HELLO, params({"uid": "u" * 200}), 400, INVALID_PARAMS),
    Case("agent-key number", HELLO, params({"agent-key": 12345}), 400,
         INVALID_PARAMS, ONCE),
    Case("timestamp string", HELLO, params({"timestamp": "soon"}), 400,
         INVALID_PARAMS, GEN2_ONLY),
    Case("timestamp out of range", HELLO,
         replaced(b'"timestamp": ', b'"timestamp": 1e400, "x": '), 400,
         INVALID_PARAMS, GEN2_ONLY),
    Case("timestamp far future", HELLO, params({"timestamp": 1e300}), 400,
         INVALID_PARAMS, GEN2_ONLY),
    # oco.agent.hello
    Case("networks object", HELLO, data({"networks": {"addr": "192.0.2.9"}}), 400,
         INVALID_PARAMS),
    Case("networks item string", HELLO, data({"networks": ["192.0.2.9"]}), 400,
         INVALID_PARAMS),
    Case("networks value too long", HELLO, data({"networks": [{"mac": LONG}]}), 400,
         INVALID_PARAMS),
    Case("services string", HELLO, data({"services": "all ok"}), 400, INVALID_PARAMS),
    Case("services item array", HELLO, data({"services": [["ok"]]}), 400,
         INVALID_PARAMS),
    Case("force_update word", HELLO, data({"force_update": "maybe"}), 400,
         INVALID_PARAMS),
    Case("force_update object", HELLO, data({"force_update": {}}), 400,
         INVALID_PARAMS),
    Case("force_update two", HELLO, data({"force_update": 2}), 400, INVALID_PARAMS),
    Case("agent_version too long", HELLO, data({"agent_version": LONG}), 400,
         INVALID_PARAMS),
    Case("uptime nested too long", HELLO, data({"uptime": ["x" * 40000] * 2}), 400,
         INVALID_PARAMS),
    # oco.agent.update
    Case("software object", UPDATE, data({"software": {"name": "vim"}}), 400,
         INVALID_PARAMS),
    Case("software item number", UPDATE, data({"software": [{"name": "vim"}, 3]}),
         400, INVALID_PARAMS),
    Case("software item null", UPDATE, data({"software": [None]}), 400,
         INVALID_PARAMS),
    Case("software name too long", UPDATE, data({"software": [{"name": LONG}]}), 400,
         INVALID_PARAMS),
    Case("logins string", UPDATE, data({"logins": "root"}), 400, INVALID_PARAMS),
    Case("partitions item array", UPDATE, data({"partitions": [["/", "ext4"]]}), 400,
         INVALID_PARAMS),
    Case("screens number", UPDATE, data({"screens": 2}), 400, INVALID_PARAMS),
    Case("printers item string", UPDATE, data({"printers": ["pdf"]}), 400,
         INVALID_PARAMS),
    Case("users object", UPDATE, data({"users": {"root": 0}}), 400, INVALID_PARAMS,
         GEN2_ONLY),
    Case("devices item boolean", UPDATE, data({"devices": [True]}), 400,
         INVALID_PARAMS, GEN2_ONLY),
    Case("os too long", UPDATE, data({"os": LONG}), 400, INVALID_PARAMS),
    Case("ram object too long", UPDATE, data({"ram": {"banks": ["x" * 70000]}}), 400,
         INVALID_PARAMS),
    Case("late list invalid", UPDATE, data({"devices": "usb"}), 400, INVALID_PARAMS),
    # oco.agent.update_job_state
    Case("job-id missing", STATE, drop("params", "data", "job-id"), 400,
         INVALID_PARAMS),
    Case("job-id object", STATE, data({"job-id": {"id": 1}}), 400, INVALID_PARAMS),
    Case("job-id boolean", STATE, data({"job-id": True}), 400, INVALID_PARAMS),
    Case("job-id superscript digit", STATE, data({"job-id": "\u00b2"}), 400,
         INVALID_PARAMS),
    Case("job-id wide integer", STATE, data({"job-id": WIDE_INTEGER}), 400,
         INVALID_PARAMS),
    Case("job-id wide string", STATE, data({"job-id": str(WIDE_INTEGER)}), 400,
         INVALID_PARAMS),
    Case("job-id negative", STATE, data({"job-id": -4}), 400, INVALID_PARAMS),
    Case("job-id unknown", STATE, data({"job-id": 987654}), 400, INVALID_PARAMS),
    Case("job-id foreign", STATE, job_of("other"), 401, UNAUTHORIZED),
    Case("state word", STATE, data({"state": "running"}), 400, INVALID_PARAMS),
    Case("state null", STATE, data({"state": None}), 400, INVALID_PARAMS),
    Case("state unknown", STATE, data({"state": 7}), 400, INVALID_PARAMS),
    Case("state float", STATE, data({"state": 2.5}), 400, INVALID_PARAMS),
    Case("return-code double minus", STATE, data({"return-code": "--5"}), 400,
         INVALID_PARAMS),
    Case("return-code wide", STATE, data({"return-code": 2**64}), 400,
         INVALID_PARAMS),
    Case("return-code list", STATE, data({"return-code": [0]}), 400, INVALID_PARAMS),
    Case("return-code boolean", STATE, data({"return-code": False}), 400,
         INVALID_PARAMS),
    Case("progress word", STATE, data({"download-progress": "fast"}), 400,
         INVALID_PARAMS),
    Case("progress out of range", STATE,
         replaced(b'"state": ', b'"download-progress": 1e400, "state": '), 400,
         INVALID_PARAMS),
    Case("progress object", STATE, data({"download-progress": {"p": 5}}), 400,
         INVALID_PARAMS),
    Case("state 5000 digits", STATE, replaced(b'"state": 2', b'"state": ' + b"2" * 5000),
         400, INVALID_PARAMS),
    Case("job id 5000 digit string", STATE, data({"job-id": "1" * 5000}), 400,
         INVALID_PARAMS),
    # oco.agent.events
    Case("events object", EVENTS, data({"events": {"log": "System"}}), 400,
         INVALID_PARAMS),
    Case("events item string", EVENTS, data({"events": ["boot"]}), 400,
         INVALID_PARAMS),
    Case("event provider too long", EVENTS,
         data({"events": [{"log": "System", "timestamp": "2026-12-04 10:00:00",
                           "provider": LONG}]}), 400, INVALID_PARAMS),
    Case("event data too long", EVENTS,
         data({"events": [{"log": "System", "timestamp": "2026-12-04 10:00:00",
                           "data": {"m": "d" * (1024 * 1024)}}]}), 400,
         INVALID_PARAMS, GEN2_ONLY),
    # oco.agent.passwords
    Case("passwords object", PASSWORDS, data({"passwords": {"username": "a"}}), 400,
         INVALID_PARAMS, GEN2_ONLY),
    Case("password username array", PASSWORDS,
         data({"passwords": [{"username": ["root"], "password": "x"}]}), 400,
         INVALID_PARAMS, GEN2_ONLY),
    Case("password revoke word", PASSWORDS,
         data({"passwords": [{"username": "administrator", "password": "Pw-12345",
                              "revoke": "maybe"}]}), 400, INVALID_PARAMS, GEN2_ONLY),
    Case("password number", PASSWORDS,
         data({"passwords": [{"username": "administrator", "password": 12345}]}), 400,
         INVALID_PARAMS, GEN2_ONLY),
    Case("password not decrypting", PASSWORDS,
         data({"passwords": [{"username": "administrator", "password": {
             "iv": "AAAAAAAAAAAAAAAAAAAAAA==", "data": "AAAAAAAAAAAAAAAAAAAAAA=="}}]}),
         400, INVALID_PARAMS, GEN2_ONLY),
    Case("password without rule", PASSWORDS,
         data({"passwords": [{"username": "administrator", "password": "Pw-12345"},
                             {"username": "guest", "password": "Pw-12345"}]}), 400,
         INVALID_PARAMS, GEN2_ONLY),
    # oco.agent.download, generation 2 (a JSON-RPC body sent with GET)
    Case("download id object", DOWNLOAD, params({"package-id": {"id": 1}}), 400,
         INVALID_PARAMS, GEN2_ONLY, http_method="GET"),
    Case("download id wide", DOWNLOAD, params({"package-id": WIDE_INTEGER}), 400,
         INVALID_PARAMS, GEN2_ONLY, http_method="GET"),
    Case("download id negative string", DOWNLOAD, params({"package-id": "-1"}), 400,
         INVALID_PARAMS, GEN2_ONLY, http_method="GET"),
    Case("download id missing", DOWNLOAD, drop("params", "package-id"), 400,
         INVALID_PARAMS, GEN2_ONLY, http_method="GET"),
    Case("download other method", HELLO, data({}), 400, METHOD_NOT_FOUND, GEN2_ONLY,
         http_method="GET"),
    Case("download declared text", DOWNLOAD, params({}), 400, INVALID_REQUEST,
         GEN2_ONLY, content_type="text/plain", http_method="GET"),
]

CASES = [
    pytest.param(case, generation, id=f"{case.name}-gen{generation}")
    for case in REJECTED
    for generation in case.generations
]


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> FleetTemplate:
    return build_template(tmp_path_factory.mktemp("fleet"))


@pytest.fixture
def config(tmp_path, template) -> Config:
    """Start each test from a copy of the fleet's data directory."""
    template.copy_to(tmp_path / "data")
    return Config.for_tests(tmp_path / "data")


@pytest.fixture
def fleet(client, template) -> Fleet:
    return template.fleet(client)


def build_request(case: Case, fleet: Fleet, generation: int) -> dict[str, Any] | bytes:
    body = fleet.agent(generation).body(case.fixture)
    if case.fixture == STATE:
        body["params"]["data"]["job-id"] = fleet.own_job(generation)
    if case.fixture == DOWNLOAD:
        body["params"]["package-id"] = fleet.package_id
    edited = case.edit(body, fleet, generation)
    return body if edited is None else edited


@pytest.mark.parametrize(("case", "generation"), CASES)
async def test_hostile_request_changes_nothing(fleet, config, case, generation):
    request = build_request(case, fleet, generation)
    before = snapshot(config.database_path)

    response = await fleet.post(generation, request, case.content_type, case.http_method)

    assert response.status == case.status
    payload = await response.json()
    assert payload["error"]["code"] == case.code
    assert len(payload["error"]["message"]) < 400
    assert snapshot(config.database_path) == before


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ({"id": "abc"}, INVALID_PARAMS),
        ({"id": "\u00b2"}, INVALID_PARAMS),
        ({"id": str(WIDE_INTEGER)}, INVALID_PARAMS),
        ({"id": "0"}, INVALID_PARAMS),
        ({"id": "1", "hostname": ""}, INVALID_PARAMS),
        ({"id": "1", "hostname": "lab-pc-01\r\nx"}, INVALID_PARAMS),
    ],
    ids=["word", "superscript", "wide", "zero", "empty-hostname", "crlf-hostname"],
)
async def test_plain_download_bad_query(fleet, config, query, code):
    values = {
        "hostname": fleet.plain.hostname, "uid": "", "agent-key": fleet.plain.agent_key,
        **query,
    }
    before = snapshot(config.database_path)

    response = await fleet.client.get(AGENT_PATH, params=values)

    assert response.status == 400
    payload = await response.json()
    assert payload["error"]["code"] == code
    assert snapshot(config.database_path) == before


async def test_signed_check_failure_keeps_timestamp(fleet, database):
    body = fleet.signed.body(STATE)
    body["params"]["data"]["job-id"] = fleet.other_job(2)
    raw_body = agent_dumps(body)

    response = await fleet.post(2, raw_body)
    retried = await fleet.post(2, raw_body)

    assert response.status == 401
    assert retried.status == 401
    # Not recorded as seen, so the same request is judged again, not as a replay.
    payload = await retried.json()
    assert "another computer" in payload["error"]["message"]


async def test_gen1_fixtures_still_accepted(fleet):
    for fixture in (STATE, EVENTS, UPDATE):
        body = fleet.plain.body(fixture)
        if fixture == STATE:
            body["params"]["data"]["job-id"] = fleet.own_job(1)

        response = await fleet.post(1, body)

        assert response.status == 200, fixture


SECTIONS = [*LIST_TABLES, "software", "logins"]


@pytest.mark.parametrize("generation", [1, 2])
@pytest.mark.parametrize("section", SECTIONS)
async def test_inventory_section_wrong_types(fleet, config, section, generation):
    for value in ({"name": "x"}, "x", 3, True, [["x"]], [None], ["x"]):
        body = fleet.agent(generation).body(UPDATE)
        body["params"]["data"][section] = value
        before = snapshot(config.database_path)

        response = await fleet.post(generation, body)

        assert response.status == 400, value
        payload = await response.json()
        assert payload["error"]["code"] == INVALID_PARAMS
        assert f"data.{section}" in payload["error"]["message"]
        assert snapshot(config.database_path) == before
