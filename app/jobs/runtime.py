"""Wiring of the background roles: the poller (with its HTTP client) and the scheduler.

Built at process start by ``serve`` (in the app's lifespan), ``crosswatch scheduler``
or ``crosswatch poll`` — never at import.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager

import httpx

from app.clock import Clock
from app.db.engine import Database
from app.jobs.leader import CHECK_INTERVAL_SECONDS, Leadership, Tenure, while_leading
from app.jobs.poll import Poller, PollReport
from app.jobs.scheduler import PollScheduler
from app.jobs.watch import check, timing
from app.market.providers import build_chain, provider_client
from app.settings import Settings
from app.webhooks.callbacks import Enqueue, RulesOf

log = logging.getLogger("crosswatch.jobs")


@asynccontextmanager
async def poller(
    db: Database,
    settings: Settings,
    *,
    clock: Clock,
    transport: httpx.AsyncBaseTransport | None = None,
    enqueue: Enqueue | None = None,
    rules: RulesOf | None = None,
    on_committed: Callable[[PollReport], None] | None = None,
) -> AsyncIterator[Poller]:
    """A :class:`Poller` with one shared provider HTTP client, closed on exit."""
    async with provider_client(settings, transport) as client:
        yield Poller(
            db,
            settings,
            build_chain(settings, client),
            clock=clock,
            enqueue=enqueue,
            rules=rules,
            on_committed=on_committed,
        )


class SerialPolls:
    """Runs polls one at a time within the process (start-up, scheduled, on demand).

    With a ``tenure``, each poll first asks whether this process still leads and is
    skipped (None) if it does not: a leader whose lock was lost must not poll beside
    the standby that took over.
    """

    def __init__(self, target: Poller, tenure: Tenure | None = None) -> None:
        self.target = target
        self.tenure = tenure
        self.lock = asyncio.Lock()
        self.last: PollReport | None = None

    async def __call__(
        self, trigger: str, symbols: Sequence[str] | None = None
    ) -> PollReport | None:
        async with self.lock:
            if self.tenure is not None and not await self.tenure.confirm():
                log.warning("skipped the %s poll: this process no longer leads", trigger)
                return None
            self.last = await self.target.poll(symbols, trigger=trigger)
            return self.last


class LeadingWatch:
    """The scheduled watch check: skipped (with a warning) unless this process still
    leads, and never raising into the scheduler."""

    def __init__(self, watcher: check.Watcher, tenure: Tenure | None = None) -> None:
        self.watcher = watcher
        self.tenure = tenure
        self.last: check.WatchReport | None = None

    async def __call__(self) -> check.WatchReport | None:
        if self.tenure is not None and not await self.tenure.confirm():
            log.warning("skipped the watch check: this process no longer leads")
            return None
        try:
            self.last = await self.watcher.check()
        except Exception:
            log.exception("the watch check failed")
            return None
        return self.last


async def run_scheduler(
    db: Database,
    settings: Settings,
    stop: asyncio.Event,
    *,
    clock: Clock,
    enqueue: Enqueue | None = None,
    rules: RulesOf | None = None,
    on_committed: Callable[[PollReport], None] | None = None,
    started: Callable[[PollScheduler], None] | None = None,
    leadership: Leadership | None = None,
    check_interval: float = CHECK_INTERVAL_SECONDS,
) -> None:
    """Lead (or wait to lead), then poll after every session close until ``stop``, and
    run the intraday watch during sessions (:mod:`app.jobs.watch`).

    A leader that loses its lock steps down and waits to lead again (see
    :mod:`app.jobs.leader`); each new tenure starts with a catch-up poll.
    """
    lock = leadership if leadership is not None else Leadership(db)

    async def lead(tenure: Tenure) -> None:
        async with (
            poller(
                db, settings, clock=clock, enqueue=enqueue, rules=rules, on_committed=on_committed
            ) as target,
            check.watcher(db, settings, clock=clock, enqueue=enqueue, rules=rules) as watcher,
        ):
            polls = SerialPolls(target, tenure)
            scheduler = PollScheduler(polls, settings.poll_time)
            off = timing.unavailable(settings)
            if off is None:
                timing.schedule(scheduler.scheduler, LeadingWatch(watcher, tenure), settings)
            else:
                log.info(off)
            if started is not None:
                started(scheduler)
            await scheduler.run(tenure.ended)
            if not stop.is_set():
                # Stepping down: a poll already past its check finishes before its
                # HTTP client closes (at stop the process exits and abandons it).
                async with polls.lock:
                    pass

    await while_leading(lock, stop, lead, interval=check_interval)
