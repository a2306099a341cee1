"""The newest event of each type per symbol, from an :class:`Analysis`'s arrays.

Pure and vectorized: one pass over the kernel's matrices finds, for every row and every
event type, the column of its newest event (the last :func:`facts.facts_of` fact of
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
from app.signals.analysis import CROSS_TYPES, Analysis, num
from app.signals.facts import Fact, approach_fact, approach_trigger, cross_fact, turn_fact

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
    """Every ``cross_approaching`` as (row, column), in row-major order (the rule's one
    derivation: :attr:`analysis.Analysis.approaches`)."""
    rows, columns = np.nonzero(analysis.approaches.at)
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
    rule = analysis.rule
    facts: list[Fact] = []
    if event in ("golden_cross", "death_cross"):
        for r, c, f in zip(rows.tolist(), columns.tolist(), first.tolist(), strict=True):
            facts.append(
                cross_fact(
                    rule,
                    int(s.cross[r, c]),
                    _session(analysis, r, c),
                    closes[r, c],
                    s.fast_ma[r, c],
                    s.slow_ma[r, c],
                    c - f + 1,
                )
            )
    elif event == "cross_approaching":
        for r, c, f in zip(rows.tolist(), columns.tolist(), first.tolist(), strict=True):
            fast, slow = float(s.fast_ma[r, c]), float(s.slow_ma[r, c])
            trigger = approach_trigger(rule, closes[r, : c + 1], fast, slow)
            facts.append(
                approach_fact(
                    rule, _session(analysis, r, c), closes[r, c], fast, slow, trigger, c - f + 1
                )
            )
    else:
        t = analysis.turns
        for r, record in zip(rows.tolist(), latest.turn_record[event][rows].tolist(), strict=True):
            extreme = int(t.session[record])
            confirmed = int(t.confirmed[record])
            facts.append(
                turn_fact(
                    analysis.turn_rule,
                    event,
                    _session(analysis, r, confirmed),
                    _session(analysis, r, extreme),
                    t.close[record],
                    closes[r, confirmed],
                    num(t.change_pct[record]),
                    confirmed - extreme,
                )
            )
    symbols = analysis.panel.symbols
    return [
        {
            "symbol": symbols[r],
            "type": event,
            "session": _session(analysis, r, c),
            "sessions_ago": width - 1 - c,
            "data": fact.data,
        }
        for r, c, fact in zip(rows.tolist(), columns.tolist(), facts, strict=True)
    ]
