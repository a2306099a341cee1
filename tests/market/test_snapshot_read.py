"""The serving snapshot's Arrow read (``repository.read_snapshot``) against the session
path it replaces: the same panel, data versions and provenance, on either store, and one
state of the store even while another connection writes."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session

from app.db.engine import Database
from app.market import repository, sqlite_arrow
from app.market.bars import Bar
from app.market.models import Symbol
from app.market.repository import panels, readers
from app.metadata import metadata

NOW = datetime(2026, 8, 24, 23, 0, tzinfo=UTC)
START = date(2016, 1, 4)


def _bars(count: int, seed: int, *, gaps: int = 0) -> list[Bar]:
    """``count`` bars on weekdays from START, every ``gaps``-th weekday left out."""
    rng = np.random.default_rng(seed)
    closes = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, count)))
    days: list[date] = []
    day, weekday = START, 0
    while len(days) < count:
        if day.weekday() < 5:
            weekday += 1
            if not (gaps and weekday % gaps == 0):
                days.append(day)
        day += timedelta(days=1)
    return [Bar(d, float(c)) for d, c in zip(days, closes.tolist(), strict=True)]


def _store(session: Session, histories: dict[str, list[Bar]], *, source: str = "csv") -> None:
    repository.ensure_symbols(session, histories, now=NOW)
    writes = [repository.BarWrite(s, bars, source, s) for s, bars in histories.items() if bars]
    repository.upsert_many(session, writes, fetched_at=NOW)


def _universe() -> dict[str, list[Bar]]:
    """Many symbols: long, short (one bar, a few), with gaps, and one without bars."""
    histories = {f"S{i:03d}": _bars(300 + 7 * i, i, gaps=(i % 4) * 5) for i in range(23)}
    histories["ONE"] = _bars(1, 100)
    histories["FEW"] = _bars(4, 101)
    histories["NONE"] = []
    return histories


@pytest.fixture(autouse=True)
def _arrow_for_any_store(monkeypatch: pytest.MonkeyPatch) -> None:
    """A small SQLite store is read through the session (see the next test): these
    tests read this one through Arrow."""
    monkeypatch.setattr(readers, "_SQLITE_ARROW_SYMBOLS", 0)


def test_a_small_sqlite_store_is_read_through_the_session(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(readers, "_SQLITE_ARROW_SYMBOLS", 3)
    with db.transaction() as session:
        _store(session, {"A": _bars(30, 1), "B": _bars(5, 2)})
    with db.transaction(write=False) as session:
        with readers._committed_reader(session, symbols=2) as reader:
            small = reader
        with readers._committed_reader(session, symbols=3) as reader:
            large = reader
        snapshot = repository.read_snapshot(session)
        expected = repository.load_panel(session, ["A", "B"])
    _assert_same_panel(snapshot.panel, expected)
    sqlite = db.is_sqlite
    assert isinstance(small, readers._SessionReader if sqlite else readers._ArrowReader)
    assert isinstance(large, readers._ArrowReader)


@pytest.fixture
def filled(db: Database) -> Database:
    with db.transaction() as session:
        _store(session, _universe())
        _store(session, {"OLD": _bars(50, 102)})
        session.execute(update(Symbol).where(Symbol.symbol == "OLD").values(active=False))
    with db.transaction() as session:  # a second write: versions and provenance move
        _store(session, {"S001": [Bar(date(2026, 8, 21), 55.5)]}, source="yahoo")
    return db


def _assert_same_panel(a: repository.ClosePanel, b: repository.ClosePanel) -> None:
    assert a.symbols == b.symbols
    assert a.closes.shape == b.closes.shape
    np.testing.assert_array_equal(a.closes, b.closes)
    np.testing.assert_array_equal(a.sessions, b.sessions)


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks of a few symbols, so that a panel spans many of them."""
    monkeypatch.setattr(panels, "_ARROW_SYMBOLS_PER_QUERY", 4)
    monkeypatch.setattr(panels, "_PANEL_SYMBOLS_PER_QUERY", 5)


@pytest.mark.usefixtures("small_chunks")
def test_the_snapshot_is_what_the_session_path_reads(filled: Database) -> None:
    with filled.transaction(write=False) as session:
        symbols = repository.tracked_symbols(session)
        expected = repository.load_panel(session, symbols)
        versions = repository.data_versions(session)
        provenance = repository.newest_provenance(session, symbols)
        snapshot = repository.read_snapshot(session)
    assert "OLD" not in symbols and "NONE" in symbols
    _assert_same_panel(snapshot.panel, expected)
    assert snapshot.fingerprint == versions
    assert snapshot.provenance == provenance
    assert snapshot.provenance["S001"].source == "yahoo"
    # Short histories are right-aligned, gaps closed up, a symbol without bars all NaN.
    row = snapshot.panel.row
    assert np.count_nonzero(~np.isnan(snapshot.panel.closes[row("ONE")])) == 1
    assert np.isnan(snapshot.panel.closes[row("NONE")]).all()


@pytest.mark.usefixtures("small_chunks")
@pytest.mark.parametrize("tail", [None, 1, 3, 250])
def test_the_arrow_reader_loads_any_panel_as_the_session_path(
    filled: Database, tail: int | None
) -> None:
    chosen = ["S007", "FEW", "NONE", "S000", "ONE", "S022", "S013", "S004", "S005", "S019"]
    with filled.transaction(write=False) as session:
        expected = repository.load_panel(session, chosen, tail=tail)
        with readers._committed_reader(session) as reader:
            assert isinstance(reader, readers._ArrowReader)
            found = panels._load_panel(reader, chosen, tail, 3)
    _assert_same_panel(found, expected)


def test_a_write_during_the_read_is_not_in_the_snapshot(
    filled: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The versions, the closes and the provenance are of one state of the store: a
    write committed between the snapshot's first read and its closes is in none."""
    with filled.transaction(write=False) as session:
        symbols = repository.tracked_symbols(session)
        before = repository.load_panel(session, symbols)
        versions = repository.data_versions(session)
    other = Database(filled.url)
    read_symbols = panels._tracked_symbols

    def then_write(reader: Any) -> list[str]:
        found = read_symbols(reader)
        with other.transaction() as writer:
            _store(writer, {"S002": [Bar(date(2026, 8, 21), 77.0)]}, source="yahoo")
        return found

    monkeypatch.setattr(panels, "_tracked_symbols", then_write)
    try:
        with filled.transaction(write=False) as session:
            snapshot = repository.read_snapshot(session)
    finally:
        other.dispose()
    assert snapshot.fingerprint == versions
    _assert_same_panel(snapshot.panel, before)
    assert snapshot.provenance["S002"].source == "csv"
    with filled.transaction(write=False) as session:
        after = repository.read_snapshot(session)
    assert after.fingerprint["S002"] == versions["S002"] + 1
    assert after.provenance["S002"].source == "yahoo"
    assert after.panel.closes[after.panel.row("S002"), -1] == 77.0


@pytest.fixture
def in_memory() -> Iterator[Database]:
    database = Database("sqlite://")
    metadata.create_all(database.engine)
    yield database
    database.dispose()


def test_an_in_memory_store_is_read_through_the_session(in_memory: Database) -> None:
    """No other connection sees an in-memory store: its snapshot is read by the session."""
    with in_memory.transaction() as session:
        _store(session, {"A": _bars(30, 1), "B": _bars(5, 2, gaps=2)})
    with in_memory.transaction(write=False) as session:
        with readers._committed_reader(session) as reader:
            assert isinstance(reader, readers._SessionReader)
        snapshot = repository.read_snapshot(session)
        expected = repository.load_panel(session, ["A", "B"])
    _assert_same_panel(snapshot.panel, expected)
    assert snapshot.fingerprint == {"A": 1, "B": 1}


def test_the_sqlite_reader_reports_a_failed_statement_and_goes_on(filled: Database) -> None:
    if not filled.is_sqlite:
        pytest.skip("the child process reads SQLite stores only")
    database = filled.engine.url.database
    assert database is not None
    with sqlite_arrow.reading(database) as child:
        with pytest.raises(RuntimeError, match="missing_column"):
            child.table("SELECT missing_column FROM symbols")
        assert child.table("SELECT count(*) AS n FROM symbols").column("n").to_pylist() == [27]
