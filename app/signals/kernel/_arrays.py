"""Array types, input checks and the left-padding bookkeeping shared by the kernel.

Every public kernel function takes ``closes`` of shape ``(symbols, sessions)``: each row
holds one symbol's consecutive session closes, right-aligned, with NaN only as *left*
padding for histories shorter than the matrix.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
Int8Array = npt.NDArray[np.int8]
BoolArray = npt.NDArray[np.bool_]
MAKind = Literal["sma", "ema"]

TIE_TOLERANCE = 1e-9
"""``|fast - slow| <= TIE_TOLERANCE * slow`` is a tie (DESIGN §3)."""


def as_closes(closes: npt.ArrayLike) -> FloatArray:
    """Return ``closes`` as a 2-D float64 array (no copy when it already is one)."""
    array = np.asarray(closes, dtype=np.float64)
    if array.ndim != 2:
        raise ValueError(f"closes must be 2-D (symbols, sessions), got shape {array.shape}")
    return array


def check_windows(fast: int, slow: int) -> None:
    """Raise ``ValueError`` unless ``1 <= fast < slow``."""
    if not (1 <= fast < slow):
        raise ValueError(f"windows must satisfy 1 <= fast < slow, got fast={fast} slow={slow}")


def first_valid(closes: FloatArray) -> IntArray:
    """Index of each row's first non-NaN close, ``sessions`` for an all-NaN row.

    Relies on the padding contract (NaN only on the left), so a binary search over the
    sessions, run on all rows at once, finds it in ``log2(sessions)`` gathers instead of
    a full pass over the matrix.
    """
    n_symbols, n_sessions = closes.shape
    rows = np.arange(n_symbols)
    low = np.zeros(n_symbols, dtype=np.int64)
    high = np.full(n_symbols, n_sessions, dtype=np.int64)
    while True:
        open_rows = low < high
        if not open_rows.any():
            return low
        mid = (low + high) // 2
        probe = np.minimum(mid, n_sessions - 1)
        padded = np.isnan(closes[rows, probe]) & open_rows
        low = np.where(padded, mid + 1, low)
        high = np.where(open_rows & ~padded, mid, high)


def zero_padded_rows(closes: FloatArray, first: IntArray) -> tuple[IntArray, FloatArray]:
    """The rows that carry left padding, and a copy of them with the padding set to 0.

    Also checks the padding contract on those rows: a NaN after the first valid close
    raises ``ValueError``.
    """
    padded_rows = np.flatnonzero(first > 0)
    block = closes[padded_rows]
    nan = np.isnan(block)
    padding = np.arange(closes.shape[1])[None, :] < first[padded_rows][:, None]
    if not np.array_equal(nan, padding):
        raise ValueError("closes may contain NaN only as left padding")
    block[padding] = 0.0
    return padded_rows, block


def warmup_to_nan(values: FloatArray, first: IntArray, window: int) -> None:
    """Set ``values[i, t] = NaN`` in place for ``t < first[i] + window - 1``."""
    n_sessions = values.shape[1]
    defined_from = np.minimum(first + window - 1, n_sessions)
    width = int(defined_from.max(initial=0))
    if width == 0:
        return
    undefined = np.arange(width)[None, :] < defined_from[:, None]
    np.copyto(values[:, :width], np.nan, where=undefined)
