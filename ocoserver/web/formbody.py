"""Reading of console form bodies, with a malformed body rejected as a 400 page.

aiohttp 3.14 raises ValueError, LookupError or RuntimeError for a form body
it cannot parse: a multipart body without its boundary, an unknown
charset, bytes that are not valid in the charset, an unknown
Content-Transfer-Encoding. It raises RequestPayloadError for a body that
failed to read, such as a corrupt gzip stream. Every console POST reads
its form through `read_form` or inside `form_errors`, so none of these
ends in a traceback and a 500.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

from aiohttp import ClientPayloadError, web
from aiohttp.web_protocol import RequestPayloadError

from ocoserver.client_address import client_address
from ocoserver.errors import PREVIEW_LENGTH
from ocoserver.logtext import quote
from ocoserver.request_body import broken_body_reason, close_after_response
from ocoserver.web.templating import error_exception

log = logging.getLogger("ocoserver.web")

_BROKEN = (ClientPayloadError, RequestPayloadError)
_MALFORMED = (ValueError, LookupError, RuntimeError)


async def read_form(request: web.Request) -> Any:
    """Return the request's form fields, or raise a 400 page for a malformed body."""
    with form_errors(request):
        return await request.post()


@contextlib.contextmanager
def form_errors(request: web.Request) -> Iterator[None]:
    """Turn aiohttp's errors for a malformed form body into a 400 error page.

    Wrap only the calls that read the body, because the caught exception
    types are broad.
    """
    try:
        yield
    except _BROKEN as error:
        close_after_response(request)
        reason = "the request body is incomplete or its Content-Encoding is invalid"
        raise _rejection(request, reason, error) from None
    except _MALFORMED as error:
        raise _rejection(request, _malformed_reason(error), error) from None


def _malformed_reason(error: Exception) -> str:
    if isinstance(error, UnicodeDecodeError):
        return "the form contains bytes that are not valid in its charset"
    if isinstance(error, LookupError):
        return "the form's charset is unknown"
    return "the form body is malformed"


def _rejection(
    request: web.Request, reason: str, error: Exception
) -> web.HTTPException:
    detail = broken_body_reason(error)[:PREVIEW_LENGTH]
    log.info(
        "rejected %s %s from %s: %s (%s)", request.method, quote(request.path),
        client_address(request), reason, quote(detail),
    )  # fmt: skip
    message = f"{reason}; reload the page and send the form again"
    return error_exception(request, web.HTTPBadRequest, message)
