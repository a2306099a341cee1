"""Golden and death crosses: signs, regime and crosses of two moving averages (DESIGN §3)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.signals.kernel._arrays import (
    TIE_TOLERANCE,
    BoolArray,
    FloatArray,
    Int8Array,
    IntArray,
    MAKind,
    as_closes,
    check_windows,
    first_valid,
    warmup_to_nan,
)
from app.signals.kernel.averages import ema, raw_window_sums


@dataclass(frozen=True)
class Signals:
    """Crossover signals of one rule over a ``(symbols, sessions)`` matrix.

    Every 2-D field has the shape of ``closes`` (some are views that are not
    row-contiguous). Sessions before ``start`` (warm-up, left padding) have NaN
    averages and ``sign == regime == cross == 0``.

    - ``fast_ma``, ``slow_ma``: the averages (float64).
    - ``sign``: int8 sign of ``d = fast - slow``: +1, -1, or 0 for a tie
      (``|d| <= 1e-9 * slow``) *and* during warm-up; use ``valid`` to tell them apart.
    - ``regime``: int8, the last non-zero sign up to t: +1 golden, -1 death, 0 null
      (warm-up, or every valid sign so far a tie).
    - ``cross``: int8, +1 golden cross at t, -1 death cross at t, 0 none.
    - ``start``: int64 ``(symbols,)``, each row's first valid session
      ``t0 = first close + slow - 1`` (``>= sessions`` when the row never gets one).
    """

    fast: int
    slow: int
    kind: MAKind
    fast_ma: FloatArray
    slow_ma: FloatArray
    sign: Int8Array
    regime: Int8Array
    cross: Int8Array
    start: IntArray

    @property
    def valid(self) -> BoolArray:
        """Boolean ``(symbols, sessions)`` mask of sessions with a defined ``d``."""
        sessions = np.arange(self.sign.shape[1])
        mask: BoolArray = sessions[None, :] >= self.start[:, None]
        return mask

    def gap_pct(self) -> FloatArray:
        """``(fast/slow - 1) * 100`` at every session; NaN in warm-up."""
        gap: FloatArray = np.divide(self.fast_ma, self.slow_ma)
        gap -= 1.0
        gap *= 100.0
        return gap


def signs(fast_ma: FloatArray, slow_ma: FloatArray) -> Int8Array:
    """Int8 sign of ``fast - slow`` with the tie band; 0 where either average is NaN.

    Evaluated as ``fast/slow`` against ``1 ± 1e-9``, the same band as
    ``|fast - slow| <= 1e-9 * slow`` for positive averages, in three passes.
    Works on arrays of any shape (the daily path uses it on vectors).
    """
    ratio = np.divide(fast_ma, slow_ma)
    above = np.greater(ratio, 1.0 + TIE_TOLERANCE)
    below = np.less(ratio, 1.0 - TIE_TOLERANCE)
    result: Int8Array = np.subtract(above.view(np.int8), below.view(np.int8))
    return result


def regimes(sign: Int8Array, start: IntArray) -> Int8Array:
    """Forward-fill of the non-zero signs along sessions (int8, 0 = null).

    Ties after ``start`` are rare, so they are found with one int8 pass and filled from
    the session before their run; everything else is the sign itself.
    """
    regime = sign.copy()
    n_sessions = sign.shape[1]
    tie = sign == 0
    warm = int(min(start.max(initial=0), n_sessions))
    if warm:
        tie[:, :warm] &= np.arange(warm)[None, :] >= start[:, None]
    ties = np.flatnonzero(tie)
    if ties.size == 0:
        return regime
    rows, sessions = np.divmod(ties, n_sessions)
    run_start = np.ones(ties.size, dtype=bool)
    run_start[1:] = (np.diff(ties) != 1) | (sessions[1:] == 0)
    source_rows = rows[run_start]
    source_sessions = sessions[run_start] - 1
    filled = np.where(
        source_sessions >= start[source_rows],
        sign[source_rows, np.maximum(source_sessions, 0)],
        0,
    ).astype(np.int8)
    regime.reshape(-1)[ties] = filled[np.cumsum(run_start) - 1]
    return regime


def crosses(sign: Int8Array, regime: Int8Array) -> Int8Array:
    """+1/-1 where a non-zero sign is opposite to the regime of the session before."""
    cross = np.zeros_like(sign)
    flips = np.multiply(sign[:, 1:], regime[:, :-1])
    np.multiply(sign[:, 1:], flips == -1, out=cross[:, 1:])
    return cross


def sma_pair(
    closes: FloatArray, first: IntArray, fast: int, slow: int
) -> tuple[FloatArray, FloatArray]:
    """Fast and slow SMAs sharing one pass when ``slow`` is a small multiple of ``fast``.

    Then ``sum_slow[t] = sum_fast[t] + sum_fast[t-fast] + ...`` (left to right), which
    keeps the accuracy of the fast sums and saves a cumulative sum.
    """
    fast_sums = raw_window_sums(closes, first, fast)
    multiple, remainder = divmod(slow, fast)
    if remainder == 0 and multiple <= 8:
        slow_sums = np.full(closes.shape, np.nan)
        span = (multiple - 1) * fast
        target = slow_sums[:, span:]
        np.copyto(target, fast_sums[:, span:])
        for part in range(1, multiple):
            offset = span - part * fast
            target += fast_sums[:, offset : offset + target.shape[1]]
    else:
        slow_sums = raw_window_sums(closes, first, slow)
    fast_sums /= fast
    slow_sums /= slow
    warmup_to_nan(fast_sums, first, fast)
    warmup_to_nan(slow_sums, first, slow)
    return fast_sums, slow_sums


def last_window_sums(tail: FloatArray, fast: int, slow: int) -> tuple[FloatArray, FloatArray]:
    """Fast and slow window sums of the newest session from the last ``slow`` closes.

    Reproduces :func:`sma_pair` on its newest session bit for bit: there each window is
    a whole block (a left-to-right sum), and the slow sum is built from fast blocks the
    same way.
    """
    fast_sums = np.cumsum(tail[:, -fast:], axis=1)[:, -1]
    multiple, remainder = divmod(slow, fast)
    if remainder == 0 and multiple <= 8:
        slow_sums = fast_sums.copy()
        for part in range(1, multiple):
            block = tail[:, tail.shape[1] - (part + 1) * fast : tail.shape[1] - part * fast]
            slow_sums += np.cumsum(block, axis=1)[:, -1]
    else:
        slow_sums = np.cumsum(tail[:, -slow:], axis=1)[:, -1]
    return fast_sums, slow_sums


def detect(closes: FloatArray, fast: int = 50, slow: int = 200, kind: MAKind = "sma") -> Signals:
    """Crossover signals of ``fast``/``slow`` SMAs or EMAs for every symbol.

    ``closes``: float64 ``(symbols, sessions)``, rows right-aligned, NaN only as left
    padding (``ValueError`` otherwise). Semantics exactly as DESIGN §3: a golden cross
    at ``t > t0`` is ``sign[t] = +1`` with the last non-zero sign in ``t0..t-1`` equal
    to -1 (death cross: the mirror); ties neither cross nor reset the regime; no cross
    at ``t0`` or after a run of ties only.
    """
    closes = as_closes(closes)
    check_windows(fast, slow)
    first = first_valid(closes)
    if kind == "sma":
        fast_ma, slow_ma = sma_pair(closes, first, fast, slow)
    elif kind == "ema":
        fast_ma, slow_ma = ema(closes, fast), ema(closes, slow)
    else:
        raise ValueError(f"kind must be 'sma' or 'ema', got {kind!r}")
    sign = signs(fast_ma, slow_ma)
    start = first + slow - 1
    regime = regimes(sign, start)
    return Signals(
        fast=fast,
        slow=slow,
        kind=kind,
        fast_ma=fast_ma,
        slow_ma=slow_ma,
        sign=sign,
        regime=regime,
        cross=crosses(sign, regime),
        start=start,
    )
