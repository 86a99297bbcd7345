"""JSON-RPC 2.0 envelopes: parsing requests and serializing responses."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from ocoserver.errors import InvalidParams, InvalidRequest, RpcError
from ocoserver.jsonbody import decode_json

JSON_CONTENT_TYPE = "application/json; charset=utf-8"


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
    request_id = envelope.get("id")
    if request_id is not None and not isinstance(request_id, int | str):
        raise InvalidRequest("id must be a string, a number or null")
    method = envelope.get("method")
    if not isinstance(method, str) or not method:
        raise InvalidRequest("method is missing or not a string")
    params = envelope.get("params")
    if not isinstance(params, dict):
        raise InvalidParams(f"params must be an object for {method}")
    return RpcRequest(request_id=request_id, method=method, params=params, body=body)


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
