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

from app.clock import Clock
from app.db.engine import Database
from app.jobs.poll_fetch import Fetched, Pending, Proxied, fetch_symbol
from app.jobs.poll_writer import PollWriter
from app.market import repository
from app.market.polls import SymbolOutcome
from app.market.progress import RUNNING_POLLS, PollProgress, save_progress
from app.market.providers import ProviderChain
from app.market.windows import Window, fetch_windows
from app.settings import Settings
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
        self.on_committed = on_committed
        self.writer = PollWriter(db, clock=clock, enqueue=enqueue, rules=rules)
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
            status = await asyncio.to_thread(self.writer.finish, run_id, outcomes)
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
            run_id = repository.start_run(session, trigger, now=self.clock())
            save_progress(session, run_id, PollProgress(0, len(wanted), 0, 0))
            return wanted, run_id

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
        arrived: asyncio.Queue[tuple[int, Fetched | BaseException]] = asyncio.Queue(
            maxsize=BATCH_SYMBOLS
        )
        todo = iter(enumerate(wanted))

        async def work() -> None:
            for index, symbol in todo:
                try:
                    fetched: Fetched | BaseException = await fetch_symbol(
                        self.chain, self.settings, self.clock, symbol, windows
                    )
                except Exception as exc:  # a bug: handed to the writer, which raises it
                    fetched = exc
                await arrived.put((index, fetched))

        workers = [
            asyncio.create_task(work(), name=f"poll-{run_id}-fetch-{n}")
            for n in range(min(self.chain.concurrency, len(wanted)))
        ]
        saved_at = time.monotonic()  # the start's counts were stored with the run
        slots: list[SymbolOutcome | None] = [None] * len(wanted)
        pending: dict[str, Pending] = {}  # by symbol, in the order they arrived
        added = failed = 0  # sessions added by the batches stored so far; symbols failed

        async def store() -> None:
            nonlocal pending, added, failed
            batch, pending = list(pending.values()), {}
            await asyncio.to_thread(self.writer.store, run_id, batch)
            added += sum(p.outcome.added for p in batch)
            failed += sum(1 for p in batch if p.outcome.error)

        try:
            for done in range(1, len(wanted) + 1):
                index, fetched = await arrived.get()
                if isinstance(fetched, BaseException):
                    raise fetched
                if isinstance(fetched, Proxied):
                    await asyncio.to_thread(self.writer.store_proxy, run_id, fetched)
                    slots[index] = fetched.outcome
                    failed += 1
                elif isinstance(fetched, SymbolOutcome):
                    await asyncio.to_thread(self.writer.record_failure, run_id, fetched)
                    slots[index] = fetched
                    failed += 1
                else:
                    if fetched.write.symbol in pending:
                        await store()
                    pending[fetched.write.symbol] = fetched
                    slots[index] = fetched.outcome
                    if len(pending) >= BATCH_SYMBOLS:
                        await store()
                counts = PollProgress(done, len(wanted), added, failed)
                RUNNING_POLLS.update(self.db.url, run_id, counts)
                if on_progress is not None:
                    on_progress(counts)
                if time.monotonic() - saved_at >= self.progress_seconds:
                    await asyncio.to_thread(self.writer.store_progress, run_id, counts)
                    saved_at = time.monotonic()
            await store()
        finally:
            for worker in workers:
                worker.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
        return [outcome for outcome in slots if outcome is not None]

    def _windows(self, wanted: list[str]) -> dict[str, Window]:
        """The fetch window of every instrument a poll of ``wanted`` may ask for, read
        at once before the fetches start."""
        instruments = [i for symbol in wanted for i in self.chain.instruments(symbol)]
        with self.db.transaction(write=False) as session:
            return fetch_windows(session, instruments, self.settings.poll_overlap_sessions)
