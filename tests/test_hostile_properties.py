"""Property-based tests: random envelopes and payloads against the real server.

Whatever shape or type a field has, the server responds with a JSON-RPC
object and never with a 500. A rejected request leaves the database
unchanged; an accepted inventory is stored completely. The settings
profile (tests/conftest.py) keeps the runs short and deterministic.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ocoserver.config import Config
from ocoserver.jsonbody import INT64_MAX, INT64_MIN
from ocoserver.store.inventory import LIST_TABLES, SCALAR_FIELDS
from tests.agents import agent_dumps, snapshot
from tests.hostile import GEN1_HOST, GEN2_HOST, Fleet, FleetTemplate, build_template

HOSTS = {1: GEN1_HOST, 2: GEN2_HOST}
METHOD_NAMES = [
    "oco.agent.hello", "oco.agent.update", "oco.agent.update_job_state",
    "oco.agent.events", "oco.agent.passwords", "oco.agent.download",
]  # fmt: skip
FIXTURES = [
    "hello.json", "update.json", "update_job_state-executing-output.json",
    "update_job_state-finished.json", "events.json", "passwords.json",
]  # fmt: skip
# Statuses the protocol allows for an agent request; 500 is a server fault.
EXPECTED_STATUSES = {200, 400, 401, 404, 413}

# The suite shares one server per test function across examples, which is
# intended: each example compares the database before and after itself.
examples = settings(suppress_health_check=[HealthCheck.function_scoped_fixture])

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | st.sampled_from(["", "-", "0", "3", "-1", "12.5", " 7 ", "\udcfc", "\u0000"])
)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> FleetTemplate:
    return build_template(tmp_path_factory.mktemp("fleet"))


@pytest.fixture
def config(tmp_path, template) -> Config:
    template.copy_to(tmp_path / "data")
    return Config.for_tests(tmp_path / "data")


@pytest.fixture
def fleet(client, template) -> Fleet:
    return template.fleet(client)


async def send_and_check(
    fleet: Fleet, config: Config, generation: int, body: dict[str, Any] | bytes
) -> tuple[int, dict[str, Any]]:
    """Send a body, then assert a JSON-RPC response and no change when rejected."""
    before = snapshot(config.database_path)

    response = await fleet.post(generation, body)

    assert response.status in EXPECTED_STATUSES
    payload = await response.json()
    assert isinstance(payload, dict)
    if response.status == 200:
        assert payload["error"] is None
    else:
        assert isinstance(payload["error"]["code"], int)
        assert snapshot(config.database_path) == before
    return response.status, payload


@st.composite
def envelopes(draw: st.DrawFn) -> Any:
    """A JSON-RPC envelope with random members, or any JSON value at all."""
    if draw(st.booleans()):
        return draw(json_values)
    envelope: dict[str, Any] = draw(st.dictionaries(st.text(max_size=8), json_values))
    envelope["jsonrpc"] = draw(st.sampled_from(["2.0", 2, None]))
    envelope["id"] = draw(st.one_of(st.integers(), st.text(max_size=5), json_values))
    envelope["method"] = draw(st.sampled_from(METHOD_NAMES) | json_values)
    params = draw(st.dictionaries(st.text(max_size=8), json_values))
    if draw(st.booleans()):
        params["hostname"] = draw(st.sampled_from([GEN1_HOST, GEN2_HOST]) | json_values)
    if draw(st.booleans()):
        params["data"] = draw(json_values)
    envelope["params"] = draw(st.sampled_from([params]) | json_values)
    return envelope


@examples
@given(envelope=envelopes(), generation=st.sampled_from([1, 2]))
async def test_random_envelope_no_server_error(fleet, config, envelope, generation):
    await send_and_check(fleet, config, generation, agent_dumps(envelope))


@st.composite
def method_payloads(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    """A captured request's data with random values in some of its fields."""
    fixture = draw(st.sampled_from(FIXTURES))
    names = ["job-id", "state", "return-code", "message", "download-progress",
             "networks", "services", "uptime", "force_update", "events", "passwords",
             "agent_version", "battery_level"]  # fmt: skip
    changes = draw(st.dictionaries(st.sampled_from(names), json_values, max_size=4))
    return fixture, changes


@examples
@given(payload=method_payloads(), generation=st.sampled_from([1, 2]))
async def test_random_method_data_no_server_error(fleet, config, payload, generation):
    fixture, changes = payload
    body = fleet.agent(generation).body(fixture)
    if "job-id" in body["params"]["data"]:
        body["params"]["data"]["job-id"] = fleet.own_job(generation)
    body["params"]["data"].update(changes)

    await send_and_check(fleet, config, generation, body)


list_items = st.lists(
    st.dictionaries(
        st.sampled_from(["name", "version", "description", "addr", "address", "size",
                         "username", "timestamp", "mac", "serial"]),
        json_values,
        max_size=5,
    ),
    max_size=5,
)  # fmt: skip
INVENTORY_LISTS = [*LIST_TABLES, "software", "logins"]


@st.composite
def inventories(draw: st.DrawFn) -> dict[str, Any]:
    """Random values for some scalar fields and lists of an inventory."""
    fields = draw(st.lists(st.sampled_from(SCALAR_FIELDS), max_size=5, unique=True))
    lists = draw(st.lists(st.sampled_from(INVENTORY_LISTS), max_size=3, unique=True))
    changes = {field: draw(json_values) for field in fields}
    for name in lists:
        changes[name] = draw(list_items | json_values)
    return changes


def expected_column(value: Any) -> Any:
    """The stored form of a plain value, or the marker ANY for other shapes."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int) and not INT64_MIN <= value <= INT64_MAX:
        return str(value)
    if value is None or isinstance(value, int | float):
        return value
    if isinstance(value, str) and "\udcfc" not in value:
        return value
    return ANY


ANY = object()


def text_affinity(expected: Any) -> Any:
    """Apply SQLite's TEXT affinity: an integer is stored as its decimal text.

    A float's text form is SQLite's own (such as 1.0e+16), so it is not
    predicted here.
    """
    if isinstance(expected, float):
        return ANY
    if isinstance(expected, int):
        return str(expected)
    return expected


@examples
@given(changes=inventories(), generation=st.sampled_from([1, 2]))
async def test_random_inventory_stored_or_rejected(
    fleet, config, database, changes, generation
):
    body = fleet.agent(generation).body("update.json")
    body["params"]["data"].update(changes)

    status, _ = await send_and_check(fleet, config, generation, body)

    if status != 200:
        return
    computer = await database.fetch_one(
        "SELECT * FROM computer WHERE hostname = ?", (HOSTS[generation],)
    )
    declared = {
        row["name"]: row["type"].upper()
        for row in await database.fetch_all(
            "SELECT name, type FROM pragma_table_info('computer')"
        )
    }
    for field in SCALAR_FIELDS:
        expected = expected_column(changes[field]) if field in changes else ANY
        if declared.get(field) == "TEXT":
            expected = text_affinity(expected)
        if expected is not ANY:
            assert computer[field] == expected, field
    software = body["params"]["data"].get("software")
    if isinstance(software, list):
        count = await database.fetch_value(
            "SELECT COUNT(*) FROM computer_software WHERE computer_id = ?",
            (computer["id"],),
        )
        assert count == len(software)
