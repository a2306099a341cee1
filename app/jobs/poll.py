"""The poll job: fetch each symbol's missing sessions, validate, store, detect, enqueue.

Symbols are fetched concurrently (``ProviderChain.concurrency`` at once; each provider's
``ProviderLimit`` bounds and paces the requests sent to it) while one writer stores
what arrives. Every store read and write, detection and the brief run in a worker
thread, so the event loop (and the API beside it in ``serve``) keeps answering during
a poll of thousands of symbols.

Fetched symbols are stored in batches (up to ``BATCH_SYMBOLS``): one transaction per
batch holds the bulk upsert, the events it produces, their outbox rows and the poll
results, so a failure leaves the store exactly as it was and a crash never leaves an
event without its deliveries. If a batch fails, its symbols are stored again one per
transaction, so one bad symbol fails alone (docs/decisions.md). Detection carries each
symbol's kernel state from poll to poll (the daily path). The poll-run record is
written in its own transactions so that a failed poll is still on record.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from app.clock import Clock
from app.db.engine import Database
from app.jobs import ingest
from app.jobs.watch.settle import settle_watches
from app.market import polls, repository
from app.market.polls import SymbolOutcome
from app.market.progress import RUNNING_POLLS, PollProgress, save_progress
from app.market.providers import AllProvidersFailed, ProviderChain
from app.market.validation import BadData, validate_bars
from app.market.windows import Window, fetch_windows
from app.settings import Settings
from app.signals import events as signal_events
from app.signals.models import Event
from app.webhooks.callbacks import Enqueue, RulesOf

log = logging.getLogger("crosswatch.poll")

# Symbols stored per transaction: bounds a transaction's size and how long events of
# the first symbols wait for the last ones' fetches.
BATCH_SYMBOLS = 200
# Seconds between two writes of a running poll's progress to its run row.
PROGRESS_SECONDS = 1.0

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
        enqueue: Enqueue | None = None,
        rules: RulesOf | None = None,
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
        # How often a running poll stores its progress for other processes' status.
        self.progress_seconds = PROGRESS_SECONDS

    async def poll(
        self,
        symbols: Sequence[str] | None = None,
        *,
        trigger: str,
        on_progress: Callable[[PollProgress], None] | None = None,
    ) -> PollReport:
        """Poll ``symbols`` (default: the tracked ones). ``on_progress`` is called once
        per symbol fetched (or failed), with the counts so far; ``RUNNING_POLLS`` holds
        the same counts for the status page."""
        started = time.perf_counter()
        wanted, run_id = await asyncio.to_thread(self._start, symbols, trigger)
        self.chain.new_poll()
        RUNNING_POLLS.update(self.db.url, run_id, PollProgress(0, len(wanted), 0, 0))
        try:
            windows = await asyncio.to_thread(self._windows, wanted)
            outcomes = await self._fetch_and_store(run_id, wanted, windows, on_progress)
            status = await asyncio.to_thread(self._finish, run_id, outcomes)
        finally:
            RUNNING_POLLS.end(self.db.url, run_id)
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

    def _start(self, symbols: Sequence[str] | None, trigger: str) -> tuple[list[str], int]:
        with self.db.transaction() as session:
            wanted = list(symbols) if symbols else repository.tracked_symbols(session)
            if symbols or not wanted:  # the tracked ones are known: no insert to compile
                wanted = wanted or list(self.settings.symbols)
                repository.ensure_symbols(session, wanted, now=self.clock())
            run_id = polls.start_run(session, trigger, now=self.clock())
            save_progress(session, run_id, PollProgress(0, len(wanted), 0, 0))
            return wanted, run_id

    def _finish(self, run_id: int, outcomes: list[SymbolOutcome]) -> str:
        with self.db.transaction() as session:
            status = polls.finish_run(session, run_id, outcomes, now=self.clock())
            if any(o.added for o in outcomes):
                # Live only when a session newer than the store held was added: a
                # backfill's brief is history, stored but never pushed.
                self._daily_brief(session, live=any(o.added and not o.backfill for o in outcomes))
                settle_watches(session, now=self.clock(), enqueue=self.enqueue)
        return status

    async def _fetch_and_store(
        self,
        run_id: int,
        wanted: list[str],
        windows: dict[str, Window],
        on_progress: Callable[[PollProgress], None] | None,
    ) -> list[SymbolOutcome]:
        """Fetch ``wanted`` with ``chain.concurrency`` workers; store as results arrive.

        This coroutine is the only writer: it stores batches, proxies and failures in
        a thread, one at a time, while the workers go on fetching. Outcomes come back
        in the order of ``wanted``.
        """
        arrived: asyncio.Queue[tuple[int, _Fetched | BaseException]] = asyncio.Queue(
            maxsize=BATCH_SYMBOLS
        )
        todo = iter(enumerate(wanted))

        async def work() -> None:
            for index, symbol in todo:
                try:
                    fetched: _Fetched | BaseException = await self._fetch_symbol(symbol, windows)
                except Exception as exc:  # a bug: handed to the writer, which raises it
                    fetched = exc
                await arrived.put((index, fetched))

        workers = [
            asyncio.create_task(work(), name=f"poll-{run_id}-fetch-{n}")
            for n in range(min(self.chain.concurrency, len(wanted)))
        ]
        saved_at = time.monotonic()  # the start's counts were stored with the run
        slots: list[SymbolOutcome | None] = [None] * len(wanted)
        pending: list[_Pending] = []
        added = failed = 0  # sessions added by the batches stored so far; symbols failed

        async def store() -> None:
            nonlocal pending, added, failed
            batch, pending = pending, []
            await asyncio.to_thread(self._store, run_id, batch)
            added += sum(p.outcome.added for p in batch)
            failed += sum(1 for p in batch if p.outcome.error)

        try:
            for done in range(1, len(wanted) + 1):
                index, fetched = await arrived.get()
                if isinstance(fetched, BaseException):
                    raise fetched
                if isinstance(fetched, _Proxied):
                    await asyncio.to_thread(self._store_proxy, run_id, fetched)
                    slots[index] = fetched.outcome
                    failed += 1
                elif isinstance(fetched, SymbolOutcome):
                    await asyncio.to_thread(self._record_failure, run_id, fetched)
                    slots[index] = fetched
                    failed += 1
                else:
                    if any(p.write.symbol == fetched.write.symbol for p in pending):
                        await store()
                    pending.append(fetched)
                    slots[index] = fetched.outcome
                    if len(pending) >= BATCH_SYMBOLS:
                        await store()
                counts = PollProgress(done, len(wanted), added, failed)
                RUNNING_POLLS.update(self.db.url, run_id, counts)
                if on_progress is not None:
                    on_progress(counts)
                if time.monotonic() - saved_at >= self.progress_seconds:
                    await asyncio.to_thread(self._store_progress, run_id, counts)
                    saved_at = time.monotonic()
            await store()
        finally:
            for worker in workers:
                worker.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
        return [outcome for outcome in slots if outcome is not None]

    async def _fetch_symbol(self, symbol: str, windows: dict[str, Window]) -> _Fetched:
        """Fetch and validate one symbol: its outcome if it failed, else what to store.
        Nothing is written here: the writer records it. Each instrument (the symbol,
        its proxy) is fetched from its own stored newest session back the overlap,
        and validated against its own left neighbour."""
        outcome = SymbolOutcome(symbol)
        now = self.clock()
        instruments = self.chain.instruments(symbol)
        since = {instrument: windows[instrument].since for instrument in instruments}
        left = {instrument: windows[instrument].left for instrument in instruments}
        try:
            fetched = await self.chain.fetch(symbol, since, now=now)
        except AllProvidersFailed as exc:
            outcome.error = exc.reason
            outcome.attempts = [(a.provider, a.instrument, a.reason) for a in exc.attempts]
            return outcome
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
            return outcome
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
        return _Proxied(proxy, outcome)

    def _windows(self, wanted: list[str]) -> dict[str, Window]:
        """The fetch window of every instrument a poll of ``wanted`` may ask for, read
        at once before the fetches start."""
        instruments = [i for symbol in wanted for i in self.chain.instruments(symbol)]
        with self.db.transaction(write=False) as session:
            return fetch_windows(session, instruments, self.settings.poll_overlap_sessions)

    def _store_progress(self, run_id: int, progress: PollProgress) -> None:
        with self.db.transaction() as session:
            save_progress(session, run_id, progress)

    def _store_proxy(self, run_id: int, proxied: _Proxied) -> None:
        proxy, outcome = proxied.proxy, proxied.outcome
        self._store(run_id, [proxy])
        outcome.error = (
            f"every provider failed for {outcome.symbol}; proxy {proxy.write.symbol} was "
            f"fetched instead and stored as {proxy.write.symbol} "
            f"({proxy.outcome.added} sessions added)"
        )
        self._record_failure(run_id, outcome)

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


@dataclass
class _Proxied:
    """A symbol every provider failed, whose proxy instrument was fetched instead."""

    proxy: _Pending
    outcome: SymbolOutcome


#: What a fetch hands the writer: a failure's outcome, bars to store, or a proxy's.
_Fetched = SymbolOutcome | _Pending | _Proxied
