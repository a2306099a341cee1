"""Signal use-cases over the store: the in-memory book of default-rule signals, custom
rules on demand, crosses, turns, compare, and scan, screen and breadth (whole arrays of
the cached analysis; see :mod:`app.signals.scan`, :mod:`.screen`, :mod:`.breadth`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy.orm import Session

from app.errors import InvalidInput, NotFound
from app.market import calendar, repository, universes
from app.signals import breadth as breadth_arrays
from app.signals import scan as scan_arrays
from app.signals.analysis import (
    DEFAULT_RULE,
    DEFAULT_TURNS,
    Analysis,
    Rule,
    TurnRule,
    analyse,
    cross_summary,
    crosses_of,
    signal_of,
    signals_of,
    turns_of,
)
from app.signals.book import SignalBook, breadth_of, chosen_rows


def normalise(symbol: str) -> str:
    return symbol.strip().upper()


def symbol_list(raw: str) -> list[str]:
    """The symbols a comma-separated list names, normalised (blank items dropped)."""
    return [normalise(s) for s in raw.split(",") if s.strip()]


def _signal(
    analysis: Analysis,
    row: int,
    provenance: repository.Provenance | None,
    expected: date,
) -> dict[str, Any] | None:
    return _with_provenance(analysis, row, signal_of(analysis, row), provenance, expected)


def _with_provenance(
    analysis: Analysis,
    row: int,
    fields: dict[str, Any] | None,
    provenance: repository.Provenance | None,
    expected: date,
) -> dict[str, Any] | None:
    if fields is None:
        return None
    return {
        "symbol": analysis.panel.symbols[row],
        **fields,
        "source": provenance.source if provenance else None,
        "instrument": provenance.instrument if provenance else None,
        "expected_session": expected,
        "stale": fields["session"] < expected,
    }


def all_signals(
    book: SignalBook, session: Session, now: datetime, universe: str | None = None
) -> list[dict[str, Any]]:
    """The default-rule signal of every tracked symbol with bars (of ``universe``'s
    members), derived on whole arrays (:func:`app.signals.analysis.signals_of`)."""
    snap = book.snapshot(session)
    expected = book.expected_session(now)
    analysis = snap.analysis
    rows = chosen_rows(snap, session, None, universe)
    result = []
    for row, fields in zip(rows.tolist(), signals_of(analysis, rows), strict=True):
        symbol = analysis.panel.symbols[row]
        signal = _with_provenance(analysis, row, fields, snap.provenance.get(symbol), expected)
        if signal is not None:
            result.append(signal)
    return result


def check_rule(rule: Rule, history: int) -> None:
    if rule.fast < 2 or rule.slow < 2:
        raise InvalidInput("fast and slow must each be at least 2 sessions")
    if rule.fast >= rule.slow:
        raise InvalidInput(f"fast ({rule.fast}) must be shorter than slow ({rule.slow})")
    if rule.slow > history:
        raise InvalidInput(
            f"slow ({rule.slow}) is longer than the stored history ({history} sessions)"
        )


def _single(
    book: SignalBook, session: Session, symbol: str, rule: Rule, turns: TurnRule
) -> tuple[Analysis, int, repository.Provenance | None]:
    snap = book.snapshot(session)
    row = snap.row(symbol)
    history = int(snap.analysis.lengths[row])
    if history == 0:
        raise NotFound(f"symbol {symbol!r} has no stored closes yet")
    check_rule(rule, history)
    provenance = snap.provenance.get(symbol)
    if rule == DEFAULT_RULE and turns == DEFAULT_TURNS:
        return snap.analysis, row, provenance
    panel = repository.load_panel(session, [symbol])
    return analyse(panel, rule, turns), 0, provenance


def one_signal(
    book: SignalBook, session: Session, symbol: str, rule: Rule, now: datetime
) -> dict[str, Any]:
    analysis, row, provenance = _single(book, session, symbol, rule, DEFAULT_TURNS)
    signal = _signal(analysis, row, provenance, book.expected_session(now))
    assert signal is not None
    return signal


def crosses(
    book: SignalBook, session: Session, symbol: str, rule: Rule, since: date | None
) -> dict[str, Any]:
    analysis, row, _ = _single(book, session, symbol, rule, DEFAULT_TURNS)
    found = crosses_of(analysis, row, since)
    return {
        "symbol": symbol,
        "rule": rule.as_dict(),
        "crosses": found,
        "summary": cross_summary(found),
    }


def turns(book: SignalBook, session: Session, symbol: str, turn_rule: TurnRule) -> dict[str, Any]:
    analysis, row, _ = _single(book, session, symbol, DEFAULT_RULE, turn_rule)
    return {
        "symbol": symbol,
        "rule": turn_rule.as_dict(),
        "turns": turns_of(analysis, row),
    }


def compare(
    book: SignalBook,
    session: Session,
    symbols: Sequence[str],
    start: str,
    end: date | None,
    now: datetime,
    universe: str | None = None,
) -> dict[str, Any]:
    """Return of each symbol from the close before ``start`` to the last close by ``end``.

    ``start="ytd"`` measures from the last close of the previous year. With
    ``universe``, only its members count, and those without closes over the period are
    left out (a new member waits for its backfill) instead of refusing the request.
    """
    snap = book.snapshot(session)
    skip_missing = universe is not None
    if universe is not None:
        rows = chosen_rows(snap, session, symbols, universe).tolist()
        symbols = [snap.analysis.panel.symbols[row] for row in rows]
    if start == "ytd":
        reference_end = end or calendar.last_closed_session(now)
        base_before = date(reference_end.year, 1, 1)
    else:
        try:
            base_before = date.fromisoformat(start)
        except ValueError:
            raise InvalidInput(f"start {start!r} is neither 'ytd' nor a YYYY-MM-DD date") from None
    if end is not None and end < base_before:
        raise InvalidInput(f"end {end} is before start {base_before}")
    results = []
    for symbol in symbols:
        row = snap.row(symbol)
        sessions = snap.analysis.panel.sessions[row]
        closes = snap.analysis.panel.closes[row]
        valid = ~np.isnat(sessions)
        days = sessions[valid]
        values = closes[valid]
        base_index = int(np.searchsorted(days, np.datetime64(base_before), side="left")) - 1
        end_index = (
            len(days) - 1
            if end is None
            else int(np.searchsorted(days, np.datetime64(end), side="right")) - 1
        )
        if base_index < 0 or end_index <= base_index:
            if skip_missing:
                continue
            raise InvalidInput(f"{symbol} has no closes to compare over that period")
        results.append(
            {
                "symbol": symbol,
                "start_session": days[base_index].astype(object),
                "start_close": float(values[base_index]),
                "end_session": days[end_index].astype(object),
                "end_close": float(values[end_index]),
                "return_pct": (float(values[end_index]) / float(values[base_index]) - 1) * 100,
            }
        )
    return {"start": start, "end": end, "returns": results}


def scan(
    book: SignalBook,
    session: Session,
    event: str,
    within: int,
    symbols: Sequence[str] | None,
    universe: str | None = None,
) -> dict[str, Any]:
    """Symbols with ``event`` in their last ``within`` sessions, newest first."""
    snap = book.snapshot(session)
    rows = chosen_rows(snap, session, symbols, universe)
    matches = scan_arrays.records(snap.analysis, snap.latest, event, rows, within)
    matches.sort(key=lambda m: (m["session"], m["symbol"]), reverse=True)
    return {"event": event, "within": within, "matches": matches}


def breadth_series(
    book: SignalBook, session: Session, rule: Rule, universe: str | None
) -> breadth_arrays.Series:
    """Breadth per session of a universe (default: every tracked symbol) under ``rule``:
    computed once per data version and set of members."""
    snap = book.snapshot(session)
    return breadth_of(snap, rule, chosen_rows(snap, session, None, universe))


def newest_breadth(
    book: SignalBook, session: Session, universe: str | None, rule: Rule = DEFAULT_RULE
) -> dict[str, Any] | None:
    """The newest session's row of ``/v1/breadth`` for ``universe`` (None: no member
    has a close)."""
    return breadth_arrays.newest(breadth_series(book, session, rule, universe))


def breadth(
    book: SignalBook,
    session: Session,
    rule: Rule,
    universe: str | None,
    start: date | None,
    end: date | None,
) -> dict[str, Any]:
    """Breadth per session of a universe (default: every tracked symbol) under ``rule``,
    from ``start`` to ``end`` (inclusive)."""
    if start is not None and end is not None and end < start:
        raise InvalidInput(f"end {end} is before start {start}")
    series = breadth_series(book, session, rule, universe)
    days = series.sessions
    inside = np.ones(days.size, dtype=bool)
    if start is not None:
        inside &= days >= np.datetime64(start)
    if end is not None:
        inside &= days <= np.datetime64(end)

    def ints(values: npt.NDArray[np.int64]) -> list[int]:
        return [int(v) for v in values[inside].tolist()]

    def shares(values: npt.NDArray[np.float64]) -> list[float | None]:
        return [None if v != v else v for v in values[inside].tolist()]

    columns = {
        "session": days[inside].astype(object).tolist(),
        "members": ints(series.members),
        "above_fast_pct": shares(series.above_fast_pct),
        "above_slow_pct": shares(series.above_slow_pct),
        "golden_regime_pct": shares(series.golden_regime_pct),
        "golden_crosses": ints(series.golden_crosses),
        "death_crosses": ints(series.death_crosses),
        "new_highs": ints(series.new_highs),
        "new_lows": ints(series.new_lows),
    }
    names = list(columns)
    return {
        "universe": universes.canonical_name(universe) if universe is not None else None,
        "rule": rule.as_dict(),
        "rows": [
            dict(zip(names, values, strict=True)) for values in zip(*columns.values(), strict=True)
        ],
    }
