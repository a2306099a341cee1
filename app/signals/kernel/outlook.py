"""What the next sessions would need: trigger close and sessions to a cross if flat.

Both answer for the newest session only and need just the last ``slow`` closes (plus,
for EMAs, today's averages), so they cost ``O(symbols * slow)`` and serve the full
run and the daily path alike.
"""

from __future__ import annotations

import numpy as np

from app.signals.kernel._arrays import (
    TIE_TOLERANCE,
    FloatArray,
    Int8Array,
    IntArray,
    MAKind,
    as_closes,
)
from app.signals.kernel.averages import newest_columns
from app.signals.kernel.crosses import Signals


def trigger_close_sma(tail: FloatArray, fast: int, slow: int) -> FloatArray:
    """Close on the next session that makes the SMAs equal, from the last ``slow`` closes.

    Solves ``(Sf - c[t-fast+1] + x)/fast = (Ss - c[t-slow+1] + x)/slow`` where ``Sf``,
    ``Ss`` are today's window sums. ``tail``: ``(symbols, >= slow)``. NaN where the
    window is incomplete or the solution is not positive.
    """
    return trigger_close_sma_columns(newest_columns(tail, slow), fast, slow)


def trigger_close_sma_columns(columns: FloatArray, fast: int, slow: int) -> FloatArray:
    """:func:`trigger_close_sma` on :func:`newest_columns` ``(slow, symbols)``."""
    rows = columns.shape[0]
    kept_fast = np.add.reduce(columns[rows - fast + 1 :], axis=0, initial=0.0)
    kept_slow = np.add.reduce(columns[rows - slow + 1 :], axis=0, initial=0.0)
    trigger: FloatArray = (fast * kept_slow - slow * kept_fast) / (slow - fast)
    trigger[~(trigger > 0) | np.isnan(columns[rows - slow])] = np.nan
    return trigger


def trigger_close_ema(
    fast_ema: FloatArray, slow_ema: FloatArray, fast: int, slow: int
) -> FloatArray:
    """Close on the next session that makes the EMAs equal.

    Solves ``af*x + (1-af)*Ef = as*x + (1-as)*Es`` with ``a = 2/(w+1)``. Inputs and
    output ``(symbols,)``; NaN where an EMA is undefined or the solution is not positive.
    """
    alpha_fast, alpha_slow = 2.0 / (fast + 1), 2.0 / (slow + 1)
    trigger: FloatArray = ((1.0 - alpha_slow) * slow_ema - (1.0 - alpha_fast) * fast_ema) / (
        alpha_fast - alpha_slow
    )
    trigger[~(trigger > 0)] = np.nan
    return trigger


def _first_flip(ratio: FloatArray, regime: Int8Array) -> IntArray:
    """1-based index of the first step whose strict sign opposes ``regime``, else -1.

    ``ratio``: ``(steps, symbols)`` fast/slow ratios along the future sessions (used as
    scratch); ``regime``: ``(symbols,)``.
    """
    # Multiplying by the regime (+-1, exact) turns both flips into one "below" test.
    ratio *= regime[None, :]
    threshold = np.where(
        regime > 0, 1.0 - TIE_TOLERANCE, np.where(regime < 0, -(1.0 + TIE_TOLERANCE), -np.inf)
    )
    flipped = ratio < threshold[None, :]
    found = flipped.any(axis=0)
    steps: IntArray = np.where(found, np.argmax(flipped, axis=0) + 1, -1)
    return steps


def flat_sessions_sma(tail: FloatArray, regime: Int8Array, fast: int, slow: int) -> IntArray:
    """Sessions ``k >= 1`` until a cross if every future close equals today's; -1 if none.

    ``tail``: the last ``slow`` (or more) closes ``(symbols, >= slow)``; ``regime``:
    today's regime ``(symbols,)``. A cross means the sign strictly opposite to the
    regime (a tie does not count); looked for within ``slow`` sessions, after which both
    averages equal today's close.

    With today's close ``x`` held, window ``w`` at ``t+k`` is ``w*x + e[w-k]`` where
    ``e[j]`` sums the deviations ``c - x`` of the newest ``j`` closes, so one running
    sum serves all ``k``. A golden regime flips when
    ``(1 - 1e-9) * e[slow-k]/slow - e[fast-k]/fast > 1e-9 * x`` (``e[0] = 0``), a death
    regime the same with ``-e`` and ``1 + 1e-9``: with deviations signed by the regime
    it is one test, and for ``k >= fast`` a plain comparison of the running sum with a
    per-symbol threshold. Laid out as ``(j, symbols)``: each step is one contiguous
    vector operation over all symbols.
    """
    return flat_sessions_sma_columns(newest_columns(tail, slow), regime, fast, slow)


def flat_sessions_sma_columns(
    columns: FloatArray, regime: Int8Array, fast: int, slow: int
) -> IntArray:
    """:func:`flat_sessions_sma` on :func:`newest_columns` ``(slow, symbols)``."""
    last = columns[slow - 1]
    direction = regime.astype(np.float64)
    # running[i] = e[slow-1-i] times the regime: the signed deviations of closes i+1 ..
    # slow-1 (oldest first), summed in place from the newest; e[slow-k] = running[k-1].
    running = np.empty((slow - 1, columns.shape[1]))
    np.subtract(columns[1:], last[None, :], out=running)
    running *= direction[None, :]
    for row in range(slow - 3, -1, -1):
        np.add(running[row + 1], running[row], out=running[row])
    band = 1.0 - direction * TIE_TOLERANCE
    bound = TIE_TOLERANCE * last
    # k <= fast: e[slow-k] = running[k-1] and, for k < fast, e[fast-k] = running[slow-fast+k-1].
    near = running[:fast] * (band / slow)[None, :]
    near[: fast - 1] -= running[slow - fast :] / fast
    near_flip = near > bound[None, :]
    steps: IntArray = np.where(near_flip.any(axis=0), np.argmax(near_flip, axis=0) + 1, -1)
    # fast < k < slow: e[slow-k] = running[k-1] against a per-symbol threshold.
    if slow - fast > 1:
        far_flip = running[fast:] > (bound * slow / band)[None, :]
        far = np.where(far_flip.any(axis=0), np.argmax(far_flip, axis=0) + fast + 1, -1)
        steps = np.where(steps > 0, steps, far)
    return steps


def flat_sessions_ema(
    last_close: FloatArray,
    fast_ema: FloatArray,
    slow_ema: FloatArray,
    regime: Int8Array,
    fast: int,
    slow: int,
) -> IntArray:
    """EMA counterpart of :func:`flat_sessions_sma`: ``E(k) = c + (1-a)**k * (E - c)``."""
    steps = np.arange(1, slow + 1)
    last = last_close[None, :]
    decay_fast = (1.0 - 2.0 / (fast + 1)) ** steps
    decay_slow = (1.0 - 2.0 / (slow + 1)) ** steps
    fast_path = last + decay_fast[:, None] * (fast_ema[None, :] - last)
    slow_path = last + decay_slow[:, None] * (slow_ema[None, :] - last)
    return _first_flip(np.divide(fast_path, slow_path, out=fast_path), regime)


def outlook(
    tail: FloatArray,
    regime: Int8Array,
    fast_ma: FloatArray,
    slow_ma: FloatArray,
    fast: int,
    slow: int,
    kind: MAKind,
) -> tuple[FloatArray, IntArray]:
    """Trigger close and flat sessions to cross for the newest session of each row.

    ``tail``: :func:`newest_columns` ``(slow, symbols)`` of the last closes.
    """
    if kind == "sma":
        return (
            trigger_close_sma_columns(tail, fast, slow),
            flat_sessions_sma_columns(tail, regime, fast, slow),
        )
    return (
        trigger_close_ema(fast_ma, slow_ma, fast, slow),
        flat_sessions_ema(tail[-1], fast_ma, slow_ma, regime, fast, slow),
    )


def _newest(closes: FloatArray, signals: Signals) -> tuple[FloatArray, FloatArray, FloatArray]:
    tail = as_closes(closes)[:, -signals.slow :]
    if tail.shape[1] < signals.slow:
        tail = np.concatenate(
            [np.full((len(tail), signals.slow - tail.shape[1]), np.nan), tail], axis=1
        )
    return tail, signals.fast_ma[:, -1], signals.slow_ma[:, -1]


def trigger_close(closes: FloatArray, signals: Signals) -> FloatArray:
    """Trigger close of the newest session for every row of :func:`detect`'s input.

    ``(symbols,)`` float64: the next close that makes ``fast == slow``; above it a death
    regime turns golden, below it a golden regime turns death. NaN when undefined or not
    positive.
    """
    tail, fast_ma, slow_ma = _newest(closes, signals)
    if signals.kind == "sma":
        return trigger_close_sma(tail, signals.fast, signals.slow)
    return trigger_close_ema(fast_ma, slow_ma, signals.fast, signals.slow)


def flat_sessions_to_cross(closes: FloatArray, signals: Signals) -> IntArray:
    """Sessions until a cross if every future close equalled the newest (``(symbols,)``).

    -1 when no strict flip against the current regime happens within ``slow`` sessions,
    or when the regime is null.
    """
    tail, fast_ma, slow_ma = _newest(closes, signals)
    regime = signals.regime[:, -1]
    if signals.kind == "sma":
        return flat_sessions_sma(tail, regime, signals.fast, signals.slow)
    return flat_sessions_ema(tail[:, -1], fast_ma, slow_ma, regime, signals.fast, signals.slow)
