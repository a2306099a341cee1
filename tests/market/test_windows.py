"""A poll's fetch windows, read at once, are the per-symbol queries' answers."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from app.db.engine import Database
from app.jobs import ingest
from app.market import repository
from app.market.service import read_csv_file
from app.market.windows import NOTHING_STORED, Window, fetch_windows
from tests.conftest import data_file

NOW = datetime(2026, 8, 24, 23, 0, tzinfo=UTC)


@pytest.mark.parametrize("overlap", [0, 1, 5])
def test_windows_are_session_before_and_bar_before(db: Database, overlap: int) -> None:
    bars = read_csv_file(data_file("rut_daily.csv"))[-40:]
    lengths = {f"S{n}": n for n in (1, 2, 5, 6, 7, 40)}
    with db.transaction() as session:
        repository.ensure_symbols(session, ["EMPTY"], now=NOW)
        ingest.store_many(
            session,
            [repository.BarWrite(s, bars[-n:], "csv", s) for s, n in lengths.items()],
            clock=lambda: NOW,
        )
    asked = [*lengths, "EMPTY", "UNKNOWN", "S6"]
    with db.transaction(write=False) as session:
        found = fetch_windows(session, asked, overlap)
        for symbol in asked:
            since = repository.session_before(session, symbol, overlap)
            left = repository.bar_before(session, symbol, since) if since else None
            assert found[symbol] == Window(since, left), symbol
    assert found["EMPTY"] == found["UNKNOWN"] == NOTHING_STORED
    assert found["S40"].left == (bars[-2 - overlap].session, bars[-2 - overlap].close)
