"""Shared fixtures: config -> app -> client over a temp data directory."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from hypothesis import settings

from ocoserver.app import create_app
from ocoserver.appkeys import STATE
from ocoserver.config import Config
from ocoserver.db import Database

DATA = Path(__file__).parent / "data"

# Property-based tests run a fixed, derandomized set of examples by default,
# so the suite is deterministic and takes seconds. HYPOTHESIS_PROFILE=explore
# runs more random examples when hunting for new failures.
settings.register_profile(
    "default", max_examples=40, deadline=None, derandomize=True, database=None
)
settings.register_profile("explore", max_examples=1000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


def load_fixture(generation_dir: str, name: str) -> dict[str, Any]:
    """Load a captured agent request from tests/data/<agent version>/<name>."""
    with (DATA / generation_dir / name).open(encoding="utf-8") as file:
        return json.load(file)


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return Config.for_tests(tmp_path / "data")


@pytest.fixture
def app(config: Config) -> web.Application:
    return create_app(config)


@pytest.fixture
async def client(
    aiohttp_client: Any, app: web.Application
) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    yield await aiohttp_client(app)


@pytest.fixture
def database(client: TestClient[web.Request, web.Application]) -> Database:
    """The running server's own Database, for seeding and checking state."""
    return client.app[STATE].database
