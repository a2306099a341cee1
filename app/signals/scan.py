"""The newest event of each type per symbol, from an :class:`Analysis`'s arrays.

Pure and vectorized: one pass over the kernel's matrices finds, for every row and every
event type, the column of its newest event (the last :func:`analysis.facts_of` fact of
that type). A scan is then a comparison of those columns with the window, and only the
matching rows are turned into records. Columns are panel columns: ``sessions_ago`` of
column ``c`` is ``width - 1 - c`` (rows are right-aligned).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import numpy.typing as npt

from app.signals import kernel
from app.signals.analysis import APPROACH_GAP_PCT, CROSS_TYPES, Analysis, num

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

# In the order facts_of sorts a session's facts (by type name): the newest fact of a
# row is its greatest (column, rank).
EVENT_TYPES = ("cross_approaching", "death_cross", "golden_cross", "peak", "trough")
_TURN_KINDS = {"peak": kernel.PEAK, "trough": kernel.TROUGH}


@dataclass(frozen=True)
class LatestEvents:
    """For each event type, ``column[type]``: ``(symbols,)`` panel column of each row's
    newest event of that type, -1 when it has none. For peaks and troughs the column is
    the confirmation session; ``turn_record[type]`` indexes the turn in
    ``analysis.turns`` (-1 when none)."""

    column: dict[str, IntArray]
    turn_record: dict[str, IntArray]

    def newest(self) -> tuple[IntArray, IntArray]:
        """Column and ``EVENT_TYPES`` index of each row's newest event of any type
        (-1, -1 when it has none); equal sessions go to the later type name."""
        keys = np.stack(
            [self.column[name] * len(EVENT_TYPES) + i for i, name in enumerate(EVENT_TYPES)]
        )
        best = keys.max(axis=0)
        none = best < 0
        column = np.where(none, -1, best // len(EVENT_TYPES))
        kind = np.where(none, -1, best % len(EVENT_TYPES))
        return column, kind


def _last_true(mask: BoolArray) -> IntArray:
    """Column of each row's last True, -1 for a row without one."""
    width = mask.shape[1]
    if width == 0:
        return np.full(mask.shape[0], -1, dtype=np.int64)
    from_end = np.argmax(mask[:, ::-1], axis=1)
    column = (width - 1 - from_end).astype(np.int64)
    found = mask[np.arange(mask.shape[0]), column]
    result: IntArray = np.where(found, column, -1)
    return result


def approach_columns(analysis: Analysis) -> tuple[IntArray, IntArray]:
    """Every ``cross_approaching`` as (row, column), in row-major order.

    :func:`analysis.approaching_indices` for all rows at once: within each death-regime
    run, the first session whose gap is no longer below -1% right after one that was.
    (After the run's first wide session the gap stays wide until that session, so it is
    the run's first wide-to-near step.)
    """
    s = analysis.signals
    death = s.regime == -1
    wide = s.gap_pct() < -APPROACH_GAP_PCT
    step = np.zeros(death.shape, dtype=bool)
    np.logical_and(death[:, 1:], death[:, :-1], out=step[:, 1:])
    step[:, 1:] &= wide[:, :-1]
    step[:, 1:] &= ~wide[:, 1:]
    steps = np.flatnonzero(step)
    if steps.size == 0:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty
    run_start = death.copy()
    run_start[:, 1:] &= ~death[:, :-1]
    starts = np.flatnonzero(run_start)
    # Each step's run: the last run start at or before it (same row: a step's run begins
    # at the latest in its own row's column 0).
    run = np.searchsorted(starts, steps, side="right") - 1
    first = np.ones(steps.size, dtype=bool)
    first[1:] = run[1:] != run[:-1]
    rows, columns = np.divmod(steps[first], death.shape[1])
    return rows.astype(np.int64), columns.astype(np.int64)


def latest_events(analysis: Analysis) -> LatestEvents:
    """The newest event of each type for every row of ``analysis``."""
    n_rows = analysis.panel.closes.shape[0]
    cross = analysis.signals.cross
    column: dict[str, IntArray] = {
        name: _last_true(cross == sign) for sign, name in CROSS_TYPES.items()
    }
    rows, columns = approach_columns(analysis)
    approaching = np.full(n_rows, -1, dtype=np.int64)
    approaching[rows] = columns  # row-major: the last assignment per row is its newest
    column["cross_approaching"] = approaching
    turns = analysis.turns
    records: dict[str, IntArray] = {}
    for name, kind in _TURN_KINDS.items():
        chosen = np.flatnonzero(turns.kind == kind)
        order = chosen[np.lexsort((turns.confirmed[chosen], turns.symbol[chosen]))]
        record = np.full(n_rows, -1, dtype=np.int64)
        record[turns.symbol[order]] = order  # sorted: the last per row is its newest
        records[name] = record
        column[name] = np.where(record >= 0, turns.confirmed[np.maximum(record, 0)], -1)
    return LatestEvents(column, records)


def _session(analysis: Analysis, row: int, column: int) -> date:
    return analysis.session_of(row, column)


def _triggers(analysis: Analysis, rows: IntArray, columns: IntArray) -> list[float | None]:
    """Trigger close as of each (row, column), as :func:`analysis.facts_of` gives it: for
    SMAs from the ``slow`` closes ending there, one matched row at a time (the kernel's
    sums over a single row, bit for bit); for EMAs from that session's averages."""
    rule = analysis.rule
    closes = analysis.panel.closes
    if rule.kind == "sma":
        return [
            num(
                kernel.trigger_close_sma(
                    closes[r : r + 1, c - rule.slow + 1 : c + 1], rule.fast, rule.slow
                )[0]
            )
            for r, c in zip(rows.tolist(), columns.tolist(), strict=True)
        ]
    s = analysis.signals
    values = kernel.trigger_close_ema(
        s.fast_ma[rows, columns], s.slow_ma[rows, columns], rule.fast, rule.slow
    )
    return [num(v) for v in values]


def records(
    analysis: Analysis, latest: LatestEvents, event: str, rows: IntArray, within: int
) -> list[dict[str, Any]]:
    """Rows (of ``rows``, in that order) whose newest ``event`` is in their last ``within``
    sessions: ``symbol, type, session, sessions_ago, data`` as :func:`facts_of` gives."""
    width = analysis.panel.closes.shape[1]
    columns = latest.column[event][rows]
    hit = (columns >= 0) & (width - 1 - columns < within)
    rows, columns = rows[hit], columns[hit]
    first = width - analysis.lengths[rows]
    s = analysis.signals
    closes = analysis.panel.closes
    rule = analysis.rule.as_dict()
    data: list[dict[str, Any]]
    if event in ("golden_cross", "death_cross"):
        data = [
            {
                "close": float(closes[r, c]),
                "fast_value": float(s.fast_ma[r, c]),
                "slow_value": float(s.slow_ma[r, c]),
                "rule": rule,
                "sessions_seen": c - f + 1,
            }
            for r, c, f in zip(rows.tolist(), columns.tolist(), first.tolist(), strict=True)
        ]
    elif event == "cross_approaching":
        triggers = _triggers(analysis, rows, columns)
        data = [
            {
                "close": float(closes[r, c]),
                "gap_pct": float((s.fast_ma[r, c] / s.slow_ma[r, c] - 1.0) * 100.0),
                "fast_value": float(s.fast_ma[r, c]),
                "slow_value": float(s.slow_ma[r, c]),
                "trigger_close": trigger,
                "rule": rule,
                "sessions_seen": c - f + 1,
            }
            for r, c, f, trigger in zip(
                rows.tolist(), columns.tolist(), first.tolist(), triggers, strict=True
            )
        ]
    else:
        t = analysis.turns
        turn_rule = {
            "decline_pct": analysis.turn_rule.decline * 100,
            "rebound_pct": analysis.turn_rule.rebound * 100,
        }
        data = []
        for r, record in zip(rows.tolist(), latest.turn_record[event][rows].tolist(), strict=True):
            extreme = int(t.session[record])
            confirmed = int(t.confirmed[record])
            data.append(
                {
                    "extreme_session": _session(analysis, r, extreme).isoformat(),
                    "extreme_close": float(t.close[record]),
                    "close": float(closes[r, confirmed]),
                    "change_pct": num(t.change_pct[record]),
                    "sessions_to_confirm": confirmed - extreme,
                    "rule": turn_rule,
                }
            )
    symbols = analysis.panel.symbols
    return [
        {
            "symbol": symbols[r],
            "type": event,
            "session": _session(analysis, r, c),
            "sessions_ago": width - 1 - c,
            "data": d,
        }
        for r, c, d in zip(rows.tolist(), columns.tolist(), data, strict=True)
    ]
