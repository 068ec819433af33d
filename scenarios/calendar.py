"""Business hours: a time zone, weekly opening hours and holidays.

Rule: every decision is made on the local wall clock of the calendar's time zone (zoneinfo), so
DST changes need no special case: 09:00 local is 09:00 whatever the UTC offset that day.
Hours that end at or before they start run past midnight into the next day.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_ALIASES = {"daily": DAYS, "everyday": DAYS, "weekdays": DAYS[:5], "weekends": DAYS[5:], "weekend": DAYS[5:]}
RANGE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")
Interval = tuple[int, int]  # minutes since local midnight, [start, end)


@dataclass(frozen=True)
class Hours:
    """When a business is open; `is_open(now)` answers for any aware datetime."""

    zone: ZoneInfo
    weekly: tuple[tuple[Interval, ...], ...]  # index 0 = Monday
    holidays: frozenset[date]
    yearly: frozenset[tuple[int, int]]  # (month, day) closed every year

    def is_open(self, now: datetime) -> bool:
        local = (now if now.tzinfo else now.replace(tzinfo=UTC)).astimezone(self.zone)
        if self._holiday(local.date()):
            return False
        minute = local.hour * 60 + local.minute
        return any(start <= minute < end for start, end in self.weekly[local.weekday()])

    def _holiday(self, day: date) -> bool:
        return day in self.holidays or (day.month, day.day) in self.yearly


def parse_hours(zone: str, weekly: Mapping[str, str | Sequence[str]], holidays: Iterable[str]) -> Hours:
    """Build Hours from the file's words; ValueError says what is wrong."""
    days: list[list[Interval]] = [[] for _ in DAYS]
    for key, value in weekly.items():
        for day in parse_days(key):
            for start, end in parse_ranges(value):
                _add(days, day, start, end)
    dated, yearly = parse_holidays(holidays)
    return Hours(parse_zone(zone), tuple(tuple(sorted(d)) for d in days), dated, yearly)


def _add(days: list[list[Interval]], day: int, start: int, end: int) -> None:
    if end > start:
        days[day].append((start, end))
        return
    days[day].append((start, 24 * 60))
    if end:
        days[(day + 1) % 7].append((0, end))


def parse_zone(name: str) -> ZoneInfo:
    """A time zone by its IANA name, e.g. America/New_York."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(f"unknown time zone {name!r} (use an IANA name such as America/New_York)") from None


def parse_days(key: str) -> list[int]:
    """`mon-fri`, `sat`, `mon,wed`, `daily`, `weekdays` as weekday numbers (Monday = 0)."""
    out: list[int] = []
    for part in str(key).lower().replace(" ", "").split(","):
        if part in DAY_ALIASES:
            out += [DAYS.index(d) for d in DAY_ALIASES[part]]
        elif "-" in part:
            first, last = (_day(p) for p in part.split("-", 1))
            out += [(first + i) % 7 for i in range((last - first) % 7 + 1)]
        else:
            out.append(_day(part))
    return out


def _day(word: str) -> int:
    if word[:3] not in DAYS:
        raise ValueError(f"unknown day {word!r} (use mon, tue, wed, thu, fri, sat, sun, mon-fri, daily)")
    return DAYS.index(word[:3])


def parse_ranges(value: str | Sequence[str]) -> list[Interval]:
    """`09:00-17:00`, `09:00-12:00, 13:00-17:00`, a list of those, or `closed`."""
    items = [value] if isinstance(value, str) else list(value)
    out: list[Interval] = []
    for item in items:
        for part in str(item).split(","):
            if part.strip().lower() not in ("closed", ""):
                out.append(_range(part))
    return out


def _range(text: str) -> Interval:
    m = RANGE.match(text)
    if not m:
        raise ValueError(f"hours {text.strip()!r} should look like 09:00-17:00")
    h1, m1, h2, m2 = (int(g) for g in m.groups())
    if h1 > 23 or h2 > 24 or m1 > 59 or m2 > 59 or (h2 == 24 and m2):
        raise ValueError(f"hours {text.strip()!r}: not a time of day")
    return h1 * 60 + m1, h2 * 60 + m2


def parse_holidays(items: Iterable[str]) -> tuple[frozenset[date], frozenset[tuple[int, int]]]:
    """`2026-12-25` closes that date; `12-25` closes that day every year."""
    dated: set[date] = set()
    yearly: set[tuple[int, int]] = set()
    for item in items:
        text = str(item).strip()
        try:
            if len(text) == 5:
                d = date.fromisoformat(f"2000-{text}")  # a leap year, so 02-29 is allowed
                yearly.add((d.month, d.day))
            else:
                dated.add(date.fromisoformat(text))
        except ValueError:
            raise ValueError(f"holiday {text!r} should be a date like 2026-12-25 (or 12-25 for every year)") from None
    return frozenset(dated), frozenset(yearly)


__all__ = ["Hours", "parse_hours", "parse_zone"]
