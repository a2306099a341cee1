"""Benchmark of scan, screen and breadth at 5,000 symbols x 2,520 sessions.

Run: ``.venv/bin/python benchmarks/screen.py [--symbols N] [--runs R]``.

The closes (seeded random walks; one symbol in ten with a shorter history) are built in
memory and analysed once, as the ``SignalBook`` snapshot would be; the book is handed
that snapshot for a temporary SQLite store that holds the symbols and their newest 60
sessions' volumes (5% missing), so ``service.scan``, ``screening.screen`` and
``service.breadth`` run exactly as the routes call them, store reads included. Times
are medians of ``--runs`` runs after one first run (which builds the per-snapshot
arrays: newest events, the calendar, 252-session highs and lows; reported apart).
The baseline, side by side, is the per-symbol scan the service ran before
(``facts.facts_of`` over every symbol's history), timed once.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import insert

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.db.engine import Database
from app.db.migrate import upgrade
from app.market import calendar, repository
from app.market.models import DailyBar
from app.signals import screen as screen_arrays
from app.signals import screening, service
from app.signals.analysis import DEFAULT_RULE, Analysis, analyse
from app.signals.book import SignalBook, Snapshot
from app.signals.facts import facts_of

NOW = datetime(2026, 8, 24, 23, 0, tzinfo=UTC)
STORED_SESSIONS = 60


def build_panel(symbols: int, sessions: int, seed: int) -> repository.ClosePanel:
    rng = np.random.default_rng(seed)
    days = np.array(
        calendar.sessions_between(date(2010, 1, 4), date(2026, 8, 21))[-sessions:],
        dtype="datetime64[D]",
    )
    closes = np.round(20.0 * np.exp(np.cumsum(rng.normal(0.0003, 0.02, (symbols, sessions)), 1)), 2)
    dates = np.broadcast_to(days, closes.shape).copy()
    short = rng.random(symbols) < 0.1
    lengths = rng.integers(20, sessions, symbols)
    padding = np.arange(sessions)[None, :] < (sessions - lengths)[:, None]
    padding &= short[:, None]
    closes[padding] = np.nan
    dates[padding] = np.datetime64("NaT")
    names = [f"S{i:05d}" for i in range(symbols)]
    return repository.ClosePanel(names, closes, dates)


def fill_store(db: Database, panel: repository.ClosePanel, seed: int) -> None:
    rng = np.random.default_rng(seed + 1)
    width = panel.closes.shape[1]
    with db.transaction() as session:
        repository.ensure_symbols(session, panel.symbols, now=NOW)
        rows: list[dict[str, Any]] = []
        for row, symbol in enumerate(panel.symbols):
            for column in range(width - STORED_SESSIONS, width):
                close = panel.closes[row, column]
                if np.isnan(close):
                    continue
                volume = None if rng.random() < 0.05 else int(rng.integers(1_000, 1_000_000))
                rows.append(
                    {
                        "symbol": symbol,
                        "session": panel.sessions[row, column].astype(object),
                        "close": float(close),
                        "volume": volume,
                        "source": "bench",
                        "instrument": symbol,
                        "fetched_at": NOW,
                    }
                )
        session.execute(insert(DailyBar), rows)


def old_scan(analysis: Analysis, event: str, within: int) -> int:
    """The per-symbol scan the service ran before issue 11 (match count)."""
    width = analysis.panel.closes.shape[1]
    found = 0
    for row in range(len(analysis.panel.symbols)):
        length = int(analysis.lengths[row])
        if length == 0:
            continue
        facts = [fact for fact in facts_of(analysis, row) if fact.type == event]
        if not facts:
            continue
        sessions = analysis.panel.sessions[row]
        index = int(np.searchsorted(sessions[width - length :], np.datetime64(facts[-1].session)))
        found += length - 1 - index < within
    return found


def timed(function: Callable[[], Any], runs: int) -> tuple[float, float, Any]:
    """(first run ms, median of the next ``runs`` ms, last result)."""
    start = time.perf_counter()
    result = function()
    first = (time.perf_counter() - start) * 1000
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        result = function()
        times.append((time.perf_counter() - start) * 1000)
    return first, statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--symbols", type=int, default=5_000)
    parser.add_argument("--sessions", type=int, default=2_520)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    panel = build_panel(args.symbols, args.sessions, seed=11)
    print(f"universe: {args.symbols} symbols x {args.sessions} sessions (in memory)")
    start = time.perf_counter()
    analysis = analyse(panel)
    print(f"  analyse (once per data version)   {time.perf_counter() - start:8.2f} s")
    with tempfile.TemporaryDirectory() as folder:
        db = Database(f"sqlite:///{folder}/screen.db")
        upgrade(db.engine)
        start = time.perf_counter()
        fill_store(db, panel, seed=11)
        took = time.perf_counter() - start
        print(f"  store: symbols + {STORED_SESSIONS} sessions of volume  {took:6.2f} s")
        book = SignalBook()
        with db.transaction(write=False) as session:
            book._snapshot = Snapshot(  # the analysis above, for this store's data
                fingerprint=repository.data_versions(session), analysis=analysis, provenance={}
            )
            assert book.snapshot(session).analysis is analysis

            def scan() -> dict[str, Any]:
                return service.scan(book, session, "golden_cross", 10, None)

            screen_query = screening.ScreenQuery(
                filters=screen_arrays.Filters(regime="golden", max_trigger_distance_pct=5.0),
                sort="-return_pct",
            )
            volume_query = screening.ScreenQuery(
                filters=screen_arrays.Filters(min_relative_volume=1.5), sort="-relative_volume"
            )

            def screen() -> dict[str, Any]:
                return screening.screen(book, session, screen_query)

            def screen_volume() -> dict[str, Any]:
                return screening.screen(book, session, volume_query)

            def breadth() -> dict[str, Any]:
                return service.breadth(book, session, DEFAULT_RULE, None, None, None)

            results = {}
            for name, function in (
                ("scan golden_cross within=10", scan),
                ("screen golden, trigger <= 5%", screen),
                ("screen relative volume >= 1.5", screen_volume),
                ("breadth, all sessions", breadth),
            ):
                first, median, result = timed(function, args.runs)
                results[name] = median
                size = len(result.get("matches", result.get("rows", [])))
                print(f"  {name:32s} first {first:8.1f} ms   p50 {median:7.1f} ms   ({size} rows)")
            for event in ("cross_approaching", "peak"):
                _, median, result = timed(
                    lambda e=event: service.scan(book, session, e, 10_000, None), args.runs
                )
                size = len(result["matches"])
                print(f"  scan {event:17s} within=10000 p50 {median:7.1f} ms   ({size} rows)")
        db.dispose()
    start = time.perf_counter()
    found = old_scan(analysis, "golden_cross", 10)
    baseline = (time.perf_counter() - start) * 1000
    scan_ms = results["scan golden_cross within=10"]
    print(
        f"  baseline: per-symbol facts_of scan  {baseline:8.1f} ms   ({found} rows)"
        f"  = {baseline / scan_ms:.0f}x the scan p50"
    )
    print(
        f"screen: symbols={args.symbols} scan_p50_ms={scan_ms:.1f} "
        f"screen_p50_ms={results['screen golden, trigger <= 5%']:.1f} "
        f"breadth_ms={results['breadth, all sessions']:.1f}"
    )


if __name__ == "__main__":
    main()
