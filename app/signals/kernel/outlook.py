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
from app.signals.kernel.crosses import Signals


def trigger_close_sma(tail: FloatArray, fast: int, slow: int) -> FloatArray:
    """Close on the next session that makes the SMAs equal, from the last ``slow`` closes.

    Solves ``(Sf - c[t-fast+1] + x)/fast = (Ss - c[t-slow+1] + x)/slow`` where ``Sf``,
    ``Ss`` are today's window sums. ``tail``: ``(symbols, >= slow)``. NaN where the
    window is incomplete or the solution is not positive.
    """
    kept_fast = np.sum(tail[:, -fast + 1 :], axis=1) if fast > 1 else np.zeros(len(tail))
    kept_slow = np.sum(tail[:, -slow + 1 :], axis=1)
    trigger: FloatArray = (fast * kept_slow - slow * kept_fast) / (slow - fast)
    trigger[~(trigger > 0) | np.isnan(tail[:, -slow])] = np.nan
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


def _first_flip(fast_path: FloatArray, slow_path: FloatArray, regime: Int8Array) -> IntArray:
    """1-based index of the first step whose strict sign opposes ``regime``, else -1."""
    ratio = np.divide(fast_path, slow_path, out=fast_path)
    # Multiplying by the regime (+-1, exact) turns both flips into one "below" test.
    ratio *= regime[:, None]
    threshold = np.where(
        regime > 0, 1.0 - TIE_TOLERANCE, np.where(regime < 0, -(1.0 + TIE_TOLERANCE), -np.inf)
    )
    flipped = ratio < threshold[:, None]
    found = flipped.any(axis=1)
    steps: IntArray = np.where(found, np.argmax(flipped, axis=1) + 1, -1)
    return steps


def flat_sessions_sma(tail: FloatArray, regime: Int8Array, fast: int, slow: int) -> IntArray:
    """Sessions ``k >= 1`` until a cross if every future close equals today's; -1 if none.

    ``tail``: the last ``slow`` (or more) closes ``(symbols, >= slow)``; ``regime``:
    today's regime ``(symbols,)``. A cross means the sign strictly opposite to the
    regime (a tie does not count); looked for within ``slow`` sessions, after which both
    averages equal today's close. Window ``w`` at ``t+k`` is the last ``w-k`` closes
    plus ``k`` copies of today's, so one reversed cumulative sum serves all ``k``.
    """
    last = tail[:, -1:]
    newest_first = tail[:, : -slow - 1 : -1]
    suffix = np.zeros((len(tail), slow + 1))
    np.cumsum(newest_first, axis=1, out=suffix[:, 1:])
    steps = np.arange(1, slow + 1, dtype=np.float64)
    future = steps * last
    slow_path = suffix[:, slow - 1 :: -1] + future
    slow_path /= slow
    fast_path = np.empty_like(slow_path)
    np.add(suffix[:, fast - 1 :: -1], future[:, :fast], out=fast_path[:, :fast])
    fast_path[:, fast:] = fast * last
    fast_path /= fast
    return _first_flip(fast_path, slow_path, regime)


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
    last = last_close[:, None]
    decay_fast = (1.0 - 2.0 / (fast + 1)) ** steps
    decay_slow = (1.0 - 2.0 / (slow + 1)) ** steps
    fast_path = last + decay_fast * (fast_ema[:, None] - last)
    slow_path = last + decay_slow * (slow_ema[:, None] - last)
    return _first_flip(fast_path, slow_path, regime)


def outlook(
    tail: FloatArray,
    regime: Int8Array,
    fast_ma: FloatArray,
    slow_ma: FloatArray,
    fast: int,
    slow: int,
    kind: MAKind,
) -> tuple[FloatArray, IntArray]:
    """Trigger close and flat sessions to cross for the newest session of each row."""
    if kind == "sma":
        return trigger_close_sma(tail, fast, slow), flat_sessions_sma(tail, regime, fast, slow)
    return (
        trigger_close_ema(fast_ma, slow_ma, fast, slow),
        flat_sessions_ema(tail[:, -1], fast_ma, slow_ma, regime, fast, slow),
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
