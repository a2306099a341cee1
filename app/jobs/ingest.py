"""Ingest outside polls: the bundled seed, file imports and replays, each through the
same store-then-detect path as a live poll."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import date
from typing import Any

from sqlalchemy.orm import Session

from app.clock import Clock
from app.db.engine import Database
from app.market import repository
from app.market import service as market
from app.market.bars import Bar
from app.market.csvfile import CsvFormatError
from app.signals import events as signal_events
from app.signals.analysis import Rule
from app.signals.models import Event

log = logging.getLogger("crosswatch.ingest")

Enqueue = Callable[[Session, Sequence[Event]], Any]


def seed(db: Database, symbols: Sequence[str], *, clock: Clock) -> list[market.ImportReport]:
    """Seed an empty store with the bundled history and the (not live) events it implies."""

    def detect(session: Session, symbol: str) -> None:
        signal_events.detect_and_record(
            session, symbol, previous_last=None, recheck_from=None, now=clock()
        )

    return market.seed_if_empty(db, symbols, clock=clock, after_store=detect)


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
) -> tuple[market.ImportReport, list[Event]]:
    """Upsert ``bars`` and record the events they imply, in the caller's transaction."""
    previous_last = repository.last_sessions(session, [symbol]).get(symbol)
    report = market.store_bars(
        session, symbol, bars, source=source, instrument=instrument, clock=clock
    )
    events: list[Event] = []
    if report.counts.added or report.counts.revised:
        revised_from = bars[0].session if report.counts.revised and previous_last else None
        events = signal_events.detect_and_record(
            session,
            symbol,
            previous_last=previous_last,
            recheck_from=revised_from,
            now=clock(),
            rules=rules,
        )
        if enqueue is not None and events:
            enqueue(session, events)
    return report, events


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
    rules: Callable[[Session], Sequence[Rule]] | None = None,
    on_session: Callable[[Bar, list[Event]], None] | None = None,
    on_committed: Callable[[], None] | None = None,
) -> list[Event]:
    """Load the history before ``start``, then feed one session per ``interval`` seconds
    as if live: each session is its own transaction, exactly like a poll's."""
    history = [bar for bar in bars if bar.session < start]
    feed = [bar for bar in bars if bar.session >= start and (end is None or bar.session <= end)]
    if not feed:
        raise CsvFormatError(None, f"the file has no sessions from {start}")
    if history:
        with db.transaction() as session:
            store_and_detect(session, symbol, history, source="replay", clock=clock)
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
            )
        if on_committed is not None:
            on_committed()
        live.extend(event for event in events if event.live)
        if on_session is not None:
            on_session(bar, events)
    return live
