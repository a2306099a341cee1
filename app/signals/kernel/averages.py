"""Moving averages over the (symbols, sessions) matrix.

Window sums are computed by a *sliding binary tree* (:class:`SlidingSums`): sums of
``2**j`` consecutive closes double up, ``s_2m[t] = s_m[t] + s_m[t-m]``, and the set bits
of the window are added together. Each window is summed on its own, with at most
``log2(window)`` rounding steps on any close: no running total, so no drift on long
histories (a global cumsum difference drifts with the running total and turns exact ties
into false crosses), and better accuracy than a left-to-right sum. The tree depends only
on the window's position relative to its last session, so a left-padded row gives exactly
the same numbers as the same row run alone, and the daily path reproduces the newest
session bit for bit with :func:`tree_sum` on the last closes.

Every pass is a contiguous vector operation over a row chunk that stays in cache (no
sequential cumulative sum, no matrix-sized temporaries).
"""

from __future__ import annotations

import numpy as np

from app.signals.kernel._arrays import (
    FloatArray,
    IntArray,
    as_closes,
    first_valid,
    warmup_to_nan,
)

CHUNK_ELEMENTS = 1 << 16
"""Closes per row chunk: the full-matrix passes work on row chunks of about this many
elements, so their temporaries are small reusable buffers that stay in cache instead of
fresh matrix-sized allocations."""


def chunk_rows(n_sessions: int) -> int:
    """Rows per chunk for a matrix of ``n_sessions`` columns."""
    return max(1, CHUNK_ELEMENTS // max(n_sessions, 1))


class SlidingSums:
    """Window sums of row chunks by a sliding binary tree, with buffers reused across chunks.

    ``sums(values)`` takes a ``(rows <= max_rows, n_sessions)`` chunk of finite closes
    (zeros before each row's start) and returns a view of its window sums, valid from
    column ``window - 1`` on (earlier columns are NaN) until the next call.

    Power-of-two sums double up, ``s_2m[t] = s_m[t] + s_m[t-m]``, one contiguous vector
    pass each, and the set bits of ``window`` are added lowest first:
    ``sum[t] = s_a[t] + s_b[t-a] + s_c[t-a-b] + ...``. Every window is summed on its own
    (no running total, hence no drift), by the same tree wherever it lies, so a padded
    row gives the numbers of the row alone and the daily path reproduces the newest
    session with :func:`tree_sum`.
    """

    def __init__(self, max_rows: int, n_sessions: int, window: int) -> None:
        self.window = window
        self._result = np.empty((max_rows, n_sessions))
        self._levels = (np.empty((max_rows, n_sessions)), np.empty((max_rows, n_sessions)))

    def sums(self, values: FloatArray) -> FloatArray:
        window = self.window
        n_rows, n_sessions = values.shape
        if not np.isfinite(np.add.reduce(values, axis=1)).all():
            raise ValueError("closes must be finite after each row's left padding")
        result = self._result[:n_rows]
        result[:, : window - 1] = np.nan
        if window > n_sessions:
            return result
        level = values
        size = 1
        covered = 0
        spare = 0
        while True:
            if window & size:
                if covered == 0:
                    if level is values:
                        np.copyto(result, values)
                    # else: the level was computed straight into ``result``.
                else:
                    low = covered + size - 1
                    result[:, low:] += level[:, low - covered : n_sessions - covered]
                covered += size
            if covered == window:
                return result
            # The next level: into ``result`` if it is the first set bit, else a spare.
            doubled = 2 * size
            if covered == 0 and window & doubled:
                target = result
            else:
                target = self._levels[spare][:n_rows]
                spare = 1 - spare
            low = doubled - 1
            if low < n_sessions:
                np.add(
                    level[:, low:], level[:, low - size : n_sessions - size], out=target[:, low:]
                )
            level = target
            size = doubled


def tree_sum(values: FloatArray) -> FloatArray:
    """Sum over the first axis of ``values`` ``(window, ...)``, oldest first, by the tree
    :class:`SlidingSums` uses for the window ending on the last element (bit for bit).

    One vector operation per tree level over all trailing indices (contiguous when
    ``values`` is a transposed tail of shape ``(window, symbols)``).
    """
    window = values.shape[0]
    total: FloatArray | None = None
    covered = 0
    size = 1
    while size <= window:
        if window & size:
            level = values[window - covered - size : window - covered]
            while level.shape[0] > 1:
                level = level[1::2] + level[0::2]
            part = level[0]
            total = part.copy() if total is None else total + part
            covered += size
        size *= 2
    if total is None:
        return np.zeros(values.shape[1:])
    return total


def newest_columns(tail: FloatArray, window: int) -> FloatArray:
    """The last ``window`` closes of every row as a C-contiguous ``(window, symbols)``
    array, oldest first: per-session vector operations over all symbols then run on
    contiguous rows.
    """
    columns: FloatArray = np.ascontiguousarray(tail[:, tail.shape[1] - window :].T)
    return columns


class FiniteChunks:
    """Row chunks of ``closes`` with the left padding replaced by zeros.

    Chunks without padded rows are returned as views; the others are copied into one
    reused buffer, after checking the padding contract on them (``ValueError`` on a NaN
    after a row's first valid close).
    """

    def __init__(self, closes: FloatArray, first: IntArray, max_rows: int) -> None:
        self.closes = closes
        self.first = first
        self._buffer = np.empty((max_rows, closes.shape[1]))
        self._sessions = np.arange(closes.shape[1])

    def chunk(self, begin: int, end: int) -> FloatArray:
        block = self.closes[begin:end]
        first = self.first[begin:end]
        if not (first > 0).any():
            return block
        copy = self._buffer[: end - begin]
        np.copyto(copy, block)
        padding = self._sessions[None, :] < first[:, None]
        if not np.array_equal(np.isnan(copy), padding):
            raise ValueError("closes may contain NaN only as left padding")
        copy[padding] = 0.0
        return copy


def raw_window_sums(closes: FloatArray, first: IntArray, window: int) -> FloatArray:
    """Window sums of every row, meaningful only from ``first + window - 1`` on.

    Computed chunk by chunk of rows (left padding summed as zeros), into one new matrix.
    """
    n_symbols, n_sessions = closes.shape
    sums = np.empty(closes.shape)
    if n_sessions == 0:
        return sums
    rows = chunk_rows(n_sessions)
    chunks = FiniteChunks(closes, first, rows)
    sliding = SlidingSums(rows, n_sessions, window)
    for begin in range(0, n_symbols, rows):
        end = min(begin + rows, n_symbols)
        np.copyto(sums[begin:end], sliding.sums(chunks.chunk(begin, end)))
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
