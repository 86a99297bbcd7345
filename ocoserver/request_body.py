"""Handling of a request body that failed to read, shared by every endpoint.

aiohttp raises ClientPayloadError or RequestPayloadError when a body ends
early or its Content-Encoding cannot be decoded, for example a corrupt
gzip stream.
"""

from __future__ import annotations

from aiohttp import hdrs, web
from aiohttp.http_exceptions import ContentEncodingError

# Set on a request whose connection closes after the response. The response
# then carries `Connection: close`, so the client does not reuse it.
CLOSING = web.RequestKey("closing", bool)


def close_after_response(request: web.Request) -> None:
    """End the body stream and close the connection after the response.

    Otherwise aiohttp reads the rest of the body to keep the connection,
    gets the same error again and logs it with a traceback.
    """
    request.content.feed_eof()
    request.protocol.close()
    request[CLOSING] = True


def broken_body_reason(error: Exception) -> str:
    """Return aiohttp's text of a body error on one line."""
    # aiohttp's text of a decoding error spans two lines.
    return " ".join(str(error).split())


def broken_body_message(request: web.Request, error: Exception, body_name: str) -> str:
    """Return the error message for a body that failed to read."""
    # A ContentEncodingError comes only from an encoding that aiohttp
    # decodes, such as gzip or deflate, so the header value is short.
    encoding = request.headers.get(hdrs.CONTENT_ENCODING, "")
    if isinstance(error.__cause__, ContentEncodingError) and encoding:
        return (
            f"{body_name} is not valid {encoding} data; send the body as its "
            "Content-Encoding header says, or without that header"
        )
    return f"{body_name} is incomplete: {broken_body_reason(error)}"
