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
