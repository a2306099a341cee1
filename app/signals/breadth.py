"""Breadth: per session, how many of a universe's symbols are above their averages, in
a golden regime, crossing, or at a 252-session high or low.

Pure array code, a block of rows at a time (:data:`ROW_BLOCK`): each pass reads a few
megabytes that stay in cache, and no temporary is ever the size of the panel (the
whole-panel version held ~550 MB of them at 5,000 × 2,520). A :class:`ClosePanel`'s
rows are each symbol's own sessions, right-aligned, not aligned by date;
:class:`Calendar` maps every (row, column) to an index into the union of sessions. A
row whose sessions are consecutive sessions of that union (the usual case) is just
shifted: rows that share a shift are summed down their columns, so the work is a few
passes over the cells whatever the number of symbols. Rows with a gap are counted with
``np.bincount`` over their own cells.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from app.market.repository import ClosePanel
from app.signals import kernel

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

HIGH_LOW_SESSIONS = 252

# Rows handled at once: 128 rows × 2,520 sessions of float64 is ~2.5 MB.
ROW_BLOCK = 128


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


def _blocks(n_rows: int) -> Iterator[slice]:
    for begin in range(0, n_rows, ROW_BLOCK):
        yield slice(begin, min(begin + ROW_BLOCK, n_rows))


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
    for block in _blocks(n_rows):
        present[days[block][valid[block]] - low] = True
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
    """Max (or min) of each row's last ``window`` values at every column, NaN skipped
    (NaN where a window has no value, and in the first ``window - 1`` columns).

    Doubling, as a sparse table: after k passes each cell holds the extreme of the
    ``2**k`` values ending there; two overlapping spans cover the window. Each pass is
    one elementwise ``fmax`` (``fmin``) of shifted slices, ~log2(window) + 1 passes in
    all, exact for any floats.
    """
    width = values.shape[1]
    result = np.full(values.shape, np.nan)
    if width < window:
        return result
    pick = np.fmax if highest else np.fmin
    current = np.array(values, dtype=np.float64)
    spare = np.empty_like(current)
    span = 1
    while span * 2 <= window:
        spare[:, :span] = current[:, :span]
        pick(current[:, span:], current[:, :-span], out=spare[:, span:])
        current, spare = spare, current
        span *= 2
    # current[t]: the extreme of (t - span, t]; the rest of the window ends at t - rest.
    rest = window - span
    ends = slice(window - 1, width)
    pick(current[:, ends], current[:, window - 1 - rest : width - rest], out=result[:, ends])
    return result


def highs_and_lows(closes: FloatArray) -> tuple[BoolArray, BoolArray]:
    """Cells whose close is the highest / lowest of the :data:`HIGH_LOW_SESSIONS`
    sessions ending there (ties count), among rows with that much history by then.

    Exact (float64 compared with one of its own values), a block of rows at a time.
    """
    window = HIGH_LOW_SESSIONS
    n_rows, width = closes.shape
    highs = np.zeros(closes.shape, dtype=bool)
    lows = np.zeros(closes.shape, dtype=bool)
    if width < window:
        return highs, lows
    # A row's first full window ends at column first close + window - 1.
    ready_from = width - np.count_nonzero(~np.isnan(closes), axis=1) + window - 1
    columns = np.arange(width)
    for block in _blocks(n_rows):
        rows = closes[block]
        ready = columns[None, :] >= ready_from[block, None]
        with np.errstate(invalid="ignore"):
            np.greater_equal(rows, rolling_extreme(rows, window, highest=True), out=highs[block])
            np.less_equal(rows, rolling_extreme(rows, window, highest=False), out=lows[block])
        highs[block] &= ready
        lows[block] &= ready
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


@dataclass(frozen=True)
class Cells:
    """What breadth reads: the panel's closes and :func:`highs_and_lows` (every panel
    row), and the rule's averages, regime and cross (:class:`kernel.Signals`): every
    panel row too, or only the chosen rows in their order (``rule_picked``: a rule
    detected on those rows alone). Nothing is copied per request but a block of rows."""

    closes: FloatArray
    highs: BoolArray
    lows: BoolArray
    fast_ma: FloatArray
    slow_ma: FloatArray
    regime: npt.NDArray[np.int8]
    cross: npt.NDArray[np.int8]
    rule_picked: bool = False

    @classmethod
    def of(
        cls,
        closes: FloatArray,
        highs_and_lows: tuple[BoolArray, BoolArray],
        signals: kernel.Signals,
        *,
        rule_picked: bool = False,
    ) -> Cells:
        """The cells of ``closes``, their :func:`highs_and_lows` and a rule's signals."""
        highs, lows = highs_and_lows
        return cls(
            closes,
            highs,
            lows,
            signals.fast_ma,
            signals.slow_ma,
            signals.regime,
            signals.cross,
            rule_picked=rule_picked,
        )


# The counts :func:`_masks` gives, in order.
COUNTS = 11


def _masks(cells: Cells, rows: slice | IntArray, rule_rows: slice | IntArray) -> list[BoolArray]:
    """The cells of panel ``rows`` (``rule_rows`` in the rule's matrices) that count,
    one mask per count: members, fast average known, above it, slow average known,
    above it, in a regime, golden, golden cross, death cross, new high, new low."""
    closes = cells.closes[rows]
    fast_ma, slow_ma = cells.fast_ma[rule_rows], cells.slow_ma[rule_rows]
    regime, cross = cells.regime[rule_rows], cells.cross[rule_rows]
    # Comparisons with NaN are False (no warning): a missing average is never "above".
    # ``x == x``: not NaN, in one pass.
    return [
        closes == closes,
        fast_ma == fast_ma,
        closes > fast_ma,
        slow_ma == slow_ma,
        closes > slow_ma,
        regime != 0,
        regime == 1,
        cross == 1,
        cross == -1,
        cells.highs[rows],
        cells.lows[rows],
    ]


def _run(picked: IntArray) -> slice | IntArray:
    """``picked`` as a slice when it is a run of consecutive rows, so none is copied."""
    if picked.size and bool((np.diff(picked) == 1).all()):
        return slice(int(picked[0]), int(picked[-1]) + 1)
    return picked


def _block_masks(cells: Cells, rows: IntArray, positions: IntArray) -> list[BoolArray]:
    """:func:`_masks` of panel rows ``rows[positions]``."""
    panel_rows = _run(rows[positions])
    rule_rows = _run(positions) if cells.rule_picked else panel_rows
    return _masks(cells, panel_rows, rule_rows)


def _column_sums(panel: ClosePanel, cal: Calendar, rows: IntArray, cells: Cells) -> IntArray:
    """``(COUNTS, union)``: per union session, the cells of panel ``rows`` that count."""
    width = panel.closes.shape[1]
    n_union = cal.sessions.size
    sums = np.zeros((COUNTS, n_union), dtype=np.int64)
    contiguous = cal.contiguous[rows]
    shifts = cal.last[rows] - (width - 1)
    for shift in np.unique(shifts[contiguous]).tolist():
        members = np.flatnonzero(contiguous & (shifts == shift))
        begin = max(0, -shift)
        target = sums[:, begin + shift : width + shift]
        for start in range(0, members.size, ROW_BLOCK):
            block = members[start : start + ROW_BLOCK]
            for k, mask in enumerate(_block_masks(cells, rows, block)):
                # Bools summed as int8 into int16 (a block has fewer than 32,768 rows): several
                # times faster than count_nonzero.
                target[k] += np.add.reduce(mask[:, begin:].view(np.int8), axis=0, dtype=np.int16)
    gapped = np.flatnonzero(~contiguous & (cal.last[rows] >= 0))
    for start in range(0, gapped.size, ROW_BLOCK):
        block = gapped[start : start + ROW_BLOCK]
        position, column, union = cal.cells(panel, rows[block])
        flat = position * width + column
        for k, mask in enumerate(_block_masks(cells, rows, block)):
            sums[k] += np.bincount(union[mask.ravel()[flat]], minlength=n_union)
    return sums


def _share(part: IntArray, whole: IntArray) -> FloatArray:
    with np.errstate(divide="ignore", invalid="ignore"):
        share: FloatArray = np.where(whole > 0, part * 100.0 / whole, np.nan)
    return share


def breadth(panel: ClosePanel, cal: Calendar, rows: IntArray, cells: Cells) -> Series:
    """Breadth of panel ``rows`` (ascending, each once) per union session where one of
    them has a close."""
    sums = _column_sums(panel, cal, rows, cells)
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


def newest(series: Series) -> dict[str, Any] | None:
    """The newest session's breadth as a row of ``/v1/breadth`` (shares None without a
    denominator), or None when no member has a close."""
    if not series.sessions.size:
        return None

    def share(values: FloatArray) -> float | None:
        value = float(values[-1])
        return None if value != value else value

    return {
        "session": series.sessions[-1].astype(object),
        "members": int(series.members[-1]),
        "above_fast_pct": share(series.above_fast_pct),
        "above_slow_pct": share(series.above_slow_pct),
        "golden_regime_pct": share(series.golden_regime_pct),
        "golden_crosses": int(series.golden_crosses[-1]),
        "death_crosses": int(series.death_crosses[-1]),
        "new_highs": int(series.new_highs[-1]),
        "new_lows": int(series.new_lows[-1]),
    }
