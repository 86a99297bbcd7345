"""Values from requests, made safe to put into a one-line log message.

Log lines are matched by intrusion-prevention tools such as fail2ban, so a
hostname or method sent by a client must not be able to add a line break,
a space or a `remote=` field of its own.
"""

from __future__ import annotations

import json
import logging
import re

from aiohttp.http_exceptions import HttpProcessingError

_PLAIN = re.compile(r"[A-Za-z0-9._:@/+-]+")


def quote(value: str) -> str:
    """Return `value` unchanged when it is one plain token, else JSON-quoted.

    A JSON string escapes quotes, backslashes and control characters, so a
    quoted value always ends at its closing quote on the same line.
    """
    if _PLAIN.fullmatch(value):
        return value
    return json.dumps(value)


# The start of the request bytes in aiohttp's parser messages.
_RAW_BYTES = re.compile(r"bytearray\(|b'|b\"")


class MalformedRequestFilter(logging.Filter):
    """Rewrite aiohttp's log record of a request that its HTTP parser rejected.

    aiohttp logs such a request at ERROR with a traceback and the rejected
    bytes, which can hold an agent key in a query string or credentials in
    an Authorization header, and any client can send them. The record
    becomes one INFO line with the client address and the parser's reason.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if not isinstance(error, HttpProcessingError):
            return True
        # The first line of the message is the reason. The rejected bytes
        # follow on later lines or, for a line too long, after the reason.
        first_line = error.message.split("\n", 1)[0]
        reason = _RAW_BYTES.split(first_line, maxsplit=1)[0].strip().rstrip(":")
        remote = record.args[0] if isinstance(record.args, tuple) and record.args else None
        record.msg = "rejected malformed HTTP request from %s: %s (HTTP %d)"
        record.args = (remote or "an unknown address", quote(reason), error.code)
        record.exc_info = None
        record.exc_text = None
        record.levelno = logging.INFO
        record.levelname = "INFO"
        return True


def filter_malformed_requests() -> None:
    """Install MalformedRequestFilter on aiohttp's server logger, once."""
    logger = logging.getLogger("aiohttp.server")
    if not any(isinstance(item, MalformedRequestFilter) for item in logger.filters):
        logger.addFilter(MalformedRequestFilter())
