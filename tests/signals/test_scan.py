"""The vectorized scan against the per-symbol path it replaced (``facts.facts_of`` per
symbol over its whole history), on the real seed series and on hand-made closes."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from app.market.repository import ClosePanel
from app.market.service import read_csv_file
from app.signals import scan
from app.signals.analysis import Analysis, Rule, analyse
from app.signals.approach import APPROACH_GAP_PCT, approach_step, approaches
from app.signals.facts import Fact, facts_of
from tests.conftest import data_file

SEED = {"^GSPC": "gspc_daily.csv", "^IXIC": "ixic_daily.csv", "^RUT": "rut_daily.csv"}
EVENTS = ("golden_cross", "death_cross", "peak", "trough", "cross_approaching")
WITHIN = (1, 5, 21, 300, 2_000, 10_000)


def panel_of(series: dict[str, list[float]], dates: dict[str, list[Any]]) -> ClosePanel:
    width = max(len(v) for v in series.values())
    symbols = sorted(series)
    closes = np.full((len(symbols), width), np.nan)
    sessions = np.full((len(symbols), width), np.datetime64("NaT"), dtype="datetime64[D]")
    for row, symbol in enumerate(symbols):
        values = series[symbol]
        closes[row, width - len(values) :] = values
        sessions[row, width - len(values) :] = np.array(dates[symbol], dtype="datetime64[D]")
    return ClosePanel(symbols, closes, sessions)


@pytest.fixture(scope="module")
def seed_panel() -> ClosePanel:
    series: dict[str, list[float]] = {}
    dates: dict[str, list[Any]] = {}
    for symbol, name in SEED.items():
        bars = read_csv_file(data_file(name))
        # Different lengths, so rows carry left padding as the store's panels do.
        cut = {"^GSPC": 0, "^IXIC": 3_000, "^RUT": 7_000}[symbol]
        series[symbol] = [b.close for b in bars[cut:]]
        dates[symbol] = [b.session for b in bars[cut:]]
    return panel_of(series, dates)


def per_symbol_scan(
    analysis: Analysis, event: str, within: int, facts: dict[int, list[Fact]] | None = None
) -> list[dict[str, Any]]:
    """The scan as the service computed it before: every fact of every symbol."""
    facts = {} if facts is None else facts
    matches = []
    width = analysis.panel.closes.shape[1]
    for row, symbol in enumerate(analysis.panel.symbols):
        length = int(analysis.lengths[row])
        if length == 0:
            continue
        if row not in facts:
            facts[row] = facts_of(analysis, row)
        of_type = [fact for fact in facts[row] if fact.type == event]
        if not of_type:
            continue
        last = of_type[-1]
        sessions = analysis.panel.sessions[row]
        index = int(np.searchsorted(sessions[width - length :], np.datetime64(last.session)))
        ago = length - 1 - index
        if ago < within:
            matches.append(
                {
                    "symbol": symbol,
                    "type": event,
                    "session": last.session,
                    "sessions_ago": ago,
                    "data": last.data,
                }
            )
    return matches


def vectorized_scan(analysis: Analysis, event: str, within: int) -> list[dict[str, Any]]:
    rows = np.arange(len(analysis.panel.symbols), dtype=np.int64)
    return scan.records(analysis, scan.latest_events(analysis), event, rows, within)


# SMA rules only: the old path's trigger of an approach reruns the kernel on the prefix,
# which for EMAs is a sequential pass per approach (minutes on 24,000 sessions).
@pytest.mark.parametrize("rule", [Rule(), Rule(10, 30)])
def test_vectorized_scan_equals_the_per_symbol_facts_on_the_seed(
    seed_panel: ClosePanel, rule: Rule
) -> None:
    analysis = analyse(seed_panel, rule)
    seen = set()
    facts: dict[int, list[Fact]] = {}
    for event in EVENTS:
        for within in WITHIN:
            expected = per_symbol_scan(analysis, event, within, facts)
            assert vectorized_scan(analysis, event, within) == expected, (event, within)
            seen.update(m["type"] for m in expected)
    # Every event type is exercised by some window on real data.
    assert seen == set(EVENTS)


def test_the_newest_event_of_each_row_is_its_last_fact(seed_panel: ClosePanel) -> None:
    analysis = analyse(seed_panel)
    column, kind = scan.latest_events(analysis).newest()
    for row in range(len(seed_panel.symbols)):
        last = facts_of(analysis, row)[-1]
        assert scan.EVENT_TYPES[int(kind[row])] == last.type
        assert analysis.session_of(row, int(column[row])) == last.session


def approaching_indices(analysis: Analysis, row: int) -> list[int]:
    """The ``cross_approaching`` rule written plainly for one row, run by run: in each
    death regime, the first session whose gap is back within 1% after the regime's first
    session wider than 1%."""
    s = analysis.signals
    regime = s.regime[row]
    gap = np.nan_to_num((s.fast_ma[row] / s.slow_ma[row] - 1.0) * 100.0, nan=0.0)
    death = regime == -1
    starts = np.flatnonzero(death & (np.concatenate(([False], ~death[:-1]))))
    indices: list[int] = []
    for begin in starts.tolist():
        ends = np.flatnonzero(~death[begin:])
        end = begin + int(ends[0]) if ends.size else regime.size
        wide = np.flatnonzero(gap[begin:end] < -APPROACH_GAP_PCT)
        if not wide.size:
            continue
        after = begin + int(wide[0])
        near = np.flatnonzero(gap[after:end] >= -APPROACH_GAP_PCT)
        if near.size:
            indices.append(after + int(near[0]))
    return indices


def test_approaches_are_once_per_death_regime_on_random_walks() -> None:
    # Short windows on random walks of different lengths: many death regimes, some
    # with the gap narrowing more than once (only the first narrowing counts).
    rng = np.random.default_rng(11)
    start = np.datetime64("2000-01-03")
    series, dates = {}, {}
    for i, length in enumerate((400, 250, 37, 3)):
        series[f"S{i}"] = list(100 * np.exp(np.cumsum(rng.normal(0, 0.02, length))))
        dates[f"S{i}"] = list(start + np.arange(length))
    analysis = analyse(panel_of(series, dates), Rule(3, 12))
    rows, columns = scan.approach_columns(analysis)
    expected = [
        (row, index) for row in range(len(series)) for index in approaching_indices(analysis, row)
    ]
    assert len(expected) > 5
    assert list(zip(rows.tolist(), columns.tolist(), strict=True)) == expected
    for event in EVENTS:
        for within in (1, 10, 100, 1_000):
            assert vectorized_scan(analysis, event, within) == per_symbol_scan(
                analysis, event, within
            )


def test_the_closed_form_of_approaches_is_the_step_run_session_by_session() -> None:
    """``analysis.approaches`` (whole matrices) against ``approach_step`` (the daily
    path's rule) run over each session: the same approaches and the same final state."""
    rng = np.random.default_rng(5)
    start = np.datetime64("2000-01-03")
    series, dates = {}, {}
    for i, length in enumerate([600, 420, 250, 90, 37, 12, 3] * 8):
        series[f"S{i}"] = list(100 * np.exp(np.cumsum(rng.normal(0, 0.02, length))))
        dates[f"S{i}"] = list(start + np.arange(length))
    for rule in (Rule(3, 12), Rule(5, 20, "ema")):
        analysis = analyse(panel_of(series, dates), rule)
        s = analysis.signals
        rows, width = s.regime.shape
        armed = done = was_death = np.zeros(rows, dtype=bool)
        at = np.zeros((rows, width), dtype=bool)
        for column in range(width):
            death = s.regime[:, column] == -1
            armed, done, at[:, column] = approach_step(
                armed, done, was_death, death, s.gap_pct()[:, column]
            )
            was_death = death
        found = approaches(s)
        assert at.sum() > 10 and found.armed.any() and found.done.any()
        np.testing.assert_array_equal(found.at, at)
        np.testing.assert_array_equal(found.armed, armed)
        np.testing.assert_array_equal(found.done, done)


def test_a_symbol_without_closes_matches_nothing() -> None:
    dates = list(np.arange(np.datetime64("2024-01-01"), np.datetime64("2024-01-11")))
    panel = panel_of({"X": [float(i) for i in range(1, 11)]}, {"X": dates})
    empty = ClosePanel(
        [*panel.symbols, "Z"],
        np.vstack([panel.closes, np.full(10, np.nan)]),
        np.vstack([panel.sessions, np.full(10, np.datetime64("NaT"), dtype="datetime64[D]")]),
    )
    analysis = analyse(empty, Rule(2, 4))
    for event in EVENTS:
        assert [m["symbol"] for m in vectorized_scan(analysis, event, 100)] in ([], ["X"])
