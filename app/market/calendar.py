"""The XNYS exchange calendar: which dates are sessions and when each one closes.

Backed by ``exchange_calendars`` (a maintained calendar, early closes included);
nothing else in the code knows holidays.

An ``exchange_calendars`` calendar has a last session (by default a year after it was
built). This module builds it to reach ``HORIZON`` past the newest date it was asked
about, and rebuilds it (once, under a lock, about 1 s) whenever a date within
``MARGIN`` of its end is asked about, so a process that runs for years never meets the
end: the dates asked about follow the injected clock, not the build day.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import exchange_calendars as xcals
import pandas as pd

from app.settings import REGULAR_CLOSE

NEW_YORK = ZoneInfo("America/New_York")
_CALENDAR_NAME = "XNYS"
_FIRST_DAY = date(1990, 1, 1)
#: How far past the newest date asked about the calendar is built.
HORIZON = timedelta(days=2 * 366)
#: A date this close to the calendar's end triggers a rebuild (a poll looks ahead a
#: few sessions; a year of headroom keeps rebuilds to about one a year).
MARGIN = timedelta(days=366)
#: Dates past this are never built for (``is_session`` falls back to weekdays).
_FURTHEST_DAY = date(2200, 1, 1)


@dataclass(frozen=True)
class _Built:
    calendar: xcals.ExchangeCalendar
    first: date
    last: date
    sessions: frozenset[date]


_built: _Built | None = None
_building = threading.Lock()


def _covering(day: date) -> _Built:
    """The calendar, rebuilt first if ``day`` is within ``MARGIN`` of its end."""
    built = _built
    # A date before the calendar's first day needs no more than the first build.
    wanted = min(max(day, _FIRST_DAY) + MARGIN, _FURTHEST_DAY)
    if built is not None and wanted <= built.last:
        return built
    with _building:
        return _build(wanted)


def _build(wanted: date) -> _Built:
    global _built
    if _built is not None and wanted <= _built.last:
        return _built  # another thread rebuilt it meanwhile
    end = wanted - MARGIN + HORIZON
    cal = xcals.get_calendar(_CALENDAR_NAME, start=_FIRST_DAY.isoformat(), end=end.isoformat())
    sessions = frozenset(label.date() for label in cal.sessions)
    _built = _Built(cal, cal.first_session.date(), cal.last_session.date(), sessions)
    return _built


def _calendar(covering: date) -> xcals.ExchangeCalendar:
    return _covering(covering).calendar


def covered_until() -> date:
    """The last date the current calendar knows (it grows; see the module docstring)."""
    return _built.last if _built is not None else _FIRST_DAY


def _utc(moment: datetime) -> pd.Timestamp:
    if moment.tzinfo is None:
        raise ValueError("a timezone-aware datetime is required")
    return pd.Timestamp(moment).tz_convert("UTC")


def is_session(day: date) -> bool:
    """Whether ``day`` is an XNYS session.

    Outside the calendar's range (before 1990, or past the year ahead it knows) a
    weekday counts as a session: old history predates the holiday tables.
    """
    built = _covering(day)
    if day < _FIRST_DAY or day > built.last:
        return day.weekday() < 5
    return day in built.sessions


def session_open(day: date) -> datetime:
    """The UTC instant the session ``day`` opens (09:30 ET)."""
    opening = _calendar(day).session_open(pd.Timestamp(day))
    return opening.to_pydatetime()  # type: ignore[no-any-return]


def session_close(day: date) -> datetime:
    """The UTC instant the session ``day`` closes (13:00 ET on early-close days)."""
    close = _calendar(day).session_close(pd.Timestamp(day))
    return close.to_pydatetime()  # type: ignore[no-any-return]


def last_closed_session(now: datetime) -> date:
    """The newest session whose close is at or before ``now``."""
    ts = _utc(now)
    cal = _calendar(ts.date())
    minute = ts.floor("min")
    day = minute.tz_convert(NEW_YORK).date()
    candidate = pd.Timestamp(day)
    if not cal.is_session(candidate):
        candidate = cal.date_to_session(candidate, direction="previous")
    if cal.session_close(candidate) > ts:
        candidate = cal.previous_session(candidate)
    return candidate.date()  # type: ignore[no-any-return]


def sessions_between(start: date, end: date) -> list[date]:
    """Every session from ``start`` to ``end`` inclusive (before the calendar's first
    session, every weekday, as :func:`is_session` counts them)."""
    if end < start:
        return []
    built = _covering(end)
    early = [
        start + timedelta(days=offset)
        for offset in range((min(end, _FIRST_DAY - timedelta(days=1)) - start).days + 1)
        if (start + timedelta(days=offset)).weekday() < 5
    ]
    if end < built.first:
        return early
    labels = built.calendar.sessions_in_range(
        pd.Timestamp(max(start, built.first)), pd.Timestamp(end)
    )
    return early + [label.date() for label in labels]


def next_session(day: date) -> date:
    cal = _calendar(day)
    ts = pd.Timestamp(day)
    if cal.is_session(ts):
        return cal.next_session(ts).date()  # type: ignore[no-any-return]
    return cal.date_to_session(ts, direction="next").date()  # type: ignore[no-any-return]


def previous_session(day: date) -> date:
    cal = _calendar(day)
    ts = pd.Timestamp(day)
    if cal.is_session(ts):
        return cal.previous_session(ts).date()  # type: ignore[no-any-return]
    return cal.date_to_session(ts, direction="previous").date()  # type: ignore[no-any-return]


def close_delay(poll_time: time) -> timedelta:
    """``POLL_TIME`` as a delay after a regular 16:00 close (17:15 → 1 h 15 min).

    The same delay follows an early close (13:00 → 14:15), from the calendar. The
    settings refuse an earlier ``POLL_TIME`` at start-up; this guards other callers.
    """
    delta = datetime.combine(datetime.min, poll_time) - datetime.combine(
        datetime.min, REGULAR_CLOSE
    )
    if delta < timedelta(0):
        raise ValueError("POLL_TIME must be at or after the 16:00 close")
    return delta


def next_poll_time(now: datetime, delay: timedelta) -> datetime:
    """The first session close plus ``delay`` strictly after ``now`` (UTC)."""
    ts = _utc(now)
    cal = _calendar(ts.date())
    day = pd.Timestamp(ts.tz_convert(NEW_YORK).date())
    session = day if cal.is_session(day) else cal.date_to_session(day, direction="next")
    while True:
        moment = cal.session_close(session) + pd.Timedelta(delay)
        if moment > ts:
            return moment.to_pydatetime()  # type: ignore[no-any-return]
        session = cal.next_session(session)
