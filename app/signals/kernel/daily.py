"""The daily path: the newest session's signals from a short tail plus carried state.

A full run over the history builds a :class:`DailyState`; each new session then needs
only the last ``slow`` closes of every symbol (:func:`advance`), so its cost does not
grow with the history. It reproduces the full recompute on the newest session exactly:
the window sums of the newest session are the same summation trees in both paths,
and the EMA, drawdown and zigzag recursions are the same operations.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from app.signals.kernel._arrays import (
    FloatArray,
    Int8Array,
    IntArray,
    MAKind,
    as_closes,
    check_windows,
    first_valid,
)
from app.signals.kernel.averages import ema_step, newest_columns, tree_sum
from app.signals.kernel.crosses import detect, last_window_sums, signs
from app.signals.kernel.outlook import outlook
from app.signals.kernel.turns import ZigzagState, drawdown, zigzag, zigzag_step


@dataclass(frozen=True)
class DailyState:
    """What the daily path carries from one session to the next (arrays are ``(symbols,)``).

    ``sessions`` is the number of sessions seen (the next session's index). ``first``:
    each symbol's first session (``sessions`` if none yet). ``regime``: +1/-1/0 as in
    :class:`Signals`. ``last_cross`` / ``last_cross_kind``: session and kind of the
    latest cross (-1 / 0 if none). ``fast_ema``/``slow_ema``: today's EMAs (NaN for SMA
    rules or before the seed). ``peak``/``peak_index``: running maximum close and its
    earliest session.
    """

    fast: int
    slow: int
    kind: MAKind
    decline: float
    rebound: float
    sessions: int
    first: IntArray
    regime: Int8Array
    last_cross: IntArray
    last_cross_kind: Int8Array
    fast_ema: FloatArray
    slow_ema: FloatArray
    peak: FloatArray
    peak_index: IntArray
    zigzag: ZigzagState


@dataclass(frozen=True)
class Latest:
    """The newest session's signals of every symbol (arrays are ``(symbols,)``).

    Same encodings as the full-history results: ``sign``/``regime``/``cross`` int8,
    ``trigger_close`` NaN when undefined or not positive, ``flat_sessions_to_cross`` -1
    when none within ``slow`` sessions, ``turn`` +1 peak / -1 trough confirmed on this
    session (0 none) with ``turn_session`` its extreme (-1 none).
    """

    session: int
    close: FloatArray
    fast_ma: FloatArray
    slow_ma: FloatArray
    sign: Int8Array
    regime: Int8Array
    cross: Int8Array
    gap_pct: FloatArray
    trigger_close: FloatArray
    flat_sessions_to_cross: IntArray
    drawdown: FloatArray
    peak: FloatArray
    peak_index: IntArray
    turn: Int8Array
    turn_session: IntArray


def _last_cross(cross: Int8Array) -> tuple[IntArray, Int8Array]:
    """Session and kind of each row's latest cross (-1 / 0 when none)."""
    nonzero = cross != 0
    from_end = np.argmax(nonzero[:, ::-1], axis=1)
    found = nonzero.any(axis=1)
    session = np.where(found, cross.shape[1] - 1 - from_end, -1).astype(np.int64)
    kind = np.where(found, cross[np.arange(len(cross)), np.maximum(session, 0)], 0).astype(np.int8)
    return session, kind


def state_from_full(
    closes: FloatArray,
    fast: int = 50,
    slow: int = 200,
    kind: MAKind = "sma",
    decline: float = 0.20,
    rebound: float = 0.20,
) -> DailyState:
    """Run the full kernel over ``closes`` ``(symbols, sessions)`` and keep its end state."""
    closes = as_closes(closes)
    check_windows(fast, slow)
    signals = detect(closes, fast, slow, kind)
    last_cross, last_cross_kind = _last_cross(signals.cross)
    n_symbols, n_sessions = closes.shape
    no_ema = np.full(n_symbols, np.nan)
    newest = n_sessions - 1
    peaks = drawdown(closes)
    return DailyState(
        fast=fast,
        slow=slow,
        kind=kind,
        decline=decline,
        rebound=rebound,
        sessions=n_sessions,
        first=first_valid(closes),
        regime=signals.regime[:, newest].copy(),
        last_cross=last_cross,
        last_cross_kind=last_cross_kind,
        fast_ema=signals.fast_ma[:, newest].copy() if kind == "ema" else no_ema,
        slow_ema=signals.slow_ma[:, newest].copy() if kind == "ema" else no_ema.copy(),
        peak=peaks.peak[:, newest].copy(),
        peak_index=peaks.peak_index,
        zigzag=zigzag(closes, decline, rebound).state,
    )


def _averages(
    state: DailyState, columns: FloatArray, first: IntArray, session: int
) -> tuple[FloatArray, FloatArray]:
    """The newest fast and slow averages (NaN where undefined)."""
    history = session - first + 1
    if state.kind == "sma":
        fast_sums, slow_sums = last_window_sums(columns, state.fast, state.slow)
        return (
            np.where(history >= state.fast, fast_sums / state.fast, np.nan),
            np.where(history >= state.slow, slow_sums / state.slow, np.nan),
        )
    close = columns[-1]
    averages = []
    for window, previous in ((state.fast, state.fast_ema), (state.slow, state.slow_ema)):
        seed = tree_sum(columns[state.slow - window :]) / window
        step = ema_step(previous, close, 2.0 / (window + 1))
        averages.append(np.where(history == window, seed, step))
    return averages[0], averages[1]


def advance(state: DailyState, tail: FloatArray) -> tuple[DailyState, Latest]:
    """Signals of one new session from the last closes of every symbol.

    ``tail``: float64 ``(symbols, >= slow)``, the newest ``slow`` (or more) closes of
    each symbol, the new session last, NaN-padded on the left for shorter histories.
    Work is ``O(symbols * slow)`` whatever the history length. Returns the state for the
    next call and the new session's :class:`Latest`, equal to what a full recompute
    gives on that session.
    """
    tail = as_closes(tail)
    if tail.shape[1] < state.slow:
        raise ValueError(f"tail needs at least slow={state.slow} sessions, got {tail.shape[1]}")
    session = state.sessions
    close = tail[:, -1]
    # "No close yet" is ``first == sessions``: it moves on with every session.
    not_started = state.first >= session
    first = np.where(not_started, np.where(np.isnan(close), session + 1, session), state.first)
    columns = newest_columns(tail, state.slow)
    fast_ma, slow_ma = _averages(state, columns, first, session)
    sign = signs(fast_ma, slow_ma)
    regime = np.where(sign != 0, sign, state.regime).astype(np.int8)
    cross = np.where(sign * state.regime == -1, sign, 0).astype(np.int8)
    crossed = cross != 0
    trigger, flat = outlook(columns, regime, fast_ma, slow_ma, state.fast, state.slow, state.kind)
    peak = np.fmax(state.peak, close)
    peak_index = np.where(close > state.peak, session, state.peak_index)
    peak_index = np.where(np.isnan(state.peak) & ~np.isnan(close), session, peak_index)
    zigzag_state, turn, turn_session = zigzag_step(
        state.zigzag, close, session, state.decline, state.rebound
    )
    new_state = replace(
        state,
        sessions=session + 1,
        first=first,
        regime=regime,
        last_cross=np.where(crossed, session, state.last_cross),
        last_cross_kind=np.where(crossed, cross, state.last_cross_kind).astype(np.int8),
        fast_ema=fast_ma if state.kind == "ema" else state.fast_ema,
        slow_ema=slow_ma if state.kind == "ema" else state.slow_ema,
        peak=peak,
        peak_index=peak_index.astype(np.int64),
        zigzag=zigzag_state,
    )
    latest = Latest(
        session=session,
        close=close,
        fast_ma=fast_ma,
        slow_ma=slow_ma,
        sign=sign,
        regime=regime,
        cross=cross,
        gap_pct=(fast_ma / slow_ma - 1.0) * 100.0,
        trigger_close=trigger,
        flat_sessions_to_cross=flat,
        drawdown=close / peak - 1.0,
        peak=peak,
        peak_index=new_state.peak_index,
        turn=turn,
        turn_session=turn_session,
    )
    return new_state, latest
