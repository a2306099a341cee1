"""The one write path for bars (:func:`store_many`: store, detect, enqueue), and the
writers outside polls that use it: the seed (of the bundled history), file imports and replays."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date

from sqlalchemy.orm import Session

from app.clock import Clock
from app.db.engine import Database
from app.market import backfill, repository
from app.market import service as market
from app.market.bars import Bar
from app.market.csvfile import CsvFormatError
from app.signals import events as signal_events
from app.signals.analysis import Rule
from app.signals.models import Event
from app.webhooks.callbacks import Enqueue, RulesOf

log = logging.getLogger("crosswatch.ingest")


def seed(db: Database, symbols: Sequence[str], *, clock: Clock) -> list[market.ImportReport]:
    """Load the bundled history of each default index the store holds no bars for,
    with the (not live) events it implies.

    Each symbol is its own transaction, so a crash mid-seed leaves whole symbols only.
    """
    reports: list[market.ImportReport] = []
    for symbol in symbols:
        if symbol not in market.BUNDLED_FILES:
            continue
        with db.transaction() as session:
            if repository.bar_count(session, symbol):
                continue
            bars = market.bundled_bars(symbol)
            write = repository.BarWrite(symbol, bars, market.BUNDLED_SOURCE, symbol)
            stored = store_many(session, [write], clock=clock)[symbol]
            reports.append(market.ImportReport(symbol, stored.rows, stored.counts))
            # One line per symbol: its events (history, never pushed) are logged at DEBUG.
            log.info(
                "seeded",
                extra={"symbol": symbol, "sessions": stored.rows, "events": len(stored.events)},
            )
    return reports


def import_bars(
    db: Database,
    symbol: str,
    bars: list[Bar],
    *,
    clock: Clock,
    bad_tick_pct: float,
    enqueue: Enqueue | None = None,
    rules: RulesOf | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> Stored:
    """Import a parsed file as a poll would store it: held to the provider-data rules
    (:func:`app.market.service.check_import`: one bad row refuses the file), then
    stored, detected and enqueued in one transaction, so revised closes write their
    events and retractions like a provider's revision does."""
    now = clock()
    with db.transaction(write=False) as session:
        left = repository.bar_before(session, symbol, bars[0].session) if bars else None
    # Checked outside the write transaction: the calendar's first load is slow, and a
    # refused file never takes the store's write lock.
    market.check_import(bars, now=now, last_stored=left, bad_tick_pct=bad_tick_pct)
    with db.transaction() as session:
        write = repository.BarWrite(symbol, bars, market.IMPORT_SOURCE, symbol)
        return store_many(
            session,
            [write],
            clock=lambda: now,
            enqueue=enqueue,
            rules=rules(session) if rules is not None else (),
            on_progress=on_progress,
        )[symbol]


@dataclass(frozen=True)
class Stored:
    """What a write did for one symbol: counts, the newest session stored before it,
    and the events it added (retractions included)."""

    symbol: str
    rows: int
    counts: repository.UpsertCounts
    previous_last: date | None
    events: list[Event]


def store_many(
    session: Session,
    writes: Sequence[repository.BarWrite],
    *,
    clock: Clock,
    enqueue: Enqueue | None = None,
    rules: Sequence[Rule] = (),
    carried: signal_events.CarriedStates | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> dict[str, Stored]:
    """Upsert many symbols' bars and record the events they imply, in the caller's
    transaction: all of them or none.

    Bulk statements throughout: one look-up of the newest stored sessions, one read of
    the overlapping stored rows and one write of the changed ones per chunk, one bulk
    insert of the events and their outbox rows. Detection takes the daily path for
    symbols with ``carried`` state (see :func:`app.signals.events.detect_many`).
    This is the one write path for bars: polls, imports, the seed and replays all
    come through here. ``on_progress`` is told how many rows each chunk wrote.
    """
    now = clock()
    symbols = [write.symbol for write in writes]
    previous = repository.last_sessions(session, symbols)
    # A symbol with stored bars is tracked already: only the others may need inserting.
    repository.ensure_symbols(session, [s for s in symbols if s not in previous], now=now)
    # A first write of columns is inserted from its columns (``backfill``): the same
    # rows, counts and versions as the upsert, without a Bar per session.
    first = (
        {w.symbol for w in writes if w.symbol not in previous and backfill.takes(session, w)}
        if len(set(symbols)) == len(symbols)
        else set()
    )
    results = repository.upsert_many(
        session,
        [write for write in writes if write.symbol not in first],
        fetched_at=now,
        on_progress=on_progress,
    )
    if first:
        results.update(
            backfill.insert_new(
                session,
                [write for write in writes if write.symbol in first],
                fetched_at=now,
                on_progress=on_progress,
            )
        )
    changes = []
    for write in writes:
        counts = results[write.symbol].counts
        if not (counts.added or counts.revised):
            continue
        last = previous.get(write.symbol)
        changes.append(
            signal_events.Change(
                write.symbol,
                previous_last=last,
                recheck_from=write.bars[0].session if counts.revised and last else None,
                version=results[write.symbol].version,
                appended=(
                    write.bars
                    if write.symbol in first
                    else [bar for bar in write.bars if last is None or bar.session > last]
                ),
                source=write.source,
                instrument=write.instrument,
            )
        )
    found = (
        signal_events.detect_many(session, changes, now=now, rules=rules, carried=carried)
        if changes
        else {}
    )
    added = [event for events in found.values() for event in events]
    if enqueue is not None and added:
        enqueue(session, added)
    return {
        write.symbol: Stored(
            write.symbol,
            len(write.bars),
            results[write.symbol].counts,
            previous.get(write.symbol),
            found.get(write.symbol, []),
        )
        for write in writes
    }


def store_and_detect(
    session: Session,
    symbol: str,
    bars: Sequence[Bar],
    *,
    source: str,
    instrument: str | None = None,
    clock: Clock,
    enqueue: Enqueue | None = None,
    rules: Sequence[Rule] = (),
    carried: signal_events.CarriedStates | None = None,
) -> tuple[market.ImportReport, list[Event]]:
    """Upsert ``bars`` and record the events they imply, in the caller's transaction."""
    write = repository.BarWrite(symbol, bars, source, instrument or symbol)
    stored = store_many(
        session, [write], clock=clock, enqueue=enqueue, rules=rules, carried=carried
    )[symbol]
    return market.ImportReport(symbol, stored.rows, stored.counts), stored.events


async def replay(
    db: Database,
    symbol: str,
    bars: Sequence[Bar],
    *,
    start: date,
    end: date | None,
    interval: float,
    clock: Clock,
    enqueue: Enqueue | None = None,
    rules: RulesOf | None = None,
    on_session: Callable[[Bar, list[Event]], None] | None = None,
    on_committed: Callable[[], None] | None = None,
    full: bool = False,
) -> list[Event]:
    """Load the history before ``start``, then feed one session per ``interval`` seconds
    as if live: each session is its own transaction, exactly like a poll's, and takes
    the daily path (state carried from the previous session) unless ``full`` is set."""
    history = [bar for bar in bars if bar.session < start]
    feed = [bar for bar in bars if bar.session >= start and (end is None or bar.session <= end)]
    if not feed:
        raise CsvFormatError(None, f"the file has no sessions from {start}")
    carried = None if full else signal_events.CarriedStates()
    if history:
        with db.transaction() as session:
            store_and_detect(
                session, symbol, history, source="replay", clock=clock, carried=carried
            )
    live: list[Event] = []
    for position, bar in enumerate(feed):
        if position and interval > 0:
            await asyncio.sleep(interval)
        with db.transaction() as session:
            _, events = store_and_detect(
                session,
                symbol,
                [bar],
                source="replay",
                clock=clock,
                enqueue=enqueue,
                rules=rules(session) if rules is not None else (),
                carried=carried,
            )
        if on_committed is not None:
            on_committed()
        live.extend(event for event in events if event.live)
        if on_session is not None:
            on_session(bar, events)
    return live
