"""Readers for the values of JSON-RPC params: types, normalisation, limits.

Real agents send numbers as decimal strings and booleans where numbers
are expected. These readers accept those forms, return the normalised
value and raise InvalidParams naming the field, the value and what to
send instead. Only ASCII digits count: Python's int() and float() also
accept other Unicode digits, which no agent sends.
"""

from __future__ import annotations

import math
import re
from typing import Any

from ocoserver.errors import InvalidParams, preview
from ocoserver.jsonbody import INT64_MAX, INT64_MIN

_INTEGER = re.compile(r"[+-]?[0-9]+")
_NUMBER = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?")
# C0 control characters and DEL. Values that appear in log lines and in
# lookups must not contain them, so a name cannot forge a log line.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

_FLAGS = {"1": True, "true": True, "0": False, "false": False}


def read_int(
    value: Any, where: str, minimum: int = INT64_MIN, maximum: int = INT64_MAX
) -> int:
    """Return an integer sent as a JSON integer or a decimal string."""
    out_of_range = f"is out of range: use {minimum} to {maximum}"
    if isinstance(value, str) and _INTEGER.fullmatch(value.strip()):
        digits = value.strip().lstrip("+-")
        # Python refuses int() of very long digit strings; anything beyond
        # 64 bits is out of range anyway.
        if len(digits) > len(str(2**64)):
            raise InvalidParams(f"{where} {preview(value)} {out_of_range}")
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidParams(f"{where} {preview(value)} is not an integer")
    if not minimum <= value <= maximum:
        raise InvalidParams(f"{where} {preview(value)} {out_of_range}")
    return value


def read_number(value: Any, where: str) -> float:
    """Return a finite number sent as a JSON number or a decimal string."""
    if isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
        value = float(value.strip())
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidParams(f"{where} {preview(value)} is not a number")
    number = float(value)
    if not math.isfinite(number):
        raise InvalidParams(f"{where} {preview(value)} is not a finite number")
    return number


def read_flag(value: Any, where: str) -> bool:
    """Return a boolean sent as true/false, 0/1 or their strings."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _FLAGS:
        return _FLAGS[value.strip().lower()]
    raise InvalidParams(f"{where} {preview(value)} is invalid: use true or false")


def read_name(value: Any, where: str, max_length: int) -> str:
    """Return a stripped single-line name, such as a hostname or a uid."""
    if value is None:
        raise InvalidParams(f"{where} is missing")
    if not isinstance(value, str):
        raise InvalidParams(f"{where} must be a string, not {type(value).__name__}")
    name = value.strip()
    if len(name) > max_length:
        raise InvalidParams(f"{where} is longer than {max_length} characters")
    if _CONTROL.search(name):
        raise InvalidParams(f"{where} {preview(name)} contains control characters")
    return name


def check_length(text: str, where: str, max_length: int) -> str:
    """Return `text` unchanged, raising InvalidParams when it is too long."""
    if len(text) > max_length:
        raise InvalidParams(
            f"{where} is {len(text)} characters long; the limit is {max_length}"
        )
    return text
