"""Universes: parsing symbol files (plain lists, fund-holdings exports) and storing lists."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from app.db.engine import Database
from app.errors import InvalidInput, NotFound
from app.market import symbols as tracking
from app.market import universes
from app.market.models import Symbol

NOW = datetime(2026, 8, 24, 12, 0, tzinfo=UTC)

# The shape of a fund's holdings export: preamble lines, a header row, cash and futures
# rows, a blank ticker, a "-" ticker, then a blank line and a disclaimer.
HOLDINGS = (Path(__file__).parent / "holdings_sample.csv").read_text(encoding="utf-8")


def test_a_holdings_export_reads_its_equities_and_counts_what_it_skipped() -> None:
    parsed = universes.parse_symbol_file(HOLDINGS)
    assert parsed.symbols == ["CRDO", "IONQ", "BRK.B"]
    assert parsed.skipped == 4  # cash, futures, blank ticker, "-" ticker


def test_a_plain_list_reads_one_symbol_a_line() -> None:
    text = "# my small caps\nIWM\n\n  aapl \n^RUT\nIWM\n"
    assert universes.parse_symbol_file(text) == universes.SymbolList(["IWM", "AAPL", "^RUT"], 0)


def test_a_symbol_column_without_asset_class_skips_only_blank_tickers() -> None:
    text = "Symbol,Name\nAAPL,Apple\n-,nothing\nMSFT,Microsoft\n"
    assert universes.parse_symbol_file(text) == universes.SymbolList(["AAPL", "MSFT"], 1)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("Ticker,Asset Class\nAAPL,Equity\nBAD TICKER,Equity\n", "line 3: invalid symbol"),
        ("AAPL\nMSFT,GOOG\n", "line 2: expected one symbol a line"),
        ("# only a comment\n\n", "names no symbol"),
        ("Ticker,Asset Class\nUSD,Cash\n", "names no symbol"),
        ("Ticker\n" + "A" * 200_000 + "\n", "not a readable symbol list or CSV"),
    ],
)
def test_a_file_that_cannot_be_read_is_refused_with_one_line(text: str, reason: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        universes.parse_symbol_file(text)
    assert reason in refused.value.detail
    assert "\n" not in refused.value.detail


@pytest.mark.parametrize("name", ["", "Has Space", "-leading", "x" * 65, "a/b"])
def test_bad_names_are_refused(name: str) -> None:
    with pytest.raises(InvalidInput, match="invalid universe name"):
        universes.canonical_name(name)


def test_replace_tracks_new_members_and_a_refused_list_changes_nothing(db: Database) -> None:
    with db.transaction() as session:
        tracking.track(session, "AAPL", now=NOW)
        tracking.track(session, "OLD", now=NOW)
        tracking.untrack(session, "OLD")

    with db.transaction() as session:
        first = universes.replace(session, "Small-Caps", ["aapl", "OLD", "IONQ", "IONQ"], now=NOW)
    assert first == universes.Replaced("small-caps", True, ["AAPL", "IONQ", "OLD"], ["IONQ", "OLD"])

    with db.transaction() as session:
        active = {s: a for s, a in session.execute(select(Symbol.symbol, Symbol.active))}
        assert active == {"AAPL": True, "OLD": True, "IONQ": True}
    with pytest.raises(InvalidInput, match="invalid symbol"), db.transaction() as session:
        universes.replace(session, "small-caps", ["MSFT", "not a symbol"], now=NOW)

    with db.transaction() as session:
        assert universes.members(session, "small-caps") == ["AAPL", "IONQ", "OLD"]
        assert session.get(Symbol, "MSFT") is None
        second = universes.replace(session, "small-caps", ["MSFT"], now=NOW)
    assert (second.created, second.symbols, second.newly_tracked) == (False, ["MSFT"], ["MSFT"])


def test_remove_keeps_the_members_tracked_and_listing_counts_members(db: Database) -> None:
    with db.transaction() as session:
        universes.replace(session, "a", ["AAPL", "MSFT"], now=NOW)
        universes.replace(session, "b", [], now=NOW)
    with db.transaction() as session:
        listed = [(u.name, u.members) for u in universes.list_all(session)]
        assert listed == [("a", 2), ("b", 0)]
        universes.remove(session, "A")
    with db.transaction() as session:
        assert [u.name for u in universes.list_all(session)] == ["b"]
        assert tracking.canonical("aapl") in set(session.scalars(select(Symbol.symbol)))
        with pytest.raises(NotFound, match="unknown universe 'a'"):
            universes.members(session, "a")


def test_a_universe_is_bounded(db: Database) -> None:
    too_many = [f"S{i}" for i in range(universes.MAX_MEMBERS + 1)]
    with pytest.raises(InvalidInput, match="at most 10,000"), db.transaction() as session:
        universes.replace(session, "big", too_many, now=NOW)
