"""Breadth before and after, side by side in one process (issue 11: breadth over all
sessions at 5,000 × 2,520 ≤ 200 ms, peak RSS ≤ 1.5 GB).

Run: ``.venv/bin/python benchmarks/breadth.py [--symbols N] [--runs R]``.

Seeded random walks (one symbol in ten with a shorter history, one in fifty stopped
early, one in a hundred missing a few sessions) analysed once, then, alternating, the
whole-panel code this replaced (:func:`before_highs_and_lows`, :func:`before_breadth`,
kept here verbatim) and :mod:`app.signals.breadth`: the 252-session highs and lows
(built once per snapshot) and the breadth of every symbol over all sessions (every
request). Times are the best of ``--runs``; memory is the peak of what numpy allocated
(``tracemalloc``) above what the panel and its analysis already hold. The two results
are checked equal. On a shared machine the ratios mean more than the times.
"""

from __future__ import annotations

import argparse
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.market.repository import ClosePanel
from app.signals import breadth
from app.signals.analysis import analyse

SESSIONS = 2520


def panel_of(symbols: int, seed: int) -> ClosePanel:
    rng = np.random.default_rng(seed)
    closes = np.round(
        100.0 * np.exp(np.cumsum(rng.normal(0.0003, 0.013, (symbols, SESSIONS)), axis=1)), 2
    )
    union = np.busday_offset("2016-11-15", np.arange(SESSIONS + 10), roll="forward")
    sessions = np.empty((symbols, SESSIONS), dtype="datetime64[D]")
    sessions[:] = union[10:]
    for row in range(symbols):
        if row % 10 == 3:  # a shorter history
            cut = int(rng.integers(1, SESSIONS))
            closes[row, :cut] = np.nan
            sessions[row, :cut] = np.datetime64("NaT")
        elif row % 50 == 7:  # stopped early: its sessions end before the newest
            stop = int(rng.integers(1, 10))
            sessions[row] = union[10 - stop : SESSIONS + 10 - stop]
        elif row % 100 == 11:  # misses a few sessions
            own = np.delete(union, rng.choice(np.arange(20, SESSIONS), 5, replace=False))
            sessions[row] = own[-SESSIONS:]
    return ClosePanel([f"S{row:05d}" for row in range(symbols)], closes, sessions)


# The code this replaced (whole-panel temporaries), kept verbatim for the comparison.


def before_rolling_extreme(values: Any, window: int, *, highest: bool) -> Any:
    n_rows, width = values.shape
    result = np.full(values.shape, np.nan)
    if width < window:
        return result
    pick = np.maximum if highest else np.minimum
    fill = -np.inf if highest else np.inf
    pad = (-width) % window
    padded = np.full((n_rows, width + pad), fill)
    np.copyto(padded[:, pad:], values)
    padded[np.isnan(padded)] = fill
    blocks = np.ascontiguousarray(padded.T).reshape(-1, window, n_rows)
    prefix = pick.accumulate(blocks, axis=1).reshape(-1, n_rows)
    suffix = np.ascontiguousarray(blocks[:, ::-1])
    pick.accumulate(suffix, axis=1, out=suffix)
    suffix = suffix[:, ::-1].reshape(-1, n_rows)
    total = width + pad
    extreme = pick(suffix[pad : total - window + 1], prefix[pad + window - 1 : total])
    result[:, window - 1 :] = extreme.T
    return result


def before_highs_and_lows(closes: Any) -> tuple[Any, Any]:
    window = breadth.HIGH_LOW_SESSIONS
    highs = np.zeros(closes.shape, dtype=bool)
    lows = np.zeros(closes.shape, dtype=bool)
    if closes.shape[1] < window:
        return highs, lows
    with np.errstate(invalid="ignore"):
        np.greater_equal(closes, before_rolling_extreme(closes, window, highest=True), out=highs)
        np.less_equal(closes, before_rolling_extreme(closes, window, highest=False), out=lows)
    first = closes.shape[1] - np.count_nonzero(~np.isnan(closes), axis=1)
    too_short = np.arange(closes.shape[1])[None, :] < (first + window - 1)[:, None]
    highs &= ~too_short
    lows &= ~too_short
    return highs, lows


def before_column_sums(panel: ClosePanel, cal: breadth.Calendar, rows: Any, masks: Any) -> Any:
    width = panel.closes.shape[1]
    n_union = cal.sessions.size
    sums = np.zeros((len(masks), n_union), dtype=np.int64)
    contiguous = cal.contiguous[rows]
    shifts = cal.last[rows] - (width - 1)
    groups = np.unique(shifts[contiguous])
    for shift in groups.tolist():
        members = np.flatnonzero(contiguous & (shifts == shift))
        begin = max(0, -shift)
        whole = members.size == rows.size
        for k, mask in enumerate(masks):
            block = mask if whole else mask[members]
            sums[k, begin + shift : width + shift] += np.add.reduce(
                block[:, begin:].view(np.int8), axis=0, dtype=np.int32
            )
    gapped = np.flatnonzero(~contiguous & (cal.last[rows] >= 0))
    if gapped.size:
        position, column, union = cal.cells(panel, rows[gapped])
        for k, mask in enumerate(masks):
            hit = mask[gapped[position], column]
            sums[k] += np.bincount(union[hit], minlength=n_union)
    return sums


def before_breadth(panel: ClosePanel, cal: breadth.Calendar, rows: Any, cells: Any) -> Any:
    closes, fast_ma, slow_ma, regime, cross, highs, lows = cells
    with np.errstate(invalid="ignore"):
        masks = [
            ~np.isnan(closes),
            ~np.isnan(fast_ma),
            closes > fast_ma,
            ~np.isnan(slow_ma),
            closes > slow_ma,
            regime != 0,
            regime == 1,
            cross == 1,
            cross == -1,
            highs,
            lows,
        ]
    return before_column_sums(panel, cal, rows, masks)


def measured(function: Callable[[], Any], runs: int) -> tuple[float, float, Any]:
    """(best ms of ``runs``, peak MB allocated during one run, the result)."""
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        result = function()
        best = min(best, (time.perf_counter() - start) * 1000)
    tracemalloc.start()
    function()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return best, peak / 2**20, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    panel = panel_of(args.symbols, args.seed)
    signals = analyse(panel).signals
    cal = breadth.calendar(panel)
    rows = np.arange(args.symbols, dtype=np.int64)
    print(f"breadth: {args.symbols} symbols x {SESSIONS} sessions, best of {args.runs}")

    figures: dict[str, tuple[float, float]] = {}
    results: dict[str, Any] = {}
    for name, function in (
        ("highs before", lambda: before_highs_and_lows(panel.closes)),
        ("highs after", lambda: breadth.highs_and_lows(panel.closes)),
    ):
        ms, mb, results[name] = measured(function, args.runs)
        figures[name] = (ms, mb)
    highs, lows = results["highs after"]
    for before, after in zip(results["highs before"], results["highs after"], strict=True):
        np.testing.assert_array_equal(before, after)
    old_cells = (panel.closes, signals.fast_ma, signals.slow_ma)
    old_cells += (signals.regime, signals.cross, highs, lows)
    cells = breadth.Cells.of(panel.closes, (highs, lows), signals)
    for name, function in (
        ("breadth before", lambda: before_breadth(panel, cal, rows, old_cells)),
        ("breadth after", lambda: breadth._column_sums(panel, cal, rows, cells)),
    ):
        ms, mb, results[name] = measured(function, args.runs)
        figures[name] = (ms, mb)
    np.testing.assert_array_equal(results["breadth before"], results["breadth after"])
    for name, (ms, mb) in figures.items():
        print(f"  {name:16s} {ms:8.1f} ms   peak {mb:7.1f} MB allocated")

    def ratio(kind: str, index: int) -> float:
        return figures[f"{kind} before"][index] / figures[f"{kind} after"][index]

    print(
        f"breadth: symbols={args.symbols} highs_ms={figures['highs after'][0]:.1f} "
        f"highs_speedup={ratio('highs', 0):.1f} highs_memory_ratio={ratio('highs', 1):.1f} "
        f"breadth_ms={figures['breadth after'][0]:.1f} breadth_speedup={ratio('breadth', 0):.1f} "
        f"breadth_memory_ratio={ratio('breadth', 1):.1f}"
    )


if __name__ == "__main__":
    main()
