"""The poll job: fetch each symbol's missing sessions, validate, store, detect, enqueue.

One transaction per symbol holds the upsert, the events it produces and their outbox
rows, so a failure leaves the store exactly as it was and a crash never leaves an
event without its deliveries. The poll-run record is written in its own transactions
so that a failed poll is still on record.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy.orm import Session

from app.clock import Clock
from app.db.engine import Database
from app.market import polls, repository
from app.market.bars import Bar, FetchResult
from app.market.polls import SymbolOutcome
from app.market.providers import AllProvidersFailed, ProviderChain
from app.market.validation import BadData, validate_bars
from app.settings import Settings
from app.signals import events as signal_events
from app.signals import service as signal_service
from app.signals.analysis import Rule
from app.signals.models import Event

log = logging.getLogger("crosswatch.poll")

EventSink = Callable[[Sequence[Event]], None]


@dataclass
class PollReport:
    run_id: int
    status: str
    outcomes: list[SymbolOutcome] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def added(self) -> int:
        return sum(o.added for o in self.outcomes)


class Poller:
    """Runs polls through a provider chain. ``enqueue`` writes outbox rows for new events
    inside the same transaction (the webhooks layer provides it)."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        chain: ProviderChain,
        *,
        clock: Clock,
        enqueue: Callable[[Session, Sequence[Event]], object] | None = None,
        rules: Callable[[Session], Sequence[Rule]] | None = None,
        on_committed: Callable[[PollReport], None] | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.chain = chain
        self.clock = clock
        self.enqueue = enqueue
        self.rules = rules
        self.on_committed = on_committed

    async def poll(self, symbols: Sequence[str] | None = None, *, trigger: str) -> PollReport:
        started = time.perf_counter()
        with self.db.transaction() as session:
            wanted = list(symbols) if symbols else repository.tracked_symbols(session)
            if not wanted:
                wanted = list(self.settings.symbols)
            repository.ensure_symbols(session, wanted, now=self.clock())
            run_id = polls.start_run(session, trigger, now=self.clock())
        outcomes = [await self._poll_symbol(run_id, symbol) for symbol in wanted]
        with self.db.transaction() as session:
            status = polls.finish_run(session, run_id, outcomes, now=self.clock())
            if any(o.added for o in outcomes):
                # Live only when a session newer than the store held was added: a
                # backfill's brief is history, stored but never pushed.
                self._daily_brief(session, live=any(o.added and not o.backfill for o in outcomes))
        report = PollReport(run_id, status, outcomes, time.perf_counter() - started)
        log.info(
            "poll finished",
            extra={
                "run": run_id,
                "trigger": trigger,
                "status": status,
                "symbols": len(outcomes),
                "added": report.added,
                "seconds": round(report.seconds, 3),
            },
        )
        if self.on_committed is not None:
            self.on_committed(report)
        return report

    async def _poll_symbol(self, run_id: int, symbol: str) -> SymbolOutcome:
        outcome = SymbolOutcome(symbol)
        now = self.clock()
        with self.db.transaction(write=False) as session:
            since = repository.session_before(session, symbol, self.settings.poll_overlap_sessions)
            left = repository.bar_before(session, symbol, since) if since else None
        try:
            fetched = await self.chain.fetch(symbol, since, now=now)
        except AllProvidersFailed as exc:
            outcome.error = exc.reason
            outcome.attempts = [(a.provider, a.instrument, a.reason) for a in exc.attempts]
            return self._record_failure(run_id, outcome)
        result = fetched.result
        outcome.attempts = [(a.provider, a.instrument, a.reason) for a in fetched.attempts]
        outcome.source, outcome.instrument = result.source, result.instrument
        try:
            checked = validate_bars(
                result.bars, now=now, last_stored=left, bad_tick_pct=self.settings.bad_tick_pct
            )
        except BadData as exc:
            outcome.error = f"rejected {result.source} response: {exc.reason}"
            outcome.attempts.append((result.source, result.instrument, outcome.error))
            return self._record_failure(run_id, outcome)
        outcome.rejected = checked.rejected
        if not fetched.is_proxy:
            return self._store(run_id, symbol, checked.accepted, result, outcome)
        # A proxy's prices are another instrument's: stored under its own symbol, never
        # spliced into this one (DESIGN §2: a proxy is never substituted silently).
        proxy = self._store(
            run_id, result.instrument, checked.accepted, result, SymbolOutcome(result.instrument)
        )
        outcome.error = (
            f"every provider failed for {symbol}; proxy {result.instrument} was fetched "
            f"instead and stored as {result.instrument} ({proxy.added} sessions added)"
        )
        return self._record_failure(run_id, outcome)

    def _daily_brief(self, session: Session, *, live: bool) -> None:
        """One ``daily_brief`` per newest session, after a poll that added one."""
        now = self.clock()
        signals = signal_service.all_signals(signal_service.SignalBook(), session, now)
        brief = signal_events.record_daily_brief(session, signals, now=now, live=live)
        if brief is not None and self.enqueue is not None:
            self.enqueue(session, [brief])

    def _record_failure(self, run_id: int, outcome: SymbolOutcome) -> SymbolOutcome:
        with self.db.transaction() as session:
            polls.record_result(session, run_id, outcome)
        log.warning(
            "poll failed", extra={"run": run_id, "symbol": outcome.symbol, "error": outcome.error}
        )
        return outcome

    def _store(
        self,
        run_id: int,
        symbol: str,
        bars: list[Bar],
        result: FetchResult,
        outcome: SymbolOutcome,
    ) -> SymbolOutcome:
        """Upsert, detect and enqueue in one transaction, with the poll result."""
        now = self.clock()
        try:
            with self.db.transaction() as session:
                repository.ensure_symbols(session, [symbol], now=now)
                previous_last = repository.last_sessions(session, [symbol]).get(symbol)
                counts = repository.upsert_bars(
                    session,
                    symbol,
                    bars,
                    source=result.source,
                    instrument=result.instrument,
                    fetched_at=now,
                )
                outcome.added, outcome.revised = counts.added, counts.revised
                outcome.backfill = previous_last is None
                new_events: list[Event] = []
                if counts.added or counts.revised:
                    new_events = signal_events.detect_and_record(
                        session,
                        symbol,
                        previous_last=previous_last,
                        recheck_from=_first_changed(bars, previous_last, counts.revised > 0),
                        now=now,
                        rules=self.rules(session) if self.rules is not None else (),
                    )
                    if self.enqueue is not None and new_events:
                        self.enqueue(session, new_events)
                outcome.events = [event.id for event in new_events]
                outcome.newest_session = bars[-1].session if bars else previous_last
                polls.record_result(session, run_id, outcome)
        except Exception as exc:  # the transaction rolled back: nothing was stored
            log.exception("storing a poll failed", extra={"symbol": symbol})
            outcome.error = f"store failed: {type(exc).__name__}: {exc}"
            outcome.added = outcome.revised = 0
            outcome.events = []
            return self._record_failure(run_id, outcome)
        return outcome


def _first_changed(bars: list[Bar], previous_last: date | None, revised: bool) -> date | None:
    """Where detection must look again: the first re-read session when data was revised."""
    if not bars or previous_last is None or not revised:
        return None
    return bars[0].session
