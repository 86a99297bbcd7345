"""Handling of a request body that failed to read, shared by every endpoint.

aiohttp raises ClientPayloadError or RequestPayloadError when a body ends
early or its Content-Encoding cannot be decoded, for example a corrupt
gzip stream.
"""

from __future__ import annotations

from aiohttp import web


def close_after_response(request: web.Request) -> None:
    """End the body stream and close the connection after the response.

    Otherwise aiohttp reads the rest of the body to keep the connection,
    gets the same error again and logs it with a traceback.
    """
    request.content.feed_eof()
    request.protocol.close()


def broken_body_reason(error: Exception) -> str:
    """Return aiohttp's text of a body error on one line."""
    # aiohttp's text of a decoding error spans two lines.
    return " ".join(str(error).split())
