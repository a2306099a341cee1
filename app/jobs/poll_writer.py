"""A poll's writer: stores what the fetches hand it, in batches, proxies and failures
each in their own transactions, and finishes the run (its record, the daily brief, the
watches it settles). One writer per poller; it keeps the kernel state detection carries
from poll to poll (the daily path)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from app.clock import Clock
from app.db.engine import Database
from app.jobs import ingest
from app.jobs.poll_fetch import Pending, Proxied
from app.jobs.watch.settle import settle_watches
from app.market import repository
from app.market.polls import SymbolOutcome
from app.market.progress import PollProgress, save_progress
from app.signals import daily_brief
from app.signals import events as signal_events
from app.webhooks.callbacks import Enqueue, RulesOf

log = logging.getLogger("crosswatch.poll")


@dataclass(frozen=True)
class _Brief:
    """A daily brief derived before the write that records it."""

    signals: list[dict[str, Any]]
    text: str
    now: datetime
    live: bool


class PollWriter:
    """Every write of a poll. ``enqueue`` writes outbox rows for new events inside the
    same transaction (the webhooks layer provides it)."""

    def __init__(
        self,
        db: Database,
        *,
        clock: Clock,
        enqueue: Enqueue | None = None,
        rules: RulesOf | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.enqueue = enqueue
        self.rules = rules
        # Kernel state per symbol from the previous poll: the daily path's memory.
        self.carried = signal_events.CarriedStates()

    def finish(self, run_id: int, outcomes: list[SymbolOutcome]) -> str:
        brief: _Brief | None = None
        if any(o.added for o in outcomes):
            # Live only when a session newer than the store held was added: a
            # backfill's brief is history, stored but never pushed.
            brief = self._daily_brief(live=any(o.added and not o.backfill for o in outcomes))
        with self.db.transaction() as session:
            status = repository.finish_run(session, run_id, outcomes, now=self.clock())
            if brief is not None:
                event = daily_brief.record_daily_brief(
                    session, brief.signals, text=brief.text, now=brief.now, live=brief.live
                )
                if event is not None and self.enqueue is not None:
                    self.enqueue(session, [event])
                settle_watches(session, now=self.clock(), enqueue=self.enqueue)
        return status

    def store_progress(self, run_id: int, progress: PollProgress) -> None:
        with self.db.transaction() as session:
            save_progress(session, run_id, progress)

    def store_proxy(self, run_id: int, proxied: Proxied) -> None:
        proxy, outcome = proxied.proxy, proxied.outcome
        self.store(run_id, [proxy])
        outcome.error = (
            f"every provider failed for {outcome.symbol}; proxy {proxy.write.symbol} was "
            f"fetched instead and stored as {proxy.write.symbol} "
            f"({proxy.outcome.added} sessions added)"
        )
        self.record_failure(run_id, outcome)

    def _daily_brief(self, *, live: bool) -> _Brief:
        """One ``daily_brief`` per newest session, after a poll that added one: its lines
        are the figures this poll's detection derived (no reload of the store). Read in a
        transaction of its own before the poll's last write, which then only inserts it:
        the indices' Markdown took the write lock 0.2–0.6 s (the poll's batches are
        committed, so the read sees all they wrote)."""
        now = self.clock()
        with self.db.transaction(write=False) as session:
            signals = daily_brief.brief_signals(session, self.carried, now=now)
            text = daily_brief.daily_brief_text(session, signals, now=now)
        return _Brief(signals, text, now, live)

    def record_failure(self, run_id: int, outcome: SymbolOutcome) -> SymbolOutcome:
        with self.db.transaction() as session:
            repository.record_result(session, run_id, outcome)
        log.warning(
            "poll failed", extra={"run": run_id, "symbol": outcome.symbol, "error": outcome.error}
        )
        return outcome

    def store(self, run_id: int, batch: list[Pending]) -> None:
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

    def _store_batch(self, run_id: int, batch: list[Pending]) -> None:
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
            repository.record_results(session, run_id, [pending.outcome for pending in batch])

    def _store_failed(self, run_id: int, pending: Pending, exc: Exception) -> None:
        # The transaction rolled back: nothing of this symbol was stored.
        log.error("storing a poll failed", extra={"symbol": pending.write.symbol}, exc_info=exc)
        outcome = pending.outcome
        outcome.error = f"store failed: {type(exc).__name__}: {exc}"
        outcome.added = outcome.revised = 0
        outcome.events = []
        self.record_failure(run_id, outcome)
