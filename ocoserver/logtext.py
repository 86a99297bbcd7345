"""Values from requests, made safe to put into a one-line log message.

Log lines are matched by intrusion-prevention tools such as fail2ban, so a
hostname or method sent by a client must not be able to add a line break,
a space or a `remote=` field of its own.
"""

from __future__ import annotations

import json
import re

_PLAIN = re.compile(r"[A-Za-z0-9._:@/+-]+")


def quote(value: str) -> str:
    """Return `value` unchanged when it is one plain token, else JSON-quoted.

    A JSON string escapes quotes, backslashes and control characters, so a
    quoted value always ends at its closing quote on the same line.
    """
    if _PLAIN.fullmatch(value):
        return value
    return json.dumps(value)
