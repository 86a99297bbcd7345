"""UTC times as stored and exchanged: 'YYYY-MM-DD HH:MM:SS' text."""

from __future__ import annotations

import datetime

FORMAT = "%Y-%m-%d %H:%M:%S"
EPOCH_TEXT = "2000-01-01 00:00:00"


def now_text() -> str:
    """Return the current UTC time as 'YYYY-MM-DD HH:MM:SS'."""
    return datetime.datetime.now(datetime.UTC).strftime(FORMAT)


def to_text(moment: datetime.datetime) -> str:
    """Format an aware datetime as UTC text."""
    return moment.astimezone(datetime.UTC).strftime(FORMAT)


def seconds_ago_text(seconds: float) -> str:
    """Return the UTC time `seconds` before now as text."""
    moment = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=seconds)
    return moment.strftime(FORMAT)


def parse_admin_time(text: str) -> str:
    """Parse a time given on the command line into stored UTC text.

    Accepts ISO 8601 ('2026-05-01', '2026-05-01 08:00', '2026-05-01T08:00:00+02:00');
    a time without an offset is taken as UTC. Raises ValueError naming the value.
    """
    try:
        moment = datetime.datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"invalid time {text!r}: use ISO 8601 such as '2026-05-01 08:00' (UTC) "
            "or '2026-05-01T08:00+02:00'"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return to_text(moment)


# Earliest time accepted from an agent. Nothing an agent reports happened
# before the Unix epoch, and the bound keeps every stored year at four
# digits, which the text comparison of stored times relies on.
EARLIEST_AGENT_TIME = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)

class AgentTimeOutOfRange(ValueError):
    """A readable time from an agent that lies outside the accepted range."""


# How far ahead of the server clock an agent's time may be. A computer
# whose clock is a few hours off, or that reports local time as UTC, still
# gets its report stored.
# NOTE: one day is a judgment, not a measured clock error of real agents.
AGENT_CLOCK_AHEAD = datetime.timedelta(days=1)


def parse_agent_time(value: object, now: datetime.datetime | None = None) -> str:
    """Parse a time an agent reports into stored UTC text, or raise ValueError.

    Agents 1.1.6 and 1.2.0 send 'YYYY-MM-DD HH:MM:SS' in UTC. Other ISO 8601
    text, such as '2026-05-01T08:00:00+02:00', is converted to UTC, and a
    time without an offset is taken as UTC, and fractions of a second are
    dropped. The time must lie between 1970-01-01 and one day after `now`
    (default: the current time), else AgentTimeOutOfRange is raised.
    """
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not text: use 'YYYY-MM-DD HH:MM:SS' in UTC")
    try:
        moment = datetime.datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(
            f"{value!r} is not a time: use 'YYYY-MM-DD HH:MM:SS' in UTC"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)

    latest = (now or datetime.datetime.now(datetime.UTC)) + AGENT_CLOCK_AHEAD
    if not EARLIEST_AGENT_TIME <= moment <= latest:
        raise AgentTimeOutOfRange(
            f"{value!r} is out of range: use a UTC time from 1970-01-01 to "
            f"{to_text(latest)}"
        )
    return to_text(moment)
