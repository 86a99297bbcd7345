"""Decoding of request bodies into JSON values that SQLite can store.

Request bodies are parsed with orjson. Two kinds of real agent input need
the standard library's decoder instead: lone UTF-16 surrogates (Python
agents write undecodable file-name bytes as `"\\udcfc"`), which orjson
rejects, and integers wider than 64 bits, which orjson turns into lossy
floats. Values from that slower path are then made storable: a lone
surrogate becomes the text `\\udcfc` and a wide integer becomes its
decimal string.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

from ocoserver.errors import ParseError

# An integer literal of 19 or more digits may not fit in 64 bits.
_WIDE_INTEGER = re.compile(rb"[\[:,]\s*-?\d{19,}(?![\d.eE])")

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


def decode_json(body: bytes) -> Any:
    """Parse a request body, raising ParseError with the decoder's reason."""
    if not _WIDE_INTEGER.search(body):
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError as error:
            if "surrogate" not in str(error):
                raise ParseError(f"request body is not valid JSON: {error}") from None
    return _decode_with_stdlib(body)


def _decode_with_stdlib(body: bytes) -> Any:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ParseError(f"request body is not valid UTF-8: {error}") from None
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except (json.JSONDecodeError, RecursionError) as error:
        raise ParseError(f"request body is not valid JSON: {error}") from None
    return make_storable(value)


def _reject_constant(name: str) -> None:
    raise json.JSONDecodeError(f"{name} is not allowed in JSON", name, 0)


def make_storable(value: Any) -> Any:
    """Replace lone surrogates and integers wider than 64 bits, recursively."""
    if isinstance(value, str):
        return _escape_surrogates(value)
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if INT64_MIN <= value <= INT64_MAX else str(value)
    if isinstance(value, list):
        return [make_storable(item) for item in value]
    if isinstance(value, dict):
        return {_escape_surrogates(k): make_storable(v) for k, v in value.items()}
    return value


def _escape_surrogates(text: str) -> str:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text
