"""A check: live quotes of the watch list from Yahoo, a ``cross_watch`` event for each
price at or beyond its trigger close (at most one per symbol, rule and session), and
the newest check of the watch list shown on the status page."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import date, datetime

import httpx

from app.clock import Clock
from app.db.engine import Database
from app.jobs.watch.timing import next_open, session_at
from app.jobs.watch.watchlist import Candidate, candidates, needed_pct
from app.market import calendar
from app.market import repository as market
from app.market.providers import (
    ProviderError,
    RetryPolicy,
    YahooProvider,
    build_limits,
    provider_client,
)
from app.market.providers.yahoo import LiveQuote
from app.settings import Settings
from app.signals import repository
from app.signals.analysis import DEFAULT_RULE, Rule
from app.signals.models import Event, event_id
from app.status import watch as status_watch
from app.webhooks.callbacks import Enqueue, RulesOf

log = logging.getLogger("crosswatch.watch")

#: What a session's watch list is computed from: the session, the symbols, the rules
#: and the store's data versions (:meth:`Watcher._candidates` keeps it while they hold).
_CacheKey = tuple[date, tuple[str, ...], tuple[Rule, ...], tuple[tuple[str, int], ...]]


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
        self._cache: tuple[_CacheKey, list[Candidate]] | None = None

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
            base_url=str(settings.yahoo_base_url),
            timeout=settings.provider_timeout_seconds,
            retry=RetryPolicy(retries=settings.provider_retries),
            limit=build_limits(settings).get("yahoo"),
        )
        yield Watcher(db, settings, provider, clock=clock, enqueue=enqueue, rules=rules)
