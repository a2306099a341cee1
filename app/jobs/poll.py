"""The poll job: fetch each symbol's missing sessions, validate, store, detect, enqueue.

Fetched symbols are stored in batches (up to ``BATCH_SYMBOLS``): one transaction per
batch holds the bulk upsert, the events it produces, their outbox rows and the poll
results, so a failure leaves the store exactly as it was and a crash never leaves an
event without its deliveries. If a batch fails, its symbols are stored again one per
transaction, so one bad symbol fails alone (docs/decisions.md). Detection carries each
symbol's kernel state from poll to poll (the daily path). The poll-run record is
written in its own transactions so that a failed poll is still on record.
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
from app.jobs import ingest
from app.market import polls, repository
from app.market.polls import SymbolOutcome
from app.market.providers import AllProvidersFailed, ProviderChain
from app.market.validation import BadData, validate_bars
from app.settings import Settings
from app.signals import events as signal_events
from app.signals.analysis import Rule
from app.signals.models import Event

log = logging.getLogger("crosswatch.poll")

# Symbols stored per transaction: bounds a transaction's size and how long events of
# the first symbols wait for the last ones' fetches.
BATCH_SYMBOLS = 200

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


@dataclass(frozen=True)
class PollProgress:
    """How far a poll is: ``done`` of ``total`` symbols fetched or failed, the sessions
    ``added`` by the batches stored so far, and the symbols ``failed`` so far."""

    done: int
    total: int
    added: int
    failed: int


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
        # Kernel state per symbol from the previous poll: the daily path's memory.
        self.carried = signal_events.CarriedStates()

    async def poll(
        self,
        symbols: Sequence[str] | None = None,
        *,
        trigger: str,
        on_progress: Callable[[PollProgress], None] | None = None,
    ) -> PollReport:
        """Poll ``symbols`` (default: the tracked ones). ``on_progress`` is called once
        per symbol fetched (or failed), with the counts so far."""
        started = time.perf_counter()
        with self.db.transaction() as session:
            wanted = list(symbols) if symbols else repository.tracked_symbols(session)
            if not wanted:
                wanted = list(self.settings.symbols)
            repository.ensure_symbols(session, wanted, now=self.clock())
            run_id = polls.start_run(session, trigger, now=self.clock())
        outcomes: list[SymbolOutcome] = []
        pending: list[_Pending] = []
        added = failed = 0  # sessions added by the batches stored so far; symbols failed

        def store() -> None:
            nonlocal pending, added, failed
            self._store(run_id, pending)
            added += sum(p.outcome.added for p in pending)
            failed += sum(1 for p in pending if p.outcome.error)
            pending = []

        for symbol in wanted:
            fetched = await self._fetch_symbol(run_id, symbol)
            if isinstance(fetched, SymbolOutcome):
                outcomes.append(fetched)
                failed += 1
            else:
                if any(p.write.symbol == fetched.write.symbol for p in pending):
                    store()
                pending.append(fetched)
                outcomes.append(fetched.outcome)
                if len(pending) >= BATCH_SYMBOLS:
                    store()
            if on_progress is not None:
                on_progress(PollProgress(len(outcomes), len(wanted), added, failed))
        store()
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

    async def _fetch_symbol(self, run_id: int, symbol: str) -> SymbolOutcome | _Pending:
        """Fetch and validate one symbol: its outcome if it failed, else what to store."""
        outcome = SymbolOutcome(symbol)
        now = self.clock()
        # Each instrument (the symbol, its proxy) is fetched from its own stored newest
        # session back the overlap, and validated against its own left neighbour.
        overlap = self.settings.poll_overlap_sessions
        since: dict[str, date | None] = {}
        left: dict[str, tuple[date, float] | None] = {}
        with self.db.transaction(write=False) as session:
            for instrument in self.chain.instruments(symbol):
                since[instrument] = start = repository.session_before(session, instrument, overlap)
                left[instrument] = (
                    repository.bar_before(session, instrument, start) if start else None
                )
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
                result.bars,
                now=now,
                last_stored=left.get(result.instrument),
                bad_tick_pct=self.settings.bad_tick_pct,
            )
        except BadData as exc:
            outcome.error = f"rejected {result.source} response: {exc.reason}"
            outcome.attempts.append((result.source, result.instrument, outcome.error))
            return self._record_failure(run_id, outcome)
        outcome.rejected = checked.rejected
        write = repository.BarWrite(symbol, checked.accepted, result.source, result.instrument)
        if not fetched.is_proxy:
            return _Pending(write, outcome)
        # A proxy's prices are another instrument's: stored under its own symbol, never
        # spliced into this one (DESIGN §2: a proxy is never substituted silently).
        proxy = _Pending(
            repository.BarWrite(
                result.instrument, checked.accepted, result.source, result.instrument
            ),
            SymbolOutcome(result.instrument),
        )
        self._store(run_id, [proxy])
        outcome.error = (
            f"every provider failed for {symbol}; proxy {result.instrument} was fetched "
            f"instead and stored as {result.instrument} ({proxy.outcome.added} sessions added)"
        )
        return self._record_failure(run_id, outcome)

    def _daily_brief(self, session: Session, *, live: bool) -> None:
        """One ``daily_brief`` per newest session, after a poll that added one: its lines
        are the figures this poll's detection derived (no reload of the store)."""
        now = self.clock()
        signals = signal_events.brief_signals(session, self.carried, now=now)
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

    def _store(self, run_id: int, batch: list[_Pending]) -> None:
        """Upsert, detect and enqueue a batch in one transaction, with the poll results.

        If the batch fails, each symbol is tried again in a transaction of its own, so
        that only the symbols that cannot be stored fail.
        """
        if not batch:
            return
        try:
            self._store_batch(run_id, batch)
        except Exception as exc:
            if len(batch) == 1:
                self._store_failed(run_id, batch[0], exc)
                return
            log.warning("storing a batch failed; storing its symbols one by one")
            for pending in batch:
                try:
                    self._store_batch(run_id, [pending])
                except Exception as single:
                    self._store_failed(run_id, pending, single)

    def _store_batch(self, run_id: int, batch: list[_Pending]) -> None:
        now = self.clock()
        with self.db.transaction() as session:
            stored = ingest.store_many(
                session,
                [pending.write for pending in batch],
                clock=lambda: now,
                enqueue=self.enqueue,
                rules=self.rules(session) if self.rules is not None else (),
                carried=self.carried,
            )
            for pending in batch:
                outcome, result = pending.outcome, stored[pending.write.symbol]
                outcome.added, outcome.revised = result.counts.added, result.counts.revised
                outcome.backfill = result.previous_last is None
                outcome.events = [event.id for event in result.events]
                bars = pending.write.bars
                outcome.newest_session = bars[-1].session if bars else result.previous_last
            polls.record_results(session, run_id, [pending.outcome for pending in batch])

    def _store_failed(self, run_id: int, pending: _Pending, exc: Exception) -> None:
        # The transaction rolled back: nothing of this symbol was stored.
        log.error("storing a poll failed", extra={"symbol": pending.write.symbol}, exc_info=exc)
        outcome = pending.outcome
        outcome.error = f"store failed: {type(exc).__name__}: {exc}"
        outcome.added = outcome.revised = 0
        outcome.events = []
        self._record_failure(run_id, outcome)


@dataclass
class _Pending:
    """A fetched, validated symbol waiting to be stored, and its outcome."""

    write: repository.BarWrite
    outcome: SymbolOutcome
