"""Breadth: per session, how many of a universe's symbols are above their averages, in
a golden regime, crossing, or at a 252-session high or low.

Pure array code. A :class:`ClosePanel`'s rows are each symbol's own sessions,
right-aligned, not aligned by date; :class:`Calendar` maps every (row, column) to an
index into the union of sessions. A row whose sessions are consecutive sessions of that
union (the usual case) is just shifted: rows are summed down their columns in groups
that share a shift, so the work is a few whole-matrix passes whatever the number of
symbols. Rows with a gap fall back to ``np.bincount`` over their own cells.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from app.market.repository import ClosePanel

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

HIGH_LOW_SESSIONS = 252


@dataclass(frozen=True)
class Calendar:
    """Where each panel cell falls in the union of the panel's sessions.

    - ``sessions``: ``(union,)`` every session any row has, ascending.
    - ``last``: ``(symbols,)`` union index of each row's newest session (-1: no closes).
    - ``lengths``: ``(symbols,)`` closes per row.
    - ``contiguous``: ``(symbols,)`` whether the row's sessions are consecutive union
      sessions (then cell ``(r, c)`` is union session ``c + last[r] - (width - 1)``).
    """

    sessions: npt.NDArray[np.datetime64]
    last: IntArray
    lengths: IntArray
    contiguous: BoolArray
    _days: IntArray
    _first_day: int
    _lookup: IntArray

    def cells(self, panel: ClosePanel, rows: IntArray) -> tuple[IntArray, IntArray, IntArray]:
        """(row positions in ``rows``, columns, union indices) of the closes of ``rows``."""
        days = panel.sessions[rows].view(np.int64)
        position, column = np.nonzero(~np.isnat(panel.sessions[rows]))
        union = self._lookup[days[position, column] - self._first_day]
        return position.astype(np.int64), column.astype(np.int64), union


def calendar(panel: ClosePanel) -> Calendar:
    """The union of ``panel``'s sessions and how each row sits in it."""
    sessions = panel.sessions
    n_rows, width = sessions.shape
    valid = ~np.isnat(sessions)
    lengths = np.count_nonzero(valid, axis=1).astype(np.int64)
    days = sessions.view(np.int64)
    has = lengths > 0
    if width == 0 or not has.any():
        return Calendar(
            np.empty(0, dtype="datetime64[D]"),
            np.full(n_rows, -1, dtype=np.int64),
            lengths,
            np.zeros(n_rows, dtype=bool),
            np.empty(0, dtype=np.int64),
            0,
            np.empty(0, dtype=np.int64),
        )
    first_days = days[np.flatnonzero(has), width - lengths[has]]
    low = int(first_days.min())
    high = int(days[has, width - 1].max())
    present = np.zeros(high - low + 1, dtype=bool)
    present[days[valid] - low] = True
    lookup = np.cumsum(present, dtype=np.int64) - 1
    union_days = np.flatnonzero(present).astype(np.int64) + low
    last = np.full(n_rows, -1, dtype=np.int64)
    last[has] = lookup[days[has, width - 1] - low]
    first = np.full(n_rows, -1, dtype=np.int64)
    first[has] = lookup[first_days - low]
    contiguous = has & (last - first == lengths - 1)
    return Calendar(
        union_days.astype("datetime64[D]"),
        last,
        lengths,
        contiguous,
        union_days,
        low,
        lookup,
    )


def rolling_extreme(values: FloatArray, window: int, *, highest: bool) -> FloatArray:
    """Max (or min) of each row's last ``window`` values at every column (van Herk /
    Gil-Werman: prefix and suffix extremes of blocks of ``window``, three passes).

    NaN in the first ``window - 1`` columns; NaN inputs count as -inf (+inf for min).
    """
    n_rows, width = values.shape
    result = np.full(values.shape, np.nan)
    if width < window:
        return result
    pick = np.maximum if highest else np.minimum
    fill = -np.inf if highest else np.inf
    pad = (-width) % window
    padded = np.full((n_rows, width + pad), fill)
    np.copyto(padded[:, pad:], values)
    padded[np.isnan(padded)] = fill
    # Blocks as (block, offset, row): each accumulate step is one contiguous vector
    # operation over all rows.
    blocks = np.ascontiguousarray(padded.T).reshape(-1, window, n_rows)
    prefix = pick.accumulate(blocks, axis=1).reshape(-1, n_rows)
    suffix = np.ascontiguousarray(blocks[:, ::-1])
    pick.accumulate(suffix, axis=1, out=suffix)
    suffix = suffix[:, ::-1].reshape(-1, n_rows)
    # The window ending at padded column t starts at t - window + 1.
    total = width + pad
    extreme = pick(suffix[pad : total - window + 1], prefix[pad + window - 1 : total])
    result[:, window - 1 :] = extreme.T
    return result


def highs_and_lows(closes: FloatArray) -> tuple[BoolArray, BoolArray]:
    """Cells whose close is the highest / lowest of the :data:`HIGH_LOW_SESSIONS`
    sessions ending there, among rows with that much history by then."""
    window = HIGH_LOW_SESSIONS
    highs = np.zeros(closes.shape, dtype=bool)
    lows = np.zeros(closes.shape, dtype=bool)
    if closes.shape[1] < window:
        return highs, lows
    with np.errstate(invalid="ignore"):
        np.greater_equal(closes, rolling_extreme(closes, window, highest=True), out=highs)
        np.less_equal(closes, rolling_extreme(closes, window, highest=False), out=lows)
    first = closes.shape[1] - np.count_nonzero(~np.isnan(closes), axis=1)
    too_short = np.arange(closes.shape[1])[None, :] < (first + window - 1)[:, None]
    highs &= ~too_short
    lows &= ~too_short
    return highs, lows


@dataclass(frozen=True)
class Series:
    """Breadth per union session (all ``(union,)``); shares are NaN without a
    denominator."""

    sessions: npt.NDArray[np.datetime64]
    members: IntArray
    above_fast_pct: FloatArray
    above_slow_pct: FloatArray
    golden_regime_pct: FloatArray
    golden_crosses: IntArray
    death_crosses: IntArray
    new_highs: IntArray
    new_lows: IntArray


def _column_sums(
    panel: ClosePanel, cal: Calendar, rows: IntArray, masks: list[BoolArray]
) -> IntArray:
    """``(len(masks), union)``: per union session, the True cells of each mask (masks
    are ``(len(rows), width)``)."""
    width = panel.closes.shape[1]
    n_union = cal.sessions.size
    sums = np.zeros((len(masks), n_union), dtype=np.int64)
    contiguous = cal.contiguous[rows]
    shifts = cal.last[rows] - (width - 1)
    groups = np.unique(shifts[contiguous])
    for shift in groups.tolist():
        members = np.flatnonzero(contiguous & (shifts == shift))
        begin = max(0, -shift)
        whole = members.size == rows.size
        for k, mask in enumerate(masks):
            block = mask if whole else mask[members]
            # Bools summed as int8 into int32: several times faster than count_nonzero.
            sums[k, begin + shift : width + shift] += np.add.reduce(
                block[:, begin:].view(np.int8), axis=0, dtype=np.int32
            )
    gapped = np.flatnonzero(~contiguous & (cal.last[rows] >= 0))
    if gapped.size:
        position, column, union = cal.cells(panel, rows[gapped])
        for k, mask in enumerate(masks):
            hit = mask[gapped[position], column]
            sums[k] += np.bincount(union[hit], minlength=n_union)
    return sums


def _share(part: IntArray, whole: IntArray) -> FloatArray:
    with np.errstate(divide="ignore", invalid="ignore"):
        share: FloatArray = np.where(whole > 0, part * 100.0 / whole, np.nan)
    return share


@dataclass(frozen=True)
class Cells:
    """What breadth reads of the chosen rows, each ``(rows, width)`` like the panel:
    closes, the rule's averages, regime and cross (:class:`kernel.Signals`), and
    :func:`highs_and_lows`."""

    closes: FloatArray
    fast_ma: FloatArray
    slow_ma: FloatArray
    regime: npt.NDArray[np.int8]
    cross: npt.NDArray[np.int8]
    highs: BoolArray
    lows: BoolArray


def breadth(panel: ClosePanel, cal: Calendar, rows: IntArray, cells: Cells) -> Series:
    """Breadth of panel ``rows`` per union session where one of them has a close."""
    with np.errstate(invalid="ignore"):
        masks = [
            ~np.isnan(cells.closes),
            ~np.isnan(cells.fast_ma),
            cells.closes > cells.fast_ma,
            ~np.isnan(cells.slow_ma),
            cells.closes > cells.slow_ma,
            cells.regime != 0,
            cells.regime == 1,
            cells.cross == 1,
            cells.cross == -1,
            cells.highs,
            cells.lows,
        ]
    sums = _column_sums(panel, cal, rows, masks)
    members, fast_known, above_fast, slow_known, above_slow, regimes, golden = sums[:7]
    keep = members > 0
    return Series(
        sessions=cal.sessions[keep],
        members=members[keep],
        above_fast_pct=_share(above_fast, fast_known)[keep],
        above_slow_pct=_share(above_slow, slow_known)[keep],
        golden_regime_pct=_share(golden, regimes)[keep],
        golden_crosses=sums[7][keep],
        death_crosses=sums[8][keep],
        new_highs=sums[9][keep],
        new_lows=sums[10][keep],
    )
