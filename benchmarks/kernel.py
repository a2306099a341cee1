"""Benchmark of the signal kernel against a pandas baseline and the memory floor.

Run: ``.venv/bin/python benchmarks/kernel.py``. Times are medians of several runs in
one process; peak memory is measured by tracemalloc (which sees numpy buffers) and given
as a multiple of the input matrix. The last line summarises the 2,000 x 10,000 case.
"""

from __future__ import annotations

import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.signals.kernel import (
    advance,
    detect,
    drawdown,
    state_from_full,
    trigger_close,
    zigzag,
)
from tests.support import realdata


def random_walks(symbols: int, sessions: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    steps = rng.normal(0.0003, 0.012, (symbols, sessions))
    return 100.0 * np.exp(np.cumsum(steps, axis=1))


def real_matrix() -> np.ndarray:
    series = []
    for name in ("rut", "gspc", "ixic"):
        frame = pd.read_csv(realdata.compressed(f"{name}_daily.csv"))
        series.append(frame["close"].to_numpy(dtype=np.float64))
    width = max(len(s) for s in series)
    matrix = np.full((len(series), width), np.nan)
    for row, closes in enumerate(series):
        matrix[row, width - len(closes) :] = closes
    return matrix


def kernel_default(closes: np.ndarray) -> Any:
    signals = detect(closes)
    return signals, trigger_close(closes, signals), drawdown(closes)


def pandas_default(closes: np.ndarray) -> Any:
    frame = pd.DataFrame(closes.T)
    fast = frame.rolling(50).mean()
    slow = frame.rolling(200).mean()
    diff = fast - slow
    sign = np.sign(diff.where(diff.abs() > 1e-9 * slow, 0.0)).fillna(0.0)
    regime = sign.replace(0.0, np.nan).ffill().fillna(0.0)
    cross = sign.where((sign != 0) & (regime.shift(1) == -sign), 0.0)
    fast_sum = frame.rolling(49).sum().iloc[-1]
    slow_sum = frame.rolling(199).sum().iloc[-1]
    trigger = (50 * slow_sum - 200 * fast_sum) / 150
    peak = frame.cummax()
    return cross, regime, trigger, frame / peak - 1


def measure(function: Callable[[], Any], runs: int) -> tuple[float, float]:
    """Median seconds over ``runs`` and peak traced bytes of one run."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    tracemalloc.start()
    function()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return statistics.median(times), float(peak)


def run_case(name: str, closes: np.ndarray, runs: int) -> dict[str, float]:
    size = closes.nbytes
    floor, _ = measure(lambda: closes.sum(), runs * 3)
    kernel, kernel_mem = measure(lambda: kernel_default(closes), runs)
    baseline, baseline_mem = measure(lambda: pandas_default(closes), max(1, runs // 2))
    turns, turns_mem = measure(lambda: zigzag(closes), runs)
    state = state_from_full(closes[:, :-1])
    tail = np.ascontiguousarray(closes[:, -201:])
    daily, daily_mem = measure(lambda: advance(state, tail), runs * 5)
    print(f"== {name}: {closes.shape[0]} x {closes.shape[1]} ({size / 1e6:.0f} MB)")
    rows = [
        ("floor arr.sum()", floor, 0.0),
        ("kernel default", kernel, kernel_mem),
        ("pandas default", baseline, baseline_mem),
        ("kernel zigzag", turns, turns_mem),
        ("daily path", daily, daily_mem),
    ]
    for label, seconds, memory in rows:
        print(
            f"  {label:<16} {seconds * 1e3:9.2f} ms  {seconds / floor:8.1f}x floor"
            f"  peak mem {memory / size:5.2f}x matrix"
        )
    print(f"  kernel/pandas={kernel / baseline:.3f}  daily/full={daily / kernel:.5f}")
    return {
        "r1": kernel / baseline,
        "r2": kernel / floor,
        "r3": turns / floor,
        "r4": daily / kernel,
    }


def main() -> None:
    run_case("real ^RUT ^GSPC ^IXIC", real_matrix(), 7)
    run_case("random walks", random_walks(5_000, 2_520, seed=2), 5)
    main_case = run_case("random walks", random_walks(2_000, 10_000, seed=1), 5)
    print(
        f"kernel/pandas={main_case['r1']:.3f} kernel/floor={main_case['r2']:.1f} "
        f"turns/floor={main_case['r3']:.1f} daily/full={main_case['r4']:.5f}"
    )


if __name__ == "__main__":
    main()
