"""Moving averages over the (symbols, sessions) matrix.

Window sums are computed with a *blocked* cumulative sum: the sessions are cut into
blocks of exactly ``window`` sessions, aligned on the newest session, and the cumulative
sum restarts in every block. A window then spans at most two blocks::

    sum(c[t-w+1..t]) = prefix[k, j] - prefix[k-1, j] + total[k-1]

so every partial sum stays within ``2 * window`` closes and the rounding error is
bounded by the window, not by the length of the history (a global cumsum difference
drifts with the running total and turns exact ties into false crosses). On the last
session of each block (including the newest session) the window *is* the block, so its
sum is the plain left-to-right sum of the window; the daily path reproduces it bit for
bit. Aligning blocks on the newest session also makes a left-padded row give exactly
the same numbers as the same row run alone.
"""

from __future__ import annotations

import numpy as np

from app.signals.kernel._arrays import (
    FloatArray,
    IntArray,
    as_closes,
    first_valid,
    warmup_to_nan,
    zero_padded_rows,
)


def _blocked_sums(values: FloatArray, window: int) -> FloatArray:
    """Window sums of finite ``values`` (zeros before each row's start), unmasked."""
    n_rows, n_sessions = values.shape
    pad = (-n_sessions) % window
    n_blocks = (n_sessions + pad) // window
    head = window - pad
    prefix = np.empty((n_rows, n_blocks * window))
    prefix[:, :pad] = 0.0
    np.cumsum(values[:, :head], axis=1, out=prefix[:, pad:window])
    blocks = prefix.reshape(n_rows, n_blocks, window)
    if n_blocks > 1:
        np.cumsum(values[:, head:].reshape(n_rows, n_blocks - 1, window), axis=2, out=blocks[:, 1:])
    if not np.isfinite(blocks[:, :, -1]).all():
        raise ValueError("closes must be finite after each row's left padding")
    sums = np.empty_like(prefix)
    out = sums.reshape(n_rows, n_blocks, window)
    out[:, 0] = blocks[:, 0]
    np.subtract(blocks[:, 1:], blocks[:, :-1], out=out[:, 1:])
    out[:, 1:] += blocks[:, :-1, -1:]
    out[:, :, -1] = blocks[:, :, -1]
    return sums[:, pad:]


def raw_window_sums(closes: FloatArray, first: IntArray, window: int) -> FloatArray:
    """Window sums of every row, meaningful only from ``first + window - 1`` on.

    Rows with left padding are summed from a zero-filled copy; when most rows are padded
    the whole matrix is copied once instead.
    """
    padded_rows, zeroed = zero_padded_rows(closes, first)
    if padded_rows.size * 2 > closes.shape[0]:
        full = closes.copy()
        full[padded_rows] = zeroed
        return _blocked_sums(full, window)
    if padded_rows.size == 0:
        return _blocked_sums(closes, window)
    unpadded = np.flatnonzero(first == 0)
    sums = np.empty(closes.shape)
    sums[unpadded] = _blocked_sums(closes[unpadded], window)
    sums[padded_rows] = _blocked_sums(zeroed, window)
    return sums


def window_sums(closes: FloatArray, window: int) -> FloatArray:
    """Sum of the last ``window`` closes at every session.

    Shape: ``(symbols, sessions)`` in and out. NaN where fewer than ``window`` valid
    closes exist (the left padding and the first ``window - 1`` sessions of each row).
    Raises ``ValueError`` on a NaN or infinity after a row's first valid close.
    """
    closes = as_closes(closes)
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    first = first_valid(closes)
    sums = raw_window_sums(closes, first, window)
    warmup_to_nan(sums, first, window)
    return sums


def sma(closes: FloatArray, window: int) -> FloatArray:
    """Simple moving average ``mean(c[t-window+1..t])``.

    Shape: ``(symbols, sessions)`` in and out. NaN until each row has ``window`` valid
    closes. Accurate to a few ulps of the window mean on histories of any length.
    """
    sums = window_sums(closes, window)
    sums /= window
    return sums


def ema_step(previous: FloatArray, close: FloatArray, alpha: float) -> FloatArray:
    """One EMA recursion step ``alpha*close + (1-alpha)*previous`` (shared with the daily path)."""
    result: FloatArray = np.multiply(close, alpha)
    result += np.multiply(previous, 1.0 - alpha)
    return result


def ema(closes: FloatArray, window: int) -> FloatArray:
    """Exponential moving average with ``alpha = 2 / (window + 1)``.

    Seeded at each row's session ``first + window - 1`` with the SMA of that session,
    then ``EMA[t] = alpha*c[t] + (1-alpha)*EMA[t-1]``. Shape ``(symbols, sessions)``
    in and out (the result is a transposed view: rows are not contiguous). NaN before
    the seed session.

    The recursion is inherently sequential in time, so it loops over sessions on a
    C-contiguous ``(sessions, symbols)`` copy: each step is one vector operation over
    all symbols on contiguous memory.
    """
    closes = as_closes(closes)
    n_symbols, n_sessions = closes.shape
    averages = sma(closes, window)
    first = first_valid(closes)
    seed_at = first + window - 1
    alpha = 2.0 / (window + 1)
    by_session = np.ascontiguousarray(closes.T)
    result = np.empty((n_sessions, n_symbols))
    seeded = np.flatnonzero(seed_at < n_sessions)
    order = seeded[np.argsort(seed_at[seeded], kind="stable")]
    seed_sessions = seed_at[order]
    cursor = 0
    previous = np.full(n_symbols, np.nan)
    scaled = np.empty(n_symbols)
    for session in range(n_sessions):
        current = result[session]
        np.multiply(by_session[session], alpha, out=scaled)
        np.multiply(previous, 1.0 - alpha, out=current)
        np.add(scaled, current, out=current)
        end = cursor
        while end < len(order) and seed_sessions[end] == session:
            end += 1
        if end > cursor:
            rows = order[cursor:end]
            current[rows] = averages[rows, session]
            cursor = end
        previous = current
    return result.T
