"""A first write of columns stores exactly what the same bars stored one by one do."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import numpy as np
from sqlalchemy import text

from app.db.engine import Database
from app.jobs import ingest
from app.market import backfill, repository
from app.market.bars import Bar
from app.market.columns import BarColumns
from app.market.service import read_csv_file
from app.signals import events as signal_events
from tests.conftest import data_file

NOW = datetime(2026, 8, 24, 23, 0, tzinfo=UTC)


def columns(bars: Sequence[Bar]) -> BarColumns:
    return BarColumns(
        np.array([bar.session for bar in bars], dtype="datetime64[D]"),
        np.array([bar.close for bar in bars]),
        np.array([bar.open for bar in bars]),
        volumes=np.arange(len(bars)) * 1000.5,  # rounded half to even, like round()
    )


def stored(db: Database, symbol: str) -> list[tuple[object, ...]]:
    with db.transaction(write=False) as session:
        rows = session.execute(
            text(
                "SELECT session, close, open, high, low, volume, source, instrument, fetched_at "
                "FROM daily_bars WHERE symbol = :symbol ORDER BY session"
            ),
            {"symbol": symbol},
        )
        return [tuple(row) for row in rows]


def events_of(db: Database, symbol: str) -> list[tuple[object, ...]]:
    with db.transaction(write=False) as session:
        rows = session.execute(
            text(
                "SELECT type, session, rule, live, data FROM events WHERE symbol = :symbol "
                "ORDER BY session, type, rule"
            ),
            {"symbol": symbol},
        )
        return [tuple(row) for row in rows]


def test_columns_and_bars_store_the_same_rows_versions_and_events(db: Database) -> None:
    bars = [bar for bar in read_csv_file(data_file("rut_daily.csv")) if bar.open is not None]
    given = columns(bars[-1500:])
    carried = signal_events.CarriedStates()
    with db.transaction() as session:
        repository.ensure_symbols(session, ["COLS", "BARS"], now=NOW)
        assert backfill.takes(session, repository.BarWrite("COLS", given, "csv", "X")) is (
            session.get_bind().dialect.name == "sqlite"
        )
        progress: list[int] = []
        results = ingest.store_many(
            session,
            [
                repository.BarWrite("COLS", given, "csv", "X"),
                repository.BarWrite("BARS", list(given), "csv", "X"),
            ],
            clock=lambda: NOW,
            carried=carried,
            on_progress=progress.append,
        )
        assert sum(progress) == 3000
    cols, plain = results["COLS"], results["BARS"]
    assert (cols.rows, cols.counts, cols.previous_last) == (
        plain.rows,
        plain.counts,
        plain.previous_last,
    )
    assert cols.counts == repository.UpsertCounts(1500, 0, 0)
    assert [(e.type, e.session, e.data) for e in cols.events] == [
        (e.type, e.session, e.data) for e in plain.events
    ]
    assert stored(db, "COLS") == stored(db, "BARS")
    assert stored(db, "COLS")[1][5] == 1000  # 1000.5 rounded half to even
    assert events_of(db, "COLS") == events_of(db, "BARS") != []
    with db.transaction(write=False) as session:
        assert repository.data_versions(session) == {"COLS": 1, "BARS": 1}

    # A second write of the same columns is an upsert: all unchanged, no new version.
    with db.transaction() as session:
        again = ingest.store_many(
            session, [repository.BarWrite("COLS", given, "csv", "X")], clock=lambda: NOW
        )["COLS"]
        assert again.counts == repository.UpsertCounts(0, 0, 1500)
        assert repository.data_versions(session)["COLS"] == 1
