"""Exceptions that become JSON-RPC error objects, with their HTTP status.

Agents treat every status other than 200 as a failed request and retry at
their next check-in, so each error carries a non-200 status: 400 for a
malformed or invalid request, 401 for failed authentication, 403 for a
client API key without the scope a method needs, 404 for a
package that does not exist, 408 for a body not sent in time, 413 for a
body over the size limit, 429 for an address blocked after repeated failed
authentications, and 500 only for a fault of the server itself. The JSON-RPC codes are the standard
ones (-32700 to -32603) plus the application codes below.
"""

from __future__ import annotations

from typing import Any

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
# Application codes, from the JSON-RPC server error range -32000..-32099.
ACTION_FAILED = -32000
UNAUTHORIZED = -32001
FORBIDDEN = -32003
NOT_FOUND = -32004
REQUEST_TIMEOUT = -32008
PAYLOAD_TOO_LARGE = -32013
TOO_MANY_REQUESTS = -32029


# Error messages quote the offending value, but only this many characters of
# it, so a multi-megabyte value is neither echoed to the client nor logged.
PREVIEW_LENGTH = 60


def preview(value: Any) -> str:
    """Return the repr of a value for an error message, shortened if long.

    The count given for a shortened value is its own length (of a string,
    list or object), not the length of its repr with quotes and escapes.
    """
    text = repr(value)
    if len(text) <= PREVIEW_LENGTH:
        return text
    size = len(value) if isinstance(value, str | bytes | list | dict) else len(text)
    unit = "items" if isinstance(value, list | dict) else "characters"
    if isinstance(value, bytes):
        unit = "bytes"
    return f"{text[:PREVIEW_LENGTH]}... ({size} {unit})"


class OcoError(Exception):
    """Base of every error ocoserver reports to a client."""


class RpcError(OcoError):
    """An error sent to the client as a JSON-RPC error object."""

    code = INTERNAL_ERROR
    status = 500

    def __init__(self, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.data = data

    @property
    def headers(self) -> dict[str, str]:
        """HTTP headers the error response carries besides Content-Type."""
        return {}

    def to_object(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            error["data"] = self.data
        return error


class ParseError(RpcError):
    code = PARSE_ERROR
    status = 400


class InvalidRequest(RpcError):
    code = INVALID_REQUEST
    status = 400


class MethodNotFound(RpcError):
    code = METHOD_NOT_FOUND
    status = 400


class InvalidParams(RpcError):
    code = INVALID_PARAMS
    status = 400


class Unauthorized(RpcError):
    """Authentication failed, or the computer may not act on that object."""

    code = UNAUTHORIZED
    status = 401


class NotPermitted(Unauthorized):
    """An authenticated computer asked for an object that is not its own.

    Agents see the same 401 as for failed authentication, but the request
    does not count as a failed authentication of the client address: an
    agent's late report for a job that moved on is no attack.
    """


class Forbidden(RpcError):
    """The client API is disabled, or the key lacks the scope a method needs."""

    code = FORBIDDEN
    status = 403


class ActionFailed(RpcError):
    """A valid client API request whose action was rejected, such as a
    duplicate name or an unknown id; the message names the value."""

    code = ACTION_FAILED
    status = 400


class NotFound(RpcError):
    code = NOT_FOUND
    status = 404


class RequestTimeout(RpcError):
    code = REQUEST_TIMEOUT
    status = 408


class PayloadTooLarge(RpcError):
    code = PAYLOAD_TOO_LARGE
    status = 413


class TooManyRequests(RpcError):
    """The address is blocked after too many failed authentications."""

    code = TOO_MANY_REQUESTS
    status = 429

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message, {"retry-after": retry_after})
        self.retry_after = retry_after

    @property
    def headers(self) -> dict[str, str]:
        # Retry-After takes a whole number of seconds.
        return {"Retry-After": str(self.retry_after)}


class InternalError(RpcError):
    code = INTERNAL_ERROR
    status = 500


class AdminError(OcoError):
    """An administration command failed on a value the administrator gave."""
