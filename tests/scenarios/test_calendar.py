"""Business hours on the local wall clock, across DST changes."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest

from scenarios.calendar import parse_hours

UTC = UTC
NY = parse_hours("America/New_York", {"mon-fri": "09:00-17:00", "sat": "10:00-12:00, 13:00-14:00",
                                      "sun": "01:00-01:30"}, ["2026-12-25", "01-01"])


@pytest.mark.parametrize(("utc", "is_open"), [
    # spring forward, Sunday 2026-03-08 02:00 EST -> 03:00 EDT
    (datetime(2026, 3, 6, 13, 30, tzinfo=UTC), False),   # Fri 08:30 EST
    (datetime(2026, 3, 6, 14, 30, tzinfo=UTC), True),    # Fri 09:30 EST
    (datetime(2026, 3, 9, 13, 30, tzinfo=UTC), True),    # Mon 09:30 EDT (a fixed -5 offset says 08:30)
    (datetime(2026, 3, 9, 20, 30, tzinfo=UTC), True),    # Mon 16:30 EDT
    (datetime(2026, 3, 9, 21, 30, tzinfo=UTC), False),   # Mon 17:30 EDT
    (datetime(2026, 3, 8, 6, 15, tzinfo=UTC), True),     # Sun 01:15 EST, just before the jump
    (datetime(2026, 3, 8, 7, 15, tzinfo=UTC), False),    # Sun 03:15 EDT
    # fall back, Sunday 2026-11-01 02:00 EDT -> 01:00 EST: 01:15 happens twice, open both times
    (datetime(2026, 11, 1, 5, 15, tzinfo=UTC), True),    # 01:15 EDT
    (datetime(2026, 11, 1, 6, 15, tzinfo=UTC), True),    # 01:15 EST
    (datetime(2026, 11, 1, 6, 45, tzinfo=UTC), False),   # 01:45 EST
    (datetime(2026, 11, 2, 13, 30, tzinfo=UTC), False),  # Mon 08:30 EST (a fixed -4 offset says 09:30)
    (datetime(2026, 11, 2, 14, 30, tzinfo=UTC), True),   # Mon 09:30 EST
    (datetime(2026, 10, 30, 13, 30, tzinfo=UTC), True),  # Fri 09:30 EDT
    # Saturday's two ranges, holidays
    (datetime(2026, 1, 10, 16, 30, tzinfo=UTC), True),   # Sat 11:30
    (datetime(2026, 1, 10, 17, 30, tzinfo=UTC), False),  # Sat 12:30
    (datetime(2026, 12, 25, 15, 0, tzinfo=UTC), False),  # Christmas, a Friday
    (datetime(2027, 1, 1, 15, 0, tzinfo=UTC), False),    # New Year, every year
])
def test_open(utc, is_open):
    assert NY.is_open(utc) is is_open


def test_overnight_hours_run_into_the_next_day():
    hours = parse_hours("Europe/London", {"fri": "22:00-02:00"}, [])
    assert hours.is_open(datetime(2026, 1, 9, 23, 0, tzinfo=UTC))
    assert hours.is_open(datetime(2026, 1, 10, 1, 0, tzinfo=UTC))
    assert not hours.is_open(datetime(2026, 1, 10, 3, 0, tzinfo=UTC))


@pytest.mark.parametrize(("weekly", "message"), [
    ({"funday": "09:00-17:00"}, "unknown day 'funday'"),
    ({"mon": "9-5"}, "should look like 09:00-17:00"),
    ({"mon": "25:00-26:00"}, "not a time of day"),
])
def test_bad_hours(weekly, message):
    with pytest.raises(ValueError, match=message):
        parse_hours("UTC", weekly, [])
