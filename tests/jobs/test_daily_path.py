"""The daily path of detection gives exactly the events of the full recompute.

Real series are fed one session at a time (``ingest.replay``) with carried state (the
daily path: each session advances the kernel state of the previous one), and the same
data goes through the full recompute into a second store. Every stored event must be
the same: id, type, session, live and data.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from app.db.engine import Database
from app.db.migrate import upgrade
from app.jobs import ingest
from app.market import repository
from app.market.bars import Bar
from app.market.service import read_csv_file
from app.signals import events as signal_events
from app.signals.analysis import Rule
from app.signals.models import Event
from tests.conftest import data_file, fixed_clock

CUSTOM_RULES = [Rule(20, 100, "ema"), Rule(10, 30, "sma")]
ALL_TYPES = {"golden_cross", "death_cross", "cross_approaching", "peak", "trough"}


def _stored(db: Database) -> dict[str, tuple[str, date, bool, dict[str, Any]]]:
    with db.transaction(write=False) as session:
        return {
            e.id: (e.type, e.session, e.live, e.data)
            for e in session.scalars(select(Event).where(Event.type != "daily_brief"))
        }


def _replay(
    db: Database,
    bars: list[Bar],
    start: date,
    end: date | None = None,
    *,
    full: bool,
    symbol: str = "^RUT",
    rules: list[Rule] | None = None,
) -> list[Event]:
    chosen = rules or []
    return asyncio.run(
        ingest.replay(
            db,
            symbol,
            bars,
            start=start,
            end=end,
            interval=0,
            clock=fixed_clock,
            full=full,
            rules=lambda _session: chosen,
        )
    )


@pytest.fixture
def second_db(tmp_path: Path) -> Database:
    """A second, separate SQLite store (the full path's run)."""
    db = Database(f"sqlite:///{tmp_path / 'full.db'}")
    upgrade(db.engine)
    return db


def test_daily_path_equals_the_full_path_session_by_session(
    db: Database, second_db: Database
) -> None:
    """^RUT from 2025 fed one session at a time through both paths: crosses both
    ways, approaches, the 2025 peak and trough. The history starts in 2022 (three
    years before, enough for every average and turn), not 1987: the full path
    recomputes it all at each of the 400 sessions."""
    bars = [b for b in read_csv_file(data_file("rut_daily.csv")) if b.session.year >= 2022]
    start = date(2025, 1, 2)
    daily_live = _replay(db, bars, start, full=False)
    full_live = _replay(second_db, bars, start, full=True)
    assert _stored(db) == _stored(second_db)
    assert [e.id for e in daily_live] == [e.id for e in full_live]
    assert {e.type for e in daily_live} == ALL_TYPES
    second_db.dispose()


def _full_once(db: Database, symbol: str, bars: list[Bar], start: date, rules: list[Rule]) -> None:
    """The full path over the same final data in one write after the history before
    ``start``: every fact depends only on closes up to its own session, so this stores
    exactly what the full path stores fed one session at a time (same ids, data, live)."""
    for chunk in ([b for b in bars if b.session < start], [b for b in bars if b.session >= start]):
        with db.transaction() as session:
            ingest.store_and_detect(
                session, symbol, chunk, source="replay", clock=fixed_clock, rules=rules
            )


@pytest.mark.parametrize(
    ("file", "start", "rules"),
    [
        ("rut_daily.csv", date(2000, 1, 3), []),
        # Dot-com, 2008, 2020 and 2022: many peaks, troughs and crosses.
        ("gspc_daily.csv", date(2000, 1, 3), []),
        # With two more rules (EMA and a short SMA), as subscriptions ask.
        ("ixic_daily.csv", date(2015, 1, 2), CUSTOM_RULES),
    ],
)
def test_daily_path_over_decades_equals_the_full_recompute(
    db: Database, second_db: Database, file: str, start: date, rules: list[Rule]
) -> None:
    bars = read_csv_file(data_file(file))
    symbol = "^X"
    daily_live = _replay(db, bars, start, symbol=symbol, full=False, rules=rules)
    _full_once(second_db, symbol, bars, start, rules)
    daily, full = _stored(db), _stored(second_db)
    assert daily == full
    assert len(daily_live) == sum(1 for _, _, live, _ in full.values() if live) > 20
    assert {e.type for e in daily_live} == ALL_TYPES
    if rules:
        assert {e.rule for e in daily_live} >= {r.key for r in rules}
    second_db.dispose()


def test_daily_path_is_taken_and_work_does_not_depend_on_history(db: Database) -> None:
    """After a backfill, appending sessions never reloads the history."""
    bars = read_csv_file(data_file("gspc_daily.csv"))
    carried = signal_events.CarriedStates()
    with db.transaction() as session:
        ingest.store_and_detect(
            session, "^GSPC", bars[:-3], source="import", clock=fixed_clock, carried=carried
        )
    assert len(carried) == 1
    loads: list[int] = []
    original = repository.load_panel

    def counting(*args: Any, **kwargs: Any) -> repository.ClosePanel:
        panel = original(*args, **kwargs)
        loads.append(panel.closes.size)
        return panel

    repository.load_panel = counting  # type: ignore[assignment]
    try:
        for bar in bars[-3:]:
            with db.transaction() as session:
                ingest.store_and_detect(
                    session, "^GSPC", [bar], source="yahoo", clock=fixed_clock, carried=carried
                )
    finally:
        repository.load_panel = original  # type: ignore[assignment]
    assert loads == []


def test_a_write_from_elsewhere_or_a_revision_falls_back_to_the_full_path(db: Database) -> None:
    bars = read_csv_file(data_file("rut_daily.csv"))
    golden = date(2025, 8, 6)
    upto = [b for b in bars if b.session <= golden]
    carried = signal_events.CarriedStates()
    with db.transaction() as session:
        ingest.store_and_detect(
            session, "^RUT", upto[:-2], source="import", clock=fixed_clock, carried=carried
        )
    # Another writer (no carried state) appends a session: the version moves on, so
    # the next write here must not trust its state.
    with db.transaction() as session:
        ingest.store_and_detect(session, "^RUT", upto[-2:-1], source="import", clock=fixed_clock)
    with db.transaction() as session:
        _, events = ingest.store_and_detect(
            session, "^RUT", upto[-1:], source="yahoo", clock=fixed_clock, carried=carried
        )
    assert [(e.type, e.session) for e in events if e.type.endswith("_cross")] == [
        ("golden_cross", golden)
    ]
    # A revision undoing the cross is detected (full path) and retracts it.
    later = datetime(2026, 8, 25, tzinfo=UTC)
    with db.transaction() as session:
        _, events = ingest.store_and_detect(
            session,
            "^RUT",
            [replace(upto[-1], close=2000.0)],
            source="yahoo",
            clock=lambda: later,
            carried=carried,
        )
    assert [e.type for e in events] == ["retracted"]


def test_a_rolled_back_write_leaves_no_state_behind(db: Database) -> None:
    bars = read_csv_file(data_file("rut_daily.csv"))
    carried = signal_events.CarriedStates()
    with db.transaction() as session:
        ingest.store_and_detect(
            session, "^RUT", bars[:-2], source="import", clock=fixed_clock, carried=carried
        )
    with pytest.raises(RuntimeError), db.transaction() as session:
        ingest.store_and_detect(
            session, "^RUT", bars[-2:-1], source="yahoo", clock=fixed_clock, carried=carried
        )
        raise RuntimeError("the poll failed after detection")
    assert len(carried) == 0
    with db.transaction() as session:
        report, _ = ingest.store_and_detect(
            session, "^RUT", bars[-2:], source="yahoo", clock=fixed_clock, carried=carried
        )
    assert report.counts.added == 2
    assert len(carried) == 1


def test_batch_of_symbols_equals_one_symbol_at_a_time(db: Database, second_db: Database) -> None:
    """Batch writes (one transaction, one load and one kernel run for all symbols, then
    one session for all three at a time on the daily path) store exactly what the
    full path stores symbol by symbol."""
    files = {"^RUT": "rut_daily.csv", "^GSPC": "gspc_daily.csv", "^IXIC": "ixic_daily.csv"}
    series = {symbol: read_csv_file(data_file(name)) for symbol, name in files.items()}
    cut = date(2020, 1, 2)
    carried = signal_events.CarriedStates()
    with db.transaction() as session:
        ingest.store_many(
            session,
            [
                repository.BarWrite(s, [b for b in bars if b.session < cut], "replay", s)
                for s, bars in series.items()
            ],
            clock=fixed_clock,
            carried=carried,
        )
    by_day = {s: {b.session: b for b in bars} for s, bars in series.items()}
    for day in sorted({b.session for bars in series.values() for b in bars if b.session >= cut}):
        writes = [
            repository.BarWrite(s, [by_day[s][day]], "replay", s)
            for s in series
            if day in by_day[s]
        ]
        with db.transaction() as session:
            ingest.store_many(session, writes, clock=fixed_clock, carried=carried)
    for symbol, bars in series.items():
        _full_once(second_db, symbol, bars, cut, [])
    stored = _stored(db)
    assert stored == _stored(second_db)
    assert {kind for kind, _, live, _ in stored.values() if live} == ALL_TYPES
    assert len(carried) == 3
    second_db.dispose()
