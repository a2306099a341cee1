"""Breadth through the signal book: built while the serving process warms, and the
newest row the daily brief reads."""

from __future__ import annotations

import numpy as np

from app.db.engine import Database
from app.jobs import ingest
from app.signals import breadth, service
from app.signals.fastpath import warm
from tests.conftest import fixed_clock


def test_warming_builds_the_breadth_arrays_before_any_request(db: Database) -> None:
    ingest.seed(db, ["^RUT", "^GSPC"], clock=fixed_clock)
    book = service.SignalBook()
    warm(book, db, fixed_clock())
    with db.transaction(write=False) as session:
        snapshot = book.snapshot(session)
    built = vars(snapshot)
    assert "calendar" in built and "highs_and_lows" in built
    expected = breadth.highs_and_lows(snapshot.analysis.panel.closes)
    for got, want in zip(built["highs_and_lows"], expected, strict=True):
        np.testing.assert_array_equal(got, want)


def test_newest_breadth_is_the_last_row_of_the_route(db: Database) -> None:
    ingest.seed(db, ["^RUT", "^GSPC"], clock=fixed_clock)
    book = service.SignalBook()
    with db.transaction(write=False) as session:
        every = service.breadth(book, session, service.DEFAULT_RULE, None, None, None)
        newest = service.newest_breadth(book, session, None)
    assert newest == every["rows"][-1]
    assert newest is not None and newest["members"] == 2
