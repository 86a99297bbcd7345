"""Job container conditions: time frames and agent IP ranges.

A time frame is `DAYS START-END`, such as `Mon-Fri 18:00-06:00`:

- DAYS is a weekday (`Mon` … `Sun`), a range (`Mon-Fri`, or `Fri-Mon`
  across the weekend), a comma-separated list of these (`Mon,Wed,Fri-Sun`),
  or `*` for every day. Without DAYS the frame applies every day.
- START and END are `HH:MM` in the server's local time zone (the TZ of the
  server process). END may be `24:00`. When END is earlier than START the
  frame crosses midnight and ends on the next day, so the listed days are
  the days on which a frame starts: `Fri 22:00-02:00` includes Saturday
  01:00 but not Friday 01:00.

A container with time frames admits a request inside any one of them.

IP ranges are CIDR networks or single addresses, IPv4 or IPv6. One that
starts with `!` is an exclusion. A container with IP ranges admits an agent
whose address is in no exclusion and, when any inclusion is given, in at
least one inclusion.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass

from ocoserver.client_address import IPNetwork, parse_address

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
WEEKDAY_NAMES = (
    "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"
)  # fmt: skip
MINUTES_PER_DAY = 24 * 60

# Separators of the stored lists in job_container.time_frames and ip_ranges.
TIME_FRAME_SEPARATOR = "; "
IP_RANGE_SEPARATOR = ","

_TIME_FRAME_HINT = "use DAYS HH:MM-HH:MM such as 'Mon-Fri 18:00-06:00'"


@dataclass(frozen=True)
class TimeFrame:
    """A weekly window: the weekdays it starts on and minutes since midnight."""

    days: frozenset[int]
    start: int
    end: int

    def contains(self, moment: datetime.datetime) -> bool:
        """Tell whether a local time falls inside this frame."""
        day = moment.weekday()
        minute = moment.hour * 60 + moment.minute
        if self.start < self.end:
            return day in self.days and self.start <= minute < self.end
        # Across midnight: the evening of a listed day, or the early hours of
        # the day after one.
        if day in self.days and minute >= self.start:
            return True
        return (day - 1) % 7 in self.days and minute < self.end


def parse_time_frame(text: str) -> TimeFrame:
    """Parse `DAYS HH:MM-HH:MM`, raising ValueError that names an invalid value."""
    parts = text.split()
    if len(parts) == 1:
        parts = ["*", parts[0]]
    if len(parts) != 2:
        raise ValueError(f"invalid time frame {text!r}: {_TIME_FRAME_HINT}")
    days = _parse_days(parts[0], text)
    start_text, separator, end_text = parts[1].partition("-")
    if not separator:
        raise ValueError(f"invalid time frame {text!r}: {_TIME_FRAME_HINT}")
    start = _parse_minutes(start_text, text)
    end = _parse_minutes(end_text, text)
    if start == end or start == MINUTES_PER_DAY:
        raise ValueError(
            f"invalid time frame {text!r}: start and end are equal or start is "
            "24:00; use 00:00-24:00 for a whole day"
        )
    return TimeFrame(days=days, start=start, end=end)


def format_time_frame(frame: TimeFrame) -> str:
    """Return the canonical text of a frame, as stored."""
    days = "*" if len(frame.days) == 7 else _format_days(sorted(frame.days))
    return f"{days} {_format_minutes(frame.start)}-{_format_minutes(frame.end)}"


def _format_days(days: list[int]) -> str:
    """Write sorted weekdays with ranges for runs: [0, 1, 2, 4] -> 'Mon-Wed,Fri'."""
    runs: list[list[int]] = []
    for day in days:
        if runs and runs[-1][-1] == day - 1:
            runs[-1].append(day)
        else:
            runs.append([day])
    names = []
    for run in runs:
        first = WEEKDAYS[run[0]].title()
        last = WEEKDAYS[run[-1]].title()
        names.append(first if len(run) == 1 else f"{first}-{last}")
    return ",".join(names)


def _parse_days(text: str, frame: str) -> frozenset[int]:
    if text == "*":
        return frozenset(range(7))
    days: set[int] = set()
    for item in text.lower().split(","):
        first, separator, last = item.partition("-")
        start = _weekday(first, frame)
        stop = _weekday(last, frame) if separator else start
        count = (stop - start) % 7 + 1
        days.update((start + offset) % 7 for offset in range(count))
    return frozenset(days)


def _weekday(text: str, frame: str) -> int:
    name = text.strip()
    if name in WEEKDAYS:
        return WEEKDAYS.index(name)
    if name in WEEKDAY_NAMES:
        return WEEKDAY_NAMES.index(name)
    raise ValueError(
        f"invalid weekday {text!r} in time frame {frame!r}: use Mon, Tue, Wed, "
        "Thu, Fri, Sat or Sun"
    )


def _parse_minutes(text: str, frame: str) -> int:
    hours, separator, minutes = text.partition(":")
    valid = (
        separator
        and hours.isdigit()
        and minutes.isdigit()
        and len(minutes) == 2
        and int(minutes) < 60
        and (int(hours) < 24 or (int(hours) == 24 and int(minutes) == 0))
    )
    if not valid:
        raise ValueError(
            f"invalid time {text!r} in time frame {frame!r}: use HH:MM from 00:00 "
            "to 24:00"
        )
    return int(hours) * 60 + int(minutes)


def _format_minutes(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def parse_time_frames(stored: str) -> list[TimeFrame]:
    """Parse the stored `job_container.time_frames` text."""
    return [parse_time_frame(text) for text in stored.split(";") if text.strip()]


def in_time_frames(stored: str, now: datetime.datetime) -> bool:
    """Tell whether `now` (aware) is inside one of the stored frames, or none are set."""
    frames = parse_time_frames(stored)
    if not frames:
        return True
    local = now.astimezone()
    return any(frame.contains(local) for frame in frames)


@dataclass(frozen=True)
class IPRange:
    network: IPNetwork
    excluded: bool


def parse_ip_range(text: str) -> IPRange:
    """Parse `10.0.0.0/8`, `2001:db8::/32` or `!10.0.5.0/24`, or raise ValueError."""
    value = text.strip()
    excluded = value.startswith("!")
    if excluded:
        value = value[1:].strip()
    try:
        network = ipaddress.ip_network(value)
    except ValueError as error:
        raise ValueError(
            f"invalid IP range {text!r} ({error}): use a CIDR network such as "
            "10.0.0.0/8, or !10.0.5.0/24 to exclude one"
        ) from None
    return IPRange(network=network, excluded=excluded)


def format_ip_range(ip_range: IPRange) -> str:
    return ("!" if ip_range.excluded else "") + str(ip_range.network)


def in_ip_ranges(stored: str, address: str | None) -> bool:
    """Tell whether an agent address is admitted by the stored ranges.

    An unknown or unreadable address is admitted only when no ranges are set.
    """
    ranges = [
        parse_ip_range(text)
        for text in stored.split(IP_RANGE_SEPARATOR)
        if text.strip()
    ]
    if not ranges:
        return True
    parsed = parse_address(address) if address else None
    if parsed is None:
        return False
    if any(parsed in r.network for r in ranges if r.excluded):
        return False
    inclusions = [r.network for r in ranges if not r.excluded]
    return not inclusions or any(parsed in network for network in inclusions)
