"""The intraday cross watch: live prices against each watched symbol's trigger close.

During each XNYS session the leading scheduler checks, every ``WATCH_INTERVAL_MINUTES``
from 15 minutes after the open until the close (exclusive), the **watch list**: the
(symbol, rule) pairs whose newest close needs to move at most ``WATCH_DISTANCE_PCT`` %
toward its trigger close to make a cross, those already beyond it included, for the
default rule and every subscription's rule. The trigger close is the kernel's
(:func:`app.signals.kernel.trigger_close`, as ``/v1/signals`` serves it) from the
closes up to the session before the watched one.

A live price at or beyond the trigger close in the direction of the cross writes a
live ``cross_watch`` event, id ``event_id(symbol, rule, "cross_watch", session)``:
inserted only if absent (``ON CONFLICT DO NOTHING … RETURNING``), and enqueued only by
the transaction that inserted it, so there is at most one per symbol, rule and session
whatever the number of checks or processes. Live prices are never stored as closes.

:func:`settle` runs after each poll that added sessions: a ``cross_watch`` whose
session's close is stored is confirmed by the cross event detection wrote for it, or
answered by a ``cross_watch_missed`` (same id scheme) when the close did not cross.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import httpx
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.base import BaseTrigger
from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from app.clock import Clock
from app.db.engine import Database
from app.market import calendar
from app.market import repository as market
from app.market.models import DailyBar
from app.market.providers import (
    ProviderError,
    RetryPolicy,
    YahooProvider,
    build_limits,
    provider_client,
)
from app.market.providers.yahoo import LiveQuote
from app.settings import Settings
from app.signals import analysis as an
from app.signals import repository
from app.signals.analysis import DEFAULT_RULE, Rule
from app.signals.models import Event, event_id
from app.status import watch as status_watch
from app.webhooks.callbacks import Enqueue, RulesOf

log = logging.getLogger("crosswatch.watch")

#: The first check of a session is this long after its open.
FIRST_CHECK_AFTER_OPEN = timedelta(minutes=15)
#: Watches of sessions this recent are settled by a poll (older ones stay as they are).
SETTLE_WITHIN = timedelta(days=30)
#: The cross a regime turns into, by the regime of the newest close.
_DIRECTION = {-1: "golden", 1: "death"}


# --- when ------------------------------------------------------------------------


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


# --- what ------------------------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    """One (symbol, rule) for the watched ``session``: its newest close and trigger.

    ``direction``: the cross the next close would make (``golden`` from a death
    regime, ``death`` from a golden one). ``needed_pct``: the move from ``close`` to
    ``trigger_close`` toward that cross, in % of ``close`` (0 or below: already
    beyond). ``skipped``: why it cannot be watched (then the figures may be None).
    """

    symbol: str
    rule: Rule
    session: date
    close_session: date | None = None
    close: float | None = None
    trigger_close: float | None = None
    direction: str | None = None
    needed_pct: float | None = None
    skipped: str | None = None

    def listed(self, within_pct: float) -> bool:
        return self.needed_pct is not None and self.needed_pct <= within_pct


def needed_pct(direction: str, price: float, trigger: float) -> float:
    """The move from ``price`` to ``trigger`` toward a ``direction`` cross, % of ``price``."""
    move = (trigger - price) if direction == "golden" else (price - trigger)
    return move / price * 100.0


def candidates(
    session: Session, day: date, rules: Sequence[Rule], symbols: Sequence[str]
) -> list[Candidate]:
    """Every symbol's figures for watching ``day`` under each rule (symbol order, then
    rule order). Only a symbol whose newest close is the session before ``day`` can be
    watched: the trigger close is that session's."""
    expected = calendar.previous_session(day)
    panel = market.load_panel(session, symbols)
    found: dict[tuple[str, Rule], Candidate] = {}
    for rule in rules:
        analysis = an.analyse(panel, rule)
        for row, symbol in enumerate(panel.symbols):
            found[(symbol, rule)] = _candidate(analysis, row, symbol, rule, day, expected)
    return [found[(symbol, rule)] for symbol in panel.symbols for rule in rules]


def _candidate(
    analysis: an.Analysis, row: int, symbol: str, rule: Rule, day: date, expected: date
) -> Candidate:
    if analysis.lengths[row] == 0:
        return Candidate(symbol, rule, day, skipped="no stored closes")
    newest = analysis.session_of(row, -1)
    close = float(analysis.panel.closes[row, -1])
    if newest != expected:
        state = "already stored" if newest >= day else f"expected {expected}"
        return Candidate(
            symbol, rule, day, newest, close, skipped=f"newest close {newest} ({state})"
        )
    direction = _DIRECTION.get(int(analysis.signals.regime[row, -1]))
    trigger = an.num(analysis.trigger[row])
    if direction is None or trigger is None:
        reason = "no regime yet" if direction is None else "no trigger close"
        return Candidate(symbol, rule, day, newest, close, trigger, direction, skipped=reason)
    return Candidate(
        symbol, rule, day, newest, close, trigger, direction, needed_pct(direction, close, trigger)
    )


@dataclass(frozen=True)
class Finding:
    """What one check found for a candidate: its live quote (or why none), the move
    still needed from the live price (``distance_pct``), and the event written."""

    candidate: Candidate
    quote: LiveQuote | None = None
    error: str | None = None
    distance_pct: float | None = None
    event: Event | None = None
    written: bool = False

    @property
    def crossed(self) -> bool:
        return self.distance_pct is not None and self.distance_pct <= 0


@dataclass
class WatchReport:
    """One check: the session watched (None: outside a session, see ``outside``)."""

    at: datetime
    session: date | None
    findings: list[Finding] = field(default_factory=list)
    candidates: list[Candidate] = field(default_factory=list)
    outside: str | None = None

    @property
    def written(self) -> list[Event]:
        return [f.event for f in self.findings if f.written and f.event is not None]


def cross_watch_event(
    candidate: Candidate, quote: LiveQuote, distance: float, now: datetime
) -> Event:
    assert candidate.direction is not None and candidate.trigger_close is not None
    return Event(
        id=event_id(candidate.symbol, candidate.rule.key, "cross_watch", candidate.session),
        type="cross_watch",
        symbol=candidate.symbol,
        session=candidate.session,
        rule=candidate.rule.key,
        live=True,
        data={
            "direction": candidate.direction,
            "live_price": quote.price,
            "trigger_close": candidate.trigger_close,
            "distance_pct": distance,
            "as_of": quote.as_of.isoformat(),
            "session": candidate.session.isoformat(),
            "rule": candidate.rule.as_dict(),
            "provisional": True,
        },
        created_at=now,
    )


class Watcher:
    """Runs checks: candidates from the store, live quotes from Yahoo, events written.

    The candidates of a session are kept between checks while the store's data
    versions and the rules stay the same (the newest closes do not change in a session).
    """

    def __init__(
        self,
        db: Database,
        settings: Settings,
        provider: YahooProvider,
        *,
        clock: Clock,
        enqueue: Enqueue | None = None,
        rules: RulesOf | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.provider = provider
        self.clock = clock
        self.enqueue = enqueue
        self.rules = rules
        self._cache: tuple[Any, list[Candidate]] | None = None

    async def check(
        self, *, at: datetime | None = None, symbols: Sequence[str] | None = None
    ) -> WatchReport:
        """One check at ``at`` (default: now). Without ``symbols``, the tracked symbols'
        watch list is quoted; with them, every one of them that has a trigger close."""
        moment = at or self.clock()
        day = session_at(moment)
        if day is None:
            return WatchReport(
                moment,
                None,
                outside=f"outside an XNYS session at {moment.isoformat()}; the next opens at "
                f"{next_open(moment).astimezone(calendar.NEW_YORK).isoformat()}",
            )
        found = await asyncio.to_thread(self._candidates, day, symbols)
        within = self.settings.watch_distance_pct
        quoted = [
            c for c in found if c.skipped is None and (symbols is not None or c.listed(within))
        ]
        quotes = await self._quotes(sorted({c.symbol for c in quoted}), moment)
        findings = [self._finding(c, quotes[c.symbol], day) for c in quoted]
        crossed = [f for f in findings if f.event is not None]
        if crossed:
            written = await asyncio.to_thread(self._write, [f.event for f in crossed if f.event])
            findings = [
                Finding(f.candidate, f.quote, f.error, f.distance_pct, f.event, True)
                if f.event is not None and f.event.id in written
                else f
                for f in findings
            ]
        report = WatchReport(moment, day, findings, found)
        if symbols is None:
            record_for_status(self.db, report)
        log.info(
            "watch checked",
            extra={
                "session": str(day),
                "quoted": len(quoted),
                "crossed": len(crossed),
                "written": len(report.written),
            },
        )
        return report

    def _candidates(self, day: date, symbols: Sequence[str] | None) -> list[Candidate]:
        with self.db.transaction(write=False) as session:
            names = list(symbols) if symbols else market.tracked_symbols(session)
            rules = list(
                dict.fromkeys([DEFAULT_RULE, *(self.rules(session) if self.rules else ())])
            )
            key = (
                day,
                tuple(names),
                tuple(rules),
                tuple(sorted(market.data_versions(session).items())),
            )
            if self._cache is not None and self._cache[0] == key:
                return self._cache[1]
            found = candidates(session, day, rules, names)
        self._cache = (key, found)
        return found

    async def _quotes(self, symbols: Sequence[str], moment: datetime) -> dict[str, LiveQuote | str]:
        async def one(symbol: str) -> LiveQuote | str:
            try:
                return await self.provider.live_quote(symbol, now=moment)
            except ProviderError as exc:
                return exc.reason

        answers = await asyncio.gather(*(one(symbol) for symbol in symbols))
        return dict(zip(symbols, answers, strict=True))

    def _finding(self, candidate: Candidate, quote: LiveQuote | str, day: date) -> Finding:
        if isinstance(quote, str):
            return Finding(candidate, error=quote)
        if quote.session != day:
            return Finding(candidate, quote, error=f"the live quote is of session {quote.session}")
        assert candidate.direction is not None and candidate.trigger_close is not None
        distance = needed_pct(candidate.direction, quote.price, candidate.trigger_close)
        if distance > 0:
            return Finding(candidate, quote, distance_pct=distance)
        event = cross_watch_event(candidate, quote, distance, self.clock())
        return Finding(candidate, quote, distance_pct=distance, event=event)

    def _write(self, events: list[Event]) -> set[str]:
        with self.db.transaction() as session:
            fresh = repository.insert_new(session, events)
            if fresh and self.enqueue is not None:
                self.enqueue(session, fresh)
        for event in fresh:
            log.info(
                "event",
                extra={"id": event.id, "type": event.type, "symbol": event.symbol, "live": True},
            )
        return {event.id for event in fresh}


def record_for_status(db: Database, report: WatchReport) -> None:
    """Show ``report``, a check of ``db``'s watch list, on the status page of this
    process (:mod:`app.status.watch`)."""
    assert report.session is not None, "only a check during a session has a watch list"
    rows = [
        status_watch.WatchRow(
            symbol=f.candidate.symbol,
            rule=f.candidate.rule.key,
            direction=f.candidate.direction,
            trigger_close=f.candidate.trigger_close,
            live_price=f.quote.price if f.quote is not None else None,
            as_of=f.quote.as_of if f.quote is not None else None,
            distance_pct=f.distance_pct,
            event_id=f.event.id if f.event is not None else None,
            error=f.error,
        )
        for f in report.findings
    ]
    status_watch.record(db, status_watch.WatchCard(report.session, report.at, rows))


@asynccontextmanager
async def watcher(
    db: Database,
    settings: Settings,
    *,
    clock: Clock,
    transport: httpx.AsyncBaseTransport | None = None,
    enqueue: Enqueue | None = None,
    rules: RulesOf | None = None,
) -> AsyncIterator[Watcher]:
    """A :class:`Watcher` quoting Yahoo (``YAHOO_BASE_URL``, its limits and retries)
    through its own HTTP client, closed on exit."""
    async with provider_client(settings, transport) as client:
        provider = YahooProvider(
            client,
            base_url=settings.yahoo_base_url,
            timeout=settings.provider_timeout_seconds,
            retry=RetryPolicy(retries=settings.provider_retries),
            limit=build_limits(settings).get("yahoo"),
        )
        yield Watcher(db, settings, provider, clock=clock, enqueue=enqueue, rules=rules)


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
    job: Callable[[], Any],
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


def describe(report: WatchReport, within_pct: float, *, explicit: bool) -> list[str]:
    """One line per (symbol, rule) checked, for a person: the live price, the trigger,
    the move still needed, and the event written or not. ``explicit``: the symbols were
    named, so those that could not be watched are listed too, with why."""
    lines = []
    for finding in report.findings:
        c = finding.candidate
        head = f"{c.symbol} {c.rule.key} {c.direction} watch"
        if finding.error is not None:
            lines.append(f"{head}: trigger {c.trigger_close:,.2f}; no live price: {finding.error}")
            continue
        assert finding.quote is not None and finding.distance_pct is not None
        figures = (
            f"live {finding.quote.price:,.2f} at {finding.quote.as_of.isoformat()}, "
            f"trigger {c.trigger_close:,.2f}, distance {finding.distance_pct:+.2f}%"
        )
        if finding.written and finding.event is not None:
            outcome = f"cross_watch written ({finding.event.id})"
        elif finding.event is not None:
            outcome = f"cross_watch already written ({finding.event.id})"
        else:
            outcome = "short of the trigger, no event"
        lines.append(f"{head}: {figures}: {outcome}")
    if explicit:
        lines.extend(
            f"{c.symbol} {c.rule.key}: not watched: {c.skipped}"
            for c in report.candidates
            if c.skipped is not None
        )
    elif not report.findings:
        tracked = len({c.symbol for c in report.candidates})
        lines.append(
            f"no symbol within {within_pct:g}% of its trigger close on {report.session} "
            f"({tracked} tracked)"
        )
    return lines


# --- settling ---------------------------------------------------------------------


def settle(session: Session, *, now: datetime, enqueue: Enqueue | None = None) -> list[Event]:
    """Answer every recent ``cross_watch`` whose session's close is now stored.

    Confirmed when detection stored the cross of that direction, rule and session
    (nothing more is written: the cross event is the answer); otherwise a live
    ``cross_watch_missed`` with the close. Runs in the caller's transaction; returns
    the events it wrote (a concurrent settle of the same watch writes nothing).
    """
    watches = list(
        session.scalars(
            select(Event).where(
                Event.type == "cross_watch",
                Event.session >= (now - SETTLE_WITHIN).date(),
                Event.retracted_by.is_(None),
            )
        )
    )
    if not watches:
        return []
    answers = {
        watch.id: (
            event_id(watch.symbol, watch.rule, f"{watch.data['direction']}_cross", watch.session),
            event_id(watch.symbol, watch.rule, "cross_watch_missed", watch.session),
        )
        for watch in watches
    }
    known = set(
        session.scalars(
            select(Event.id).where(
                Event.id.in_([i for pair in answers.values() for i in pair]),
                Event.retracted_by.is_(None),
            )
        )
    )
    open_watches = [w for w in watches if not known.intersection(answers[w.id])]
    closes = _closes(session, [(w.symbol, w.session) for w in open_watches])
    missed = [
        _missed(watch, answers[watch.id][1], closes[(watch.symbol, watch.session)], now)
        for watch in open_watches
        if (watch.symbol, watch.session) in closes
    ]
    fresh = repository.insert_new(session, missed)
    if fresh and enqueue is not None:
        enqueue(session, fresh)
    return fresh


def _closes(session: Session, keys: Sequence[tuple[str, date]]) -> dict[tuple[str, date], float]:
    if not keys:
        return {}
    rows = session.execute(
        select(DailyBar.symbol, DailyBar.session, DailyBar.close).where(
            tuple_(DailyBar.symbol, DailyBar.session).in_(list(keys))
        )
    )
    return {(symbol, day): float(close) for symbol, day, close in rows}


def _missed(watch: Event, missed_id: str, close: float, now: datetime) -> Event:
    return Event(
        id=missed_id,
        type="cross_watch_missed",
        symbol=watch.symbol,
        session=watch.session,
        rule=watch.rule,
        live=True,
        data={
            "direction": watch.data["direction"],
            "close": close,
            "trigger_close": watch.data["trigger_close"],
            "session": watch.session.isoformat(),
            "rule": watch.data["rule"],
            "watch_id": watch.id,
        },
        created_at=now,
    )
