"""JSON-RPC 2.0 envelopes: parsing requests and serializing responses."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from ocoserver.errors import InvalidParams, InvalidRequest, RpcError, preview
from ocoserver.jsonbody import decode_json

JSON_CONTENT_TYPE = "application/json; charset=utf-8"

# Maximum method name length; the longest agent method name has 26 characters.
MAX_METHOD_LENGTH = 64
MAX_ID_LENGTH = 256


@dataclass(frozen=True)
class RpcRequest:
    request_id: Any
    method: str
    params: dict[str, Any]
    body: bytes

    def data(self) -> dict[str, Any]:
        """Return `params.data`, raising InvalidParams unless it is an object."""
        data = self.params.get("data")
        if not isinstance(data, dict):
            raise InvalidParams(
                f"params.data must be an object for {self.method}, "
                f"not {type(data).__name__}"
            )
        return data


def parse_request(body: bytes) -> RpcRequest:
    """Parse and validate a JSON-RPC request object (batches are not used by agents)."""
    envelope = decode_json(body)
    if not isinstance(envelope, dict):
        raise InvalidRequest(
            f"request must be a JSON-RPC object, not {type(envelope).__name__}"
        )
    request_id = _read_id(envelope.get("id"))
    method = envelope.get("method")
    if not isinstance(method, str) or not method:
        raise InvalidRequest("method is missing or not a string")
    if len(method) > MAX_METHOD_LENGTH:
        raise InvalidRequest(
            f"method {preview(method)} is longer than {MAX_METHOD_LENGTH} characters"
        )
    params = envelope.get("params")
    if not isinstance(params, dict):
        raise InvalidParams(
            f"params must be an object for {method}, not {type(params).__name__}"
        )
    return RpcRequest(request_id=request_id, method=method, params=params, body=body)


def _read_id(request_id: Any) -> Any:
    """Return a valid request id; agents send integers.

    JSON-RPC 2.0 allows a string, a number or null. Fractional numbers,
    which the standard discourages, and booleans are rejected, and so are
    strings beyond MAX_ID_LENGTH, because every response repeats the id.
    """
    if request_id is None:
        return None
    if isinstance(request_id, bool) or not isinstance(request_id, int | str):
        raise InvalidRequest(
            f"id {preview(request_id)} is invalid: use a string, an integer or null"
        )
    if isinstance(request_id, str) and len(request_id) > MAX_ID_LENGTH:
        raise InvalidRequest(f"id is longer than {MAX_ID_LENGTH} characters")
    return request_id


def success_body(
    request_id: Any, params: dict[str, Any], timestamp: float | None = None
) -> bytes:
    """Serialize a success response; `timestamp` goes into `result` when given."""
    result: dict[str, Any] = {"success": True, "params": params}
    if timestamp is not None:
        result["timestamp"] = timestamp
    return orjson.dumps(
        {"jsonrpc": "2.0", "id": request_id, "error": None, "result": result}
    )


def error_body(request_id: Any, error: RpcError) -> bytes:
    return orjson.dumps(
        {"jsonrpc": "2.0", "id": request_id, "error": error.to_object()}
    )
