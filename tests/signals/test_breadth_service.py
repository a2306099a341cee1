"""Breadth through the signal book: built while the serving process warms, and the
newest row the daily brief reads."""

from __future__ import annotations

import numpy as np

from app.db.engine import Database
from app.market import universes
from app.signals import breadth, service
from app.signals.analysis import Rule
from app.signals.book import SignalBook
from app.signals.fastpath import warm
from tests.conftest import FIXED_NOW, fixed_clock
from tests.support.stores import seed


def test_warming_builds_the_breadth_arrays_before_any_request(db: Database) -> None:
    seed(db, ["^RUT", "^GSPC"], now=FIXED_NOW)
    book = SignalBook()
    warm(book, db, fixed_clock())
    with db.transaction(write=False) as session:
        snapshot = book.snapshot(session)
    built = vars(snapshot)
    assert "calendar" in built and "highs_and_lows" in built
    assert len(snapshot.breadths) == 1  # every symbol's, under the default rule
    expected = breadth.highs_and_lows(snapshot.analysis.panel.closes)
    for got, want in zip(built["highs_and_lows"], expected, strict=True):
        np.testing.assert_array_equal(got, want)


def test_newest_breadth_is_the_last_row_of_the_route(db: Database) -> None:
    seed(db, ["^RUT", "^GSPC"], now=FIXED_NOW)
    book = SignalBook()
    with db.transaction(write=False) as session:
        every = service.breadth(book, session, service.DEFAULT_RULE, None, None, None)
        newest = service.newest_breadth(book, session, None)
    assert newest == every["rows"][-1]
    assert newest is not None and newest["members"] == 2


def test_breadth_is_kept_per_rule_and_members_until_the_data_changes(db: Database) -> None:
    seed(db, ["^RUT", "^GSPC"], now=FIXED_NOW)
    book = SignalBook()
    rule = service.DEFAULT_RULE
    with db.transaction() as session:
        universes.replace(session, "one", ["^RUT"], now=fixed_clock())
    with db.transaction() as session:
        first = service.breadth_series(book, session, rule, "one")
        assert service.breadth_series(book, session, rule, "one") is first
        assert not first.members.flags.writeable
        assert service.newest_breadth(book, session, "one")["members"] == 1
        custom = service.breadth_series(book, session, Rule(5, 20), "one")
        assert custom is not first
    # The same data, other members: computed again, not the kept one.
    with db.transaction() as session:
        universes.replace(session, "one", ["^RUT", "^GSPC"], now=fixed_clock())
    with db.transaction() as session:
        assert service.newest_breadth(book, session, "one")["members"] == 2
    with db.transaction(write=False) as session:
        kept = book.snapshot(session).breadths
    assert len(kept) == 3
