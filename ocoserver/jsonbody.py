"""Decoding of request bodies into JSON values that SQLite can store.

Request bodies are parsed with orjson. Some real agent input needs the
standard library's decoder instead: lone UTF-16 surrogates (Python agents
write undecodable file-name bytes as `"\\udcfc"`), which orjson rejects,
integers wider than 64 bits, which orjson turns into lossy floats, and
numbers beyond the range of a double such as `1e400`, which orjson
rejects. Values from that slower path are then made storable: a lone
surrogate becomes the text `\\udcfc`, and a wide integer or an
out-of-range number becomes its literal text. `NaN` and `Infinity` are
not JSON (RFC 8259) and are rejected.

An object with a repeated key keeps the last value, in both decoders, as
JavaScript's JSON.parse and Python's json module do. The signature of a
generation 2 request covers the raw bytes, so the repetition cannot be
added after signing.

Values nest at most MAX_JSON_DEPTH arrays and objects deep.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import orjson

from ocoserver.errors import ParseError

# An integer literal of 19 or more digits may not fit in 64 bits.
_WIDE_INTEGER = re.compile(rb"[\[:,]\s*-?\d{19,}(?![\d.eE])")
# orjson errors that the standard library decoder handles instead.
_STDLIB_CASES = ("surrogate", "infinity")

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

# The captured agent requests nest 6 levels at most (envelope, params, data,
# a list, an entry, an event's data object). The limit leaves room for
# richer event data and stays far below the 255 levels that orjson 3.8
# serializes, which storing a nested value as JSON text relies on.
MAX_JSON_DEPTH = 32

_CONTAINERS = (dict, list)


def decode_json(body: bytes) -> Any:
    """Parse a request body, raising ParseError with the decoder's reason.

    Raises ParseError too when the value nests deeper than MAX_JSON_DEPTH.
    """
    value = _decode(body)
    check_depth(value)
    return value


def _decode(body: bytes) -> Any:
    if not _WIDE_INTEGER.search(body):
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError as error:
            if not any(case in str(error) for case in _STDLIB_CASES):
                raise ParseError(f"request body is not valid JSON: {error}") from None
    return _decode_with_stdlib(body)


def _decode_with_stdlib(body: bytes) -> Any:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ParseError(f"request body is not valid UTF-8: {error}") from None
    try:
        value = json.loads(
            text,
            parse_constant=_reject_constant,
            parse_float=_parse_float,
            parse_int=_parse_int,
        )
    except (json.JSONDecodeError, RecursionError) as error:
        raise ParseError(f"request body is not valid JSON: {error}") from None
    check_depth(value)
    return make_storable(value)


def _reject_constant(name: str) -> None:
    raise json.JSONDecodeError(f"{name} is not allowed in JSON", name, 0)


# Python rejects int() of integer literals with more digits than this (the
# default of sys.get_int_max_str_digits). Such a literal is kept as its
# text, like a number beyond a double.
MAX_INTEGER_DIGITS = 4300


def _parse_int(literal: str) -> int | str:
    """Return the int of a literal, or the literal itself when it is too long."""
    if len(literal.lstrip("-")) > MAX_INTEGER_DIGITS:
        return literal
    return int(literal)


def _parse_float(literal: str) -> float | str:
    """Return the float of a literal, or the literal itself beyond a double."""
    number = float(literal)
    return number if math.isfinite(number) else literal


def check_depth(value: Any) -> None:
    """Raise ParseError when arrays and objects nest too deep, like orjson does.

    The walk goes level by level without recursion, so a deep value cannot
    exhaust the Python stack.
    """
    level = [value] if isinstance(value, _CONTAINERS) else []
    depth = 0
    while level:
        depth += 1
        if depth > MAX_JSON_DEPTH:
            raise ParseError(
                f"request body nests arrays and objects deeper than "
                f"{MAX_JSON_DEPTH} levels"
            )
        children: list[Any] = []
        for container in level:
            items = container.values() if type(container) is dict else container
            children += [item for item in items if isinstance(item, _CONTAINERS)]
        level = children


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
