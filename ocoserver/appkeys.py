"""The application state shared by request handlers, under a typed AppKey."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from ocoserver.auth_throttle import AuthThrottle
from ocoserver.config import Config
from ocoserver.db import Database
from ocoserver.signing import ResponseClock


@dataclass
class ServerState:
    config: Config
    database: Database
    clock: ResponseClock
    throttle: AuthThrottle

    @property
    def depot(self) -> Path:
        return self.config.depot_path


STATE = web.AppKey("state", ServerState)

# The id of the JSON-RPC request being handled, for the error response.
RPC_ID = web.RequestKey("rpc_id", object)
