"""The XNYS exchange calendar: which dates are sessions and when each one closes.

Backed by ``exchange_calendars`` (a maintained calendar, early closes included);
nothing else in the code knows holidays.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import exchange_calendars as xcals
import pandas as pd

NEW_YORK = ZoneInfo("America/New_York")
_CALENDAR_NAME = "XNYS"


@lru_cache(maxsize=1)
def _calendar() -> xcals.ExchangeCalendar:
    return xcals.get_calendar(_CALENDAR_NAME, start="1990-01-01")


def _utc(moment: datetime) -> pd.Timestamp:
    if moment.tzinfo is None:
        raise ValueError("a timezone-aware datetime is required")
    return pd.Timestamp(moment).tz_convert("UTC")


@lru_cache(maxsize=1)
def _all_sessions() -> tuple[date, date, frozenset[date]]:
    cal = _calendar()
    sessions = frozenset(label.date() for label in cal.sessions)
    return cal.first_session.date(), cal.last_session.date(), sessions


def is_session(day: date) -> bool:
    """Whether ``day`` is an XNYS session.

    Outside the calendar's range (before 1990, or past the year ahead it knows) a
    weekday counts as a session: old history predates the holiday tables.
    """
    first, last, sessions = _all_sessions()
    if day < first or day > last:
        return day.weekday() < 5
    return day in sessions


def session_close(day: date) -> datetime:
    """The UTC instant the session ``day`` closes (13:00 ET on early-close days)."""
    close = _calendar().session_close(pd.Timestamp(day))
    return close.to_pydatetime()  # type: ignore[no-any-return]


def last_closed_session(now: datetime) -> date:
    """The newest session whose close is at or before ``now``."""
    cal = _calendar()
    ts = _utc(now)
    minute = ts.floor("min")
    day = minute.tz_convert(NEW_YORK).date()
    candidate = pd.Timestamp(day)
    if not cal.is_session(candidate):
        candidate = cal.date_to_session(candidate, direction="previous")
    if cal.session_close(candidate) > ts:
        candidate = cal.previous_session(candidate)
    return candidate.date()  # type: ignore[no-any-return]


def sessions_between(start: date, end: date) -> list[date]:
    """Every session from ``start`` to ``end`` inclusive."""
    if end < start:
        return []
    cal = _calendar()
    labels = cal.sessions_in_range(pd.Timestamp(start), pd.Timestamp(end))
    return [label.date() for label in labels]


def next_session(day: date) -> date:
    cal = _calendar()
    ts = pd.Timestamp(day)
    if cal.is_session(ts):
        return cal.next_session(ts).date()  # type: ignore[no-any-return]
    return cal.date_to_session(ts, direction="next").date()  # type: ignore[no-any-return]


def previous_session(day: date) -> date:
    cal = _calendar()
    ts = pd.Timestamp(day)
    if cal.is_session(ts):
        return cal.previous_session(ts).date()  # type: ignore[no-any-return]
    return cal.date_to_session(ts, direction="previous").date()  # type: ignore[no-any-return]


def next_poll_time(now: datetime, delay: timedelta) -> datetime:
    """The first session close plus ``delay`` strictly after ``now`` (UTC)."""
    cal = _calendar()
    ts = _utc(now)
    day = pd.Timestamp(ts.tz_convert(NEW_YORK).date())
    session = day if cal.is_session(day) else cal.date_to_session(day, direction="next")
    while True:
        moment = cal.session_close(session) + pd.Timedelta(delay)
        if moment > ts:
            return moment.to_pydatetime()  # type: ignore[no-any-return]
        session = cal.next_session(session)
