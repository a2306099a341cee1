"""Peaks and troughs (zigzag), drawdown and forward returns (DESIGN §3)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.signals.kernel._arrays import (
    FloatArray,
    Int8Array,
    IntArray,
    as_closes,
    first_valid,
)
from app.signals.kernel.averages import chunk_rows

PEAK = 1
TROUGH = -1


@dataclass(frozen=True)
class Drawdown:
    """Drawdown of each row against its running peak.

    - ``drawdown``: ``(symbols, sessions)`` float64, ``c[t] / max(c[first..t]) - 1``
      (NaN in the left padding).
    - ``peak``: ``(symbols, sessions)`` float64, the running maximum close.
    - ``peak_index``: ``(symbols,)`` int64, the session of the running peak as of the
      newest session (the earliest of equal maxima; -1 for an all-NaN row).
    """

    drawdown: FloatArray
    peak: FloatArray
    peak_index: IntArray


def drawdown(closes: FloatArray) -> Drawdown:
    """Drawdown, running peak and the newest peak's session for every row.

    Runs over row chunks: the running maximum is written straight into the returned
    ``peak`` and the chunk is still in cache for the ratio and the peak search.
    """
    closes = as_closes(closes)
    n_symbols, n_sessions = closes.shape
    peak = np.empty(closes.shape)
    values = np.empty(closes.shape)
    index = np.full(n_symbols, -1, dtype=np.int64)
    if n_sessions == 0:
        return Drawdown(values, peak, index)
    rows = chunk_rows(n_sessions)
    at_peak = np.empty((rows, n_sessions), dtype=bool)
    for begin in range(0, n_symbols, rows):
        end = min(begin + rows, n_symbols)
        block = closes[begin:end]
        block_peak = np.fmax.accumulate(block, axis=1, out=peak[begin:end])
        block_values = np.divide(block, block_peak, out=values[begin:end])
        block_values -= 1.0
        newest_peak = block_peak[:, -1]
        # The earliest maximum: argmax, unless a NaN (padding) is where it points.
        found = np.argmax(block, axis=1)
        if not np.array_equal(block[np.arange(end - begin), found], newest_peak):
            matches = np.equal(block, newest_peak[:, None], out=at_peak[: end - begin])
            found = np.argmax(matches, axis=1)
        index[begin:end] = np.where(np.isnan(newest_peak), -1, found)
    return Drawdown(values, peak, index)


@dataclass(frozen=True)
class ZigzagState:
    """Per-symbol zigzag state after the newest session (all ``(symbols,)``).

    ``phase``: +1 rising (tracking the high, awaiting a peak), -1 falling (tracking the
    low, awaiting a trough), 0 before the first confirmation. ``extreme`` /
    ``extreme_index``: the tracked high (phase +1) or low (phase -1). ``high``/``low``
    and their indices: both extremes tracked from the first close while ``phase == 0``
    (NaN / -1 when the row has no close yet).
    """

    phase: Int8Array
    extreme: FloatArray
    extreme_index: IntArray
    high: FloatArray
    high_index: IntArray
    low: FloatArray
    low_index: IntArray


@dataclass(frozen=True)
class Turns:
    """Confirmed peaks and troughs of all rows as flat records, sorted by (symbol, session).

    - ``symbol``: row index; ``session``: session of the extreme close;
      ``confirmed``: session of the first close past the threshold.
    - ``kind``: int8, +1 peak, -1 trough.
    - ``close``: the extreme close.
    - ``change_pct``: for a trough, its depth below the prior peak's close; for a peak,
      its rise above the prior trough's close; NaN for a row's first turn.
    - ``state``: where each row's zigzag stands after the newest session.
    """

    symbol: IntArray
    session: IntArray
    confirmed: IntArray
    kind: Int8Array
    close: FloatArray
    change_pct: FloatArray
    state: ZigzagState


def _first_confirmations(
    closes: FloatArray, first: IntArray, decline: float, rebound: float
) -> tuple[IntArray, Int8Array, IntArray, ZigzagState]:
    """First confirmed turn of each row (session, kind, extreme session), else -1.

    Before the first confirmation both extremes are tracked from the first close; this
    looks at growing windows from each row's first close, for all unresolved rows at
    once, until a threshold is met or the row ends. Rows never resolved come back as an
    undetermined state.
    """
    n_symbols, n_sessions = closes.shape
    confirm_at = np.full(n_symbols, -1, dtype=np.int64)
    kind = np.zeros(n_symbols, dtype=np.int8)
    extreme_at = np.full(n_symbols, -1, dtype=np.int64)
    high = np.full(n_symbols, np.nan)
    low = np.full(n_symbols, np.nan)
    high_index = np.full(n_symbols, -1, dtype=np.int64)
    low_index = np.full(n_symbols, -1, dtype=np.int64)
    pending = np.flatnonzero(first < n_sessions)
    length = 256
    while pending.size:
        offsets = np.arange(length)
        sessions = first[pending][:, None] + offsets
        inside = sessions < n_sessions
        window = np.where(
            inside, closes[pending[:, None], np.minimum(sessions, n_sessions - 1)], np.nan
        )
        running_high = np.fmax.accumulate(window, axis=1)
        running_low = np.fmin.accumulate(window, axis=1)
        peak_hit = window <= running_high * (1.0 - decline)
        trough_hit = window >= running_low * (1.0 + rebound)
        hit = peak_hit | trough_hit
        found = hit.any(axis=1)
        at = np.argmax(hit, axis=1)
        rows = np.arange(pending.size)
        is_peak = peak_hit[rows, at]
        level = np.where(is_peak, running_high[rows, at], running_low[rows, at])
        extreme = first[pending] + np.argmax(window == level[:, None], axis=1)
        done = pending[found]
        confirm_at[done] = first[done] + at[found]
        kind[done] = np.where(is_peak[found], PEAK, TROUGH)
        extreme_at[done] = extreme[found]
        exhausted = ~found & ~inside[:, -1]
        ended = pending[exhausted]
        high[ended] = running_high[exhausted, -1]
        low[ended] = running_low[exhausted, -1]
        high_index[ended] = first[ended] + np.argmax(
            window[exhausted] == high[ended][:, None], axis=1
        )
        low_index[ended] = first[ended] + np.argmax(
            window[exhausted] == low[ended][:, None], axis=1
        )
        pending = pending[~found & ~exhausted]
        length *= 4
    state = ZigzagState(
        phase=np.zeros(n_symbols, dtype=np.int8),
        extreme=np.full(n_symbols, np.nan),
        extreme_index=np.full(n_symbols, -1, dtype=np.int64),
        high=high,
        high_index=high_index,
        low=low,
        low_index=low_index,
    )
    return confirm_at, kind, extreme_at, state


def zigzag(closes: FloatArray, decline: float = 0.20, rebound: float = 0.20) -> Turns:
    """Confirmed peaks and troughs of every row (DESIGN §3).

    While rising, track the highest close; a peak is confirmed on the first session whose
    close is ``<= peak * (1 - decline)``. While falling, track the lowest close; a trough
    is confirmed on the first session whose close is ``>= low * (1 + rebound)``. Before
    the first confirmation both are tracked from the row's first close and whichever
    threshold is met first sets the phase. Equal extremes keep the earliest session.

    After the first turn the walk is sequential, so it loops over sessions on a
    C-contiguous ``(sessions, symbols)`` copy, each step a handful of vector operations
    over all symbols. Signed state (``+close`` while rising, ``-close`` while falling)
    makes both phases one comparison: a new extreme is ``x > E``, a confirmation
    ``x <= E * factor``.
    """
    closes = as_closes(closes)
    n_symbols, n_sessions = closes.shape
    first = first_valid(closes)
    confirm_at, first_kind, first_extreme, undetermined = _first_confirmations(
        closes, first, decline, rebound
    )
    started = np.flatnonzero(confirm_at >= 0)
    records_symbol = [started]
    records_session = [first_extreme[started]]
    records_confirmed = [confirm_at[started]]
    records_kind = [first_kind[started]]

    falling_factor, rising_factor = 1.0 + rebound, 1.0 - decline
    direction = np.zeros(n_symbols)
    signed_extreme = np.full(n_symbols, np.nan)
    extreme_index = np.full(n_symbols, -1, dtype=np.int64)
    factor = np.ones(n_symbols)
    order = started[np.argsort(confirm_at[started], kind="stable")]
    activation = confirm_at[order]
    cursor = 0
    begin = int(activation[0]) if order.size else n_sessions
    by_session = np.ascontiguousarray(closes[:, begin:].T) if begin < n_sessions else None
    signed = np.empty(n_symbols)
    threshold = np.empty(n_symbols)
    new_extreme = np.empty(n_symbols, dtype=bool)
    confirmed = np.empty(n_symbols, dtype=bool)
    for session in range(begin, n_sessions):
        assert by_session is not None
        np.multiply(by_session[session - begin], direction, out=signed)
        np.greater(signed, signed_extreme, out=new_extreme)
        np.copyto(signed_extreme, signed, where=new_extreme)
        np.copyto(extreme_index, session, where=new_extreme)
        np.multiply(signed_extreme, factor, out=threshold)
        np.less_equal(signed, threshold, out=confirmed)
        if confirmed.any():
            rows = np.flatnonzero(confirmed)
            turn = direction[rows]
            records_symbol.append(rows)
            records_session.append(extreme_index[rows])
            records_confirmed.append(np.full(rows.size, session, dtype=np.int64))
            records_kind.append(turn.astype(np.int8))
            direction[rows] = -turn
            signed_extreme[rows] = -signed[rows]
            extreme_index[rows] = session
            factor[rows] = np.where(turn > 0, falling_factor, rising_factor)
        end = cursor
        while end < order.size and activation[end] == session:
            end += 1
        if end > cursor:
            rows = order[cursor:end]
            new_direction = -first_kind[rows].astype(np.float64)
            direction[rows] = new_direction
            signed_extreme[rows] = new_direction * by_session[session - begin, rows]
            extreme_index[rows] = session
            factor[rows] = np.where(new_direction > 0, rising_factor, falling_factor)
            cursor = end

    symbol = np.concatenate(records_symbol).astype(np.int64)
    session_index = np.concatenate(records_session).astype(np.int64)
    order_out = np.lexsort((session_index, symbol))
    symbol, session_index = symbol[order_out], session_index[order_out]
    kind = np.concatenate(records_kind).astype(np.int8)[order_out]
    close = closes[symbol, session_index]
    change = np.full(close.shape, np.nan)
    same_symbol = symbol[1:] == symbol[:-1]
    change[1:][same_symbol] = (close[1:][same_symbol] / close[:-1][same_symbol] - 1.0) * 100.0
    phase = direction.astype(np.int8)
    state = ZigzagState(
        phase=phase,
        extreme=np.where(phase != 0, signed_extreme * direction, np.nan),
        extreme_index=np.where(phase != 0, extreme_index, -1),
        high=np.where(phase == 0, undetermined.high, np.nan),
        high_index=np.where(phase == 0, undetermined.high_index, -1),
        low=np.where(phase == 0, undetermined.low, np.nan),
        low_index=np.where(phase == 0, undetermined.low_index, -1),
    )
    return Turns(
        symbol=symbol,
        session=session_index,
        confirmed=np.concatenate(records_confirmed).astype(np.int64)[order_out],
        kind=kind,
        close=close,
        change_pct=change,
        state=state,
    )


def zigzag_step(
    state: ZigzagState, close: FloatArray, session: int, decline: float, rebound: float
) -> tuple[ZigzagState, Int8Array, IntArray]:
    """Advance the zigzag by one session for all symbols (the daily path).

    ``close``: ``(symbols,)``, NaN for a symbol without a close yet. Returns the new
    state, the kind of turn confirmed on this session (+1 peak, -1 trough, 0 none) and
    the session of its extreme (-1 none). Gives exactly what :func:`zigzag` gives on the
    same data.
    """
    phase = state.phase.copy()
    extreme, extreme_index = state.extreme.copy(), state.extreme_index.copy()
    high, high_index = state.high.copy(), state.high_index.copy()
    low, low_index = state.low.copy(), state.low_index.copy()
    has_close = ~np.isnan(close)
    fresh = has_close & (phase == 0) & np.isnan(high)
    high[fresh], low[fresh] = close[fresh], close[fresh]
    high_index[fresh], low_index[fresh] = session, session

    rising, falling, open_phase = phase > 0, phase < 0, (phase == 0) & has_close
    peak_now = (rising & (close <= extreme * (1.0 - decline))) | (
        open_phase & (close <= high * (1.0 - decline))
    )
    trough_now = (falling & (close >= extreme * (1.0 + rebound))) | (
        open_phase & (close >= low * (1.0 + rebound))
    )
    turn = (peak_now.astype(np.int8) - trough_now.astype(np.int8)).astype(np.int8)
    turn_extreme = np.where(
        peak_now,
        np.where(rising, extreme_index, high_index),
        np.where(trough_now, np.where(falling, extreme_index, low_index), -1),
    ).astype(np.int64)

    higher = rising & (close > extreme)
    lower = falling & (close < extreme)
    moved = higher | lower
    extreme[moved], extreme_index[moved] = close[moved], session
    open_high = open_phase & (close > high)
    open_low = open_phase & (close < low)
    high[open_high], high_index[open_high] = close[open_high], session
    low[open_low], low_index[open_low] = close[open_low], session

    turned = turn != 0
    phase[turned] = -turn[turned]
    extreme[turned], extreme_index[turned] = close[turned], session
    high[turned], low[turned] = np.nan, np.nan
    high_index[turned], low_index[turned] = -1, -1
    new_state = ZigzagState(phase, extreme, extreme_index, high, high_index, low, low_index)
    return new_state, turn, turn_extreme


def forward_returns(
    closes: FloatArray,
    rows: IntArray,
    sessions: IntArray,
    horizons: tuple[int, ...] = (21, 63, 126, 252),
) -> FloatArray:
    """``c[i+k] / c[i] - 1`` for each (row, session) pair and each horizon ``k``.

    ``rows``, ``sessions``: ``(events,)`` integer arrays. Returns ``(events, horizons)``;
    NaN where ``i + k`` is past the data.
    """
    closes = as_closes(closes)
    n_sessions = closes.shape[1]
    ahead = np.asarray(sessions)[:, None] + np.asarray(horizons)[None, :]
    inside = ahead < n_sessions
    later = closes[np.asarray(rows)[:, None], np.minimum(ahead, n_sessions - 1)]
    result: FloatArray = np.where(inside, later / closes[rows, sessions][:, None] - 1.0, np.nan)
    return result
