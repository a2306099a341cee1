"""When the intraday watch checks: each XNYS session's open + 15 min, then every
``WATCH_INTERVAL_MINUTES`` until the close (exclusive), as an APScheduler job; and why
it cannot run with some settings."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta

from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.base import BaseTrigger

from app.market import calendar
from app.settings import Settings

#: The first check of a session is this long after its open.
FIRST_CHECK_AFTER_OPEN = timedelta(minutes=15)


def session_at(moment: datetime) -> date | None:
    """The XNYS session open at ``moment`` (open inclusive, close exclusive), or None."""
    day = moment.astimezone(calendar.NEW_YORK).date()
    if not calendar.is_session(day):
        return None
    if calendar.session_open(day) <= moment < calendar.session_close(day):
        return day
    return None


def next_open(moment: datetime) -> datetime:
    """The first session open strictly after ``moment`` (UTC)."""
    day = moment.astimezone(calendar.NEW_YORK).date()
    if not calendar.is_session(day):
        day = calendar.next_session(day)
    while calendar.session_open(day) <= moment:
        day = calendar.next_session(day)
    return calendar.session_open(day)


def next_check_time(now: datetime, interval: timedelta) -> datetime:
    """The first check strictly after ``now``: each session's open + 15 min, then every
    ``interval``, while before its close (13:00 on early-close days)."""
    day = now.astimezone(calendar.NEW_YORK).date()
    if not calendar.is_session(day):
        day = calendar.next_session(day)
    while True:
        first = calendar.session_open(day) + FIRST_CHECK_AFTER_OPEN
        if now < first:
            return first
        moment = first + ((now - first) // interval + 1) * interval
        if moment < calendar.session_close(day):
            return moment
        day = calendar.next_session(day)


class WatchTrigger(BaseTrigger):  # type: ignore[misc]
    """Fires at :func:`next_check_time` (APScheduler trigger)."""

    def __init__(self, interval: timedelta) -> None:
        self.interval = interval

    def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime:
        after = max(now, previous_fire_time) if previous_fire_time else now
        return next_check_time(after, self.interval)

    def __str__(self) -> str:
        return f"session open + {FIRST_CHECK_AFTER_OPEN}, every {self.interval}, until the close"


def no_live_source(settings: Settings) -> str | None:
    """Why no live price can be had with these settings (Yahoo not configured), or None."""
    if "yahoo" not in settings.providers:
        return "the intraday watch needs the yahoo provider for live prices (CROSSWATCH_PROVIDERS)"
    return None


def unavailable(settings: Settings) -> str | None:
    """Why the scheduler does not watch with these settings, or None."""
    if settings.watch_interval_minutes == 0:
        return "the intraday watch is off (CROSSWATCH_WATCH_INTERVAL_MINUTES=0)"
    return no_live_source(settings)


def schedule(
    scheduler: BaseScheduler,
    job: Callable[[], object],
    settings: Settings,
) -> None:
    """Add the watch ``job`` to ``scheduler`` at :class:`WatchTrigger` times; a check
    missed by more than one interval is skipped, never run late."""
    interval = timedelta(minutes=settings.watch_interval_minutes)
    scheduler.add_job(
        job,
        WatchTrigger(interval),
        id="watch",
        coalesce=True,
        max_instances=1,
        misfire_grace_time=int(interval.total_seconds()),
        replace_existing=True,
    )
