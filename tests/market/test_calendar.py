"""The exchange calendar outlives the year ``exchange_calendars`` builds by default."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time

from app.market import calendar
from app.market.calendar import close_delay
from tests.support.yahoo import at_new_york

#: A process started on this day (far past any default calendar's end, so the test
#: does not depend on the day it runs) and kept running for three years.
STARTED = datetime(2034, 1, 3, 21, 0, tzinfo=UTC)
DELAY = close_delay(clock_time(17, 15))


def test_a_process_up_for_years_keeps_scheduling_polls() -> None:
    now = STARTED
    rebuilt_ends: set[date] = set()
    while now < STARTED + timedelta(days=3 * 366):
        due = calendar.next_poll_time(now, DELAY)
        close = due - DELAY
        session = close.astimezone(calendar.NEW_YORK).date()
        assert due > now
        assert calendar.is_session(session) and calendar.session_close(session) == close
        # No session closed between ``now`` and the one chosen (none was skipped).
        previous = calendar.previous_session(session)
        assert calendar.session_close(previous) + DELAY <= now
        assert calendar.last_closed_session(now) in (previous, session)
        # Rebuilt ahead of its end: the calendar always reaches a year past the clock.
        assert calendar.covered_until() >= now.date() + timedelta(days=360)
        rebuilt_ends.add(calendar.covered_until())
        now += timedelta(hours=23)  # a different hour of the day each step
    assert len(rebuilt_ends) >= 2, "the calendar was never rebuilt as the clock advanced"


def test_holidays_and_early_closes_of_a_year_the_default_calendar_does_not_know() -> None:
    thanksgiving = date(2036, 11, 27)
    assert not calendar.is_session(thanksgiving)
    assert not calendar.is_session(date(2036, 12, 25))
    # Black Friday closes at 13:00, so its poll is at 14:15.
    assert calendar.next_poll_time(at_new_york(date(2036, 11, 26), 18), DELAY) == at_new_york(
        date(2036, 11, 28), 14, 15
    )
    assert calendar.next_session(date(2036, 11, 26)) == date(2036, 11, 28)
    assert calendar.sessions_between(date(2036, 11, 26), date(2036, 11, 30)) == [
        date(2036, 11, 26),
        date(2036, 11, 28),
    ]


def test_dates_before_the_calendar_in_a_fresh_process() -> None:
    # A fresh process whose first question is an old date must not build a calendar
    # that ends before it starts.
    script = (
        "from datetime import date\n"
        "from app.market import calendar\n"
        "print(calendar.is_session(date(1800, 1, 1)), calendar.is_session(date(1800, 1, 4)))\n"
        "days = calendar.sessions_between(date(1989, 12, 28), date(1990, 1, 3))\n"
        "print(' '.join(d.isoformat() for d in days))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    weekday_1800, saturday_1800 = done.stdout.splitlines()[0].split()
    assert (weekday_1800, saturday_1800) == ("True", "False")
    # Weekdays before the first session the calendar knows (1990-01-02), sessions after.
    assert done.stdout.splitlines()[1] == "1989-12-28 1989-12-29 1990-01-02 1990-01-03"
