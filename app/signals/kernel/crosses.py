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
from app.signals.kernel.averages import (
    FiniteChunks,
    SlidingSums,
    chunk_rows,
    ema,
    tree_sum,
)


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


def signs(
    fast_ma: FloatArray,
    slow_ma: FloatArray,
    out: Int8Array | None = None,
    ratio: FloatArray | None = None,
) -> Int8Array:
    """Int8 sign of ``fast - slow`` with the tie band; 0 where either average is NaN.

    Evaluated as ``fast/slow`` against ``1 ± 1e-9``, the same band as
    ``|fast - slow| <= 1e-9 * slow`` for positive averages. Works on arrays of any shape
    (the daily path uses it on vectors). ``out`` and ``ratio`` are optional buffers of
    the input's shape (int8 and float64) for the result and the intermediate ratio.
    """
    ratio = np.divide(fast_ma, slow_ma, out=ratio)
    above = np.greater(ratio, 1.0 + TIE_TOLERANCE)
    below = np.less(ratio, 1.0 - TIE_TOLERANCE)
    result: Int8Array = np.subtract(above.view(np.int8), below.view(np.int8), out=out)
    return result


def regimes(sign: Int8Array, start: IntArray, out: Int8Array | None = None) -> Int8Array:
    """Forward-fill of the non-zero signs along sessions (int8, 0 = null).

    Ties after ``start`` are rare, so they are found with one int8 pass and filled from
    the session before their run; everything else is the sign itself. ``out``: optional
    C-contiguous int8 buffer of ``sign``'s shape for the result.
    """
    if out is None:
        regime = sign.copy()
    else:
        regime = out
        np.copyto(regime, sign)
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


def crosses(regime: Int8Array, out: Int8Array | None = None) -> Int8Array:
    """+1/-1 where the regime flips between consecutive sessions, else 0.

    A cross is a non-zero sign opposite to the regime of the session before; since a
    non-zero sign *is* the new regime and a tie keeps the old one, that is exactly
    ``regime[t] * regime[t-1] == -1``. Three int8 passes: the product, an arithmetic
    shift that maps -1 to all ones and 0/1 to 0, and a mask of ``regime[t]``.
    """
    cross = np.empty_like(regime) if out is None else out
    cross[:, :1] = 0
    flips = cross[:, 1:]
    np.multiply(regime[:, 1:], regime[:, :-1], out=flips)
    np.right_shift(flips, 1, out=flips)
    np.bitwise_and(flips, regime[:, 1:], out=flips)
    return cross


def _slow_from_fast(fast_sums: FloatArray, fast: int, slow: int, out: FloatArray) -> None:
    """``sum_slow[t] = sum_fast[t] + sum_fast[t-fast] + ...`` (left to right) into ``out``.

    Used when ``slow`` is a small multiple of ``fast``: keeps the accuracy of the fast
    sums and saves a cumulative sum. Sessions before ``slow - fast`` are left NaN.
    """
    multiple = slow // fast
    span = (multiple - 1) * fast
    n_sessions = fast_sums.shape[1]
    out[:, : min(span, n_sessions)] = np.nan
    target = out[:, span:]
    width = target.shape[1]
    np.add(fast_sums[:, span:], fast_sums[:, span - fast : span - fast + width], out=target)
    for part in range(2, multiple):
        offset = span - part * fast
        target += fast_sums[:, offset : offset + width]


def _shares_fast_sums(fast: int, slow: int) -> bool:
    multiple, remainder = divmod(slow, fast)
    return remainder == 0 and multiple <= 8


def _sma_signals(
    closes: FloatArray, first: IntArray, fast: int, slow: int
) -> tuple[FloatArray, FloatArray, Int8Array, Int8Array, Int8Array]:
    """Fast and slow SMAs, sign, regime and cross, fused over row chunks.

    Every chunk runs the whole pipeline on buffers that stay in cache, so the matrix is
    read once and only the outputs are written: no matrix-sized temporaries.
    """
    n_symbols, n_sessions = closes.shape
    fast_ma = np.empty(closes.shape)
    slow_ma = np.empty(closes.shape)
    sign = np.empty(closes.shape, dtype=np.int8)
    regime = np.empty(closes.shape, dtype=np.int8)
    cross = np.empty(closes.shape, dtype=np.int8)
    if n_sessions == 0:
        return fast_ma, slow_ma, sign, regime, cross
    rows = chunk_rows(n_sessions)
    chunks = FiniteChunks(closes, first, rows)
    fast_windows = SlidingSums(rows, n_sessions, fast)
    shared = _shares_fast_sums(fast, slow)
    slow_windows = None if shared else SlidingSums(rows, n_sessions, slow)
    ratio = np.empty((rows, n_sessions))
    start = first + slow - 1
    for begin in range(0, n_symbols, rows):
        end = min(begin + rows, n_symbols)
        values = chunks.chunk(begin, end)
        fast_sums = fast_windows.sums(values)
        slow_out = slow_ma[begin:end]
        if slow_windows is None:
            _slow_from_fast(fast_sums, fast, slow, slow_out)
            slow_out /= slow
        else:
            np.divide(slow_windows.sums(values), slow, out=slow_out)
        fast_out = np.divide(fast_sums, fast, out=fast_ma[begin:end])
        chunk_first = first[begin:end]
        if chunk_first.any():
            warmup_to_nan(fast_out, chunk_first, fast)
            warmup_to_nan(slow_out, chunk_first, slow)
        else:  # no padding in this chunk: the same warm-up for every row
            fast_out[:, : fast - 1] = np.nan
            slow_out[:, : slow - 1] = np.nan
        sign_out = signs(fast_out, slow_out, out=sign[begin:end], ratio=ratio[: end - begin])
        regime_out = regime[begin:end]
        chunk_start = start[begin:end]
        valid_from = int(chunk_start[0])
        if (chunk_start == valid_from).all() and (
            valid_from >= n_sessions
            or np.count_nonzero(sign_out[:, valid_from:]) == sign_out[:, valid_from:].size
        ):
            # No tie after the start: the regime is the sign itself.
            np.copyto(regime_out, sign_out)
        else:
            regimes(sign_out, chunk_start, out=regime_out)
        crosses(regime_out, out=cross[begin:end])
    return fast_ma, slow_ma, sign, regime, cross


def last_window_sums(columns: FloatArray, fast: int, slow: int) -> tuple[FloatArray, FloatArray]:
    """Fast and slow window sums of the newest session from the last ``slow`` closes.

    ``columns``: ``(slow, symbols)``, the last ``slow`` closes of every symbol as rows,
    oldest first (:func:`newest_columns`). Reproduces the full run on its newest session
    bit for bit: the same tree per window, and the slow sum built from fast windows the
    same way (newest first).
    """
    rows = columns.shape[0]
    if _shares_fast_sums(fast, slow):
        multiple = slow // fast
        windows = columns[rows - slow :].reshape(multiple, fast, -1).transpose(1, 0, 2)
        parts = tree_sum(windows)
        fast_sums = parts[-1].copy()
        slow_sums = parts[-1] + parts[-2]
        for part in range(3, multiple + 1):
            slow_sums += parts[-part]
        return fast_sums, slow_sums
    return tree_sum(columns[rows - fast :]), tree_sum(columns[rows - slow :])


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
    start = first + slow - 1
    if kind == "sma":
        fast_ma, slow_ma, sign, regime, cross = _sma_signals(closes, first, fast, slow)
    elif kind == "ema":
        fast_ma, slow_ma = ema(closes, fast), ema(closes, slow)
        sign = signs(fast_ma, slow_ma)
        regime = regimes(sign, start)
        cross = crosses(regime)
    else:
        raise ValueError(f"kind must be 'sma' or 'ema', got {kind!r}")
    return Signals(
        fast=fast,
        slow=slow,
        kind=kind,
        fast_ma=fast_ma,
        slow_ma=slow_ma,
        sign=sign,
        regime=regime,
        cross=cross,
        start=start,
    )
