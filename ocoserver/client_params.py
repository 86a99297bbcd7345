"""Readers for the `params.data` values of client API requests.

Each reader names the field as `data.<name>` in its InvalidParams message.
Ids are positive integers, sent as JSON integers or decimal strings as OCO
clients do.
"""

from __future__ import annotations

from typing import Any

from ocoserver import timefmt
from ocoserver.db import SQLITE_INTEGER_MAX
from ocoserver.errors import InvalidParams, preview
from ocoserver.jsonbody import INT64_MIN
from ocoserver.params import read_flag, read_int

# Maximum length of one text field, long enough for procedures and descriptions.
MAX_TEXT_LENGTH = 65536

# Maximum number of ids in one list, such as the computer_ids of a deployment.
MAX_ID_LIST_LENGTH = 100_000


def read_data(params: dict[str, Any]) -> dict[str, Any]:
    """Return `params.data`; a missing or null `data` is an empty object."""
    data = params.get("data")
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InvalidParams(f"params.data must be an object, not {type(data).__name__}")
    return data


def read_id(data: dict[str, Any], name: str) -> int:
    if data.get(name) is None:
        raise InvalidParams(f"data.{name} is missing; give the id as an integer")
    return read_int(data[name], f"data.{name}", minimum=1, maximum=SQLITE_INTEGER_MAX)


def read_optional_id(data: dict[str, Any], name: str) -> int | None:
    if data.get(name) in (None, "", 0):
        return None
    return read_id(data, name)


def read_id_list(data: dict[str, Any], name: str) -> list[int]:
    value = data.get(name)
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidParams(
            f"data.{name} must be an array of ids, not {type(value).__name__}"
        )
    if len(value) > MAX_ID_LIST_LENGTH:
        raise InvalidParams(f"data.{name} has more than {MAX_ID_LIST_LENGTH} ids")
    return [
        read_int(item, f"data.{name}[{index}]", minimum=1, maximum=SQLITE_INTEGER_MAX)
        for index, item in enumerate(value)
    ]


def read_text(data: dict[str, Any], name: str, default: str | None = None) -> str:
    value = data.get(name)
    if value is None:
        if default is None:
            raise InvalidParams(f"data.{name} is missing")
        return default
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise InvalidParams(f"data.{name} must be a string, not {type(value).__name__}")
    text = str(value)
    if len(text) > MAX_TEXT_LENGTH:
        raise InvalidParams(f"data.{name} is longer than {MAX_TEXT_LENGTH} characters")
    return text


def read_integer(
    data: dict[str, Any], name: str, default: int, minimum: int = INT64_MIN
) -> int:
    if data.get(name) is None:
        return default
    return read_int(data[name], f"data.{name}", minimum=minimum)


def read_boolean(data: dict[str, Any], name: str, default: bool) -> bool:
    if data.get(name) is None:
        return default
    return read_flag(data[name], f"data.{name}")


def read_time(data: dict[str, Any], name: str) -> str | None:
    """Return a time as stored UTC text; OCO sends 'YYYY-MM-DD HH:MM:SS'."""
    if data.get(name) in (None, ""):
        return None
    text = read_text(data, name)
    try:
        return timefmt.parse_admin_time(text)
    except ValueError as error:
        raise InvalidParams(f"data.{name}: {error}") from None


def reject_unsupported(data: dict[str, Any], names: tuple[str, ...], fix: str) -> None:
    """Reject fields of the OCO client API that ocoserver cannot honour.

    Only a non-empty value is rejected, so clients that send the field with
    its empty default keep working.
    """
    for name in names:
        if data.get(name) not in (None, "", [], 0, "0", False):
            raise InvalidParams(
                f"data.{name} {preview(data[name])} is not supported by ocoserver; "
                f"{fix}"
            )
