"""The poll scheduler: after each XNYS session's close plus a delay, once at start-up,
and never twice at once (APScheduler 3, coalesced, one instance; one leader)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, time, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger

from app.market import calendar

log = logging.getLogger("crosswatch.scheduler")


class SessionCloseTrigger(BaseTrigger):  # type: ignore[misc]
    """Fires at each session's close plus ``delay`` (XNYS, early closes included)."""

    def __init__(self, delay: timedelta) -> None:
        self.delay = delay

    def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime:
        after = max(now, previous_fire_time) if previous_fire_time else now
        return calendar.next_poll_time(after.astimezone(UTC), self.delay)

    def __str__(self) -> str:
        return f"session close + {self.delay}"


class PollScheduler:
    """Schedules ``job`` after every session close and once at start."""

    def __init__(self, job: Callable[[str], Awaitable[object]], poll_time: time) -> None:
        self.job = job
        self.trigger = SessionCloseTrigger(calendar.close_delay(poll_time))
        self.scheduler = AsyncIOScheduler(timezone=UTC)

    async def _scheduled(self) -> None:
        try:
            await self.job("scheduled")
        except Exception:
            log.exception("scheduled poll failed")

    def next_run(self) -> datetime | None:
        job = self.scheduler.get_job("poll")
        return None if job is None else job.next_run_time

    async def run(self, stop: asyncio.Event, *, poll_at_start: bool = True) -> None:
        """Run until ``stop`` is set. The start-up poll also catches up after downtime:
        each poll fetches every session missing since the newest stored one."""
        self.scheduler.add_job(
            self._scheduled,
            self.trigger,
            id="poll",
            coalesce=True,
            max_instances=1,
            misfire_grace_time=6 * 3600,
            replace_existing=True,
        )
        self.scheduler.start()
        log.info("scheduler started", extra={"next_poll": str(self.next_run())})
        try:
            if poll_at_start:
                try:
                    await self.job("startup")
                except Exception:
                    log.exception("start-up poll failed")
            await stop.wait()
        finally:
            self.scheduler.shutdown(wait=False)
