"""The screen: every chosen symbol's newest session as a row of figures, filtered and
sorted as whole arrays.

Pure: an :class:`Analysis` (and, for relative volume, the newest volumes) in, columns
out. NaN stands for null in float columns, -1 in ``flat_sessions_to_cross``; a filter on
a null figure drops the row.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from app.signals.analysis import Analysis

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

# Sessions of volume relative volume compares the newest session's with.
VOLUME_SESSIONS = 50
MAX_LIMIT = 5_000
SORTABLE = (
    "close",
    "change_pct",
    "gap_pct",
    "trigger_close",
    "trigger_distance_pct",
    "flat_sessions_to_cross",
    "drawdown_pct",
    "return_pct",
    "relative_volume",
)
CSV_COLUMNS = (
    "symbol",
    "session",
    "close",
    "change_pct",
    "regime",
    "gap_pct",
    "trigger_close",
    "trigger_distance_pct",
    "flat_sessions_to_cross",
    "drawdown_pct",
    "return_pct",
    "relative_volume",
    "last_event_type",
    "last_event_session",
)


@dataclass(frozen=True)
class Filters:
    """What a screen keeps; None leaves a figure unfiltered."""

    regime: str | None = None  # "golden" or "death"
    max_flat_sessions_to_cross: int | None = None
    min_gap_pct: float | None = None
    max_gap_pct: float | None = None
    max_trigger_distance_pct: float | None = None
    min_return_pct: float | None = None
    return_sessions: int = 21
    min_relative_volume: float | None = None
    min_drawdown_pct: float | None = None
    max_drawdown_pct: float | None = None


@dataclass(frozen=True)
class Figures:
    """The screen's figures of ``rows`` (panel rows with at least one close), all
    ``(len(rows),)``; ``relative_volume`` is filled in by :func:`with_volumes`."""

    rows: IntArray
    close: FloatArray
    change_pct: FloatArray
    regime: npt.NDArray[np.int8]
    gap_pct: FloatArray
    trigger_close: FloatArray
    trigger_distance_pct: FloatArray
    flat_sessions_to_cross: IntArray
    drawdown_pct: FloatArray
    return_pct: FloatArray
    relative_volume: FloatArray

    def take(self, keep: IntArray | BoolArray) -> Figures:
        return Figures(**{name: getattr(self, name)[keep] for name in self.__dataclass_fields__})

    def column(self, name: str) -> FloatArray:
        """A sortable figure as float64 with NaN for null."""
        if name == "flat_sessions_to_cross":
            flat = self.flat_sessions_to_cross
            return np.where(flat >= 0, flat, np.nan)
        values: FloatArray = getattr(self, name)
        return values


def figures(analysis: Analysis, rows: IntArray, return_sessions: int) -> Figures:
    """The newest session's figures of ``rows`` (rows without closes are dropped)."""
    rows = rows[analysis.lengths[rows] > 0]
    closes = analysis.panel.closes
    width = closes.shape[1]
    length = analysis.lengths[rows]
    close = closes[rows, width - 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        previous = np.where(length >= 2, closes[rows, max(width - 2, 0)], np.nan)
        change = (close / previous - 1.0) * 100.0
        back = width - 1 - return_sessions
        base = (
            np.where(length > return_sessions, closes[rows, back], np.nan)
            if back >= 0
            else np.full(rows.size, np.nan)
        )
        returned = (close / base - 1.0) * 100.0
        s = analysis.signals
        gap = (s.fast_ma[rows, width - 1] / s.slow_ma[rows, width - 1] - 1.0) * 100.0
        trigger = analysis.trigger[rows]
        distance = np.abs(trigger / close - 1.0) * 100.0
    return Figures(
        rows=rows,
        close=close,
        change_pct=change,
        regime=s.regime[rows, width - 1],
        gap_pct=gap,
        trigger_close=trigger,
        trigger_distance_pct=distance,
        flat_sessions_to_cross=analysis.flat[rows],
        drawdown_pct=analysis.drawdown.drawdown[rows, width - 1] * 100.0,
        return_pct=returned,
        relative_volume=np.full(rows.size, np.nan),
    )


def select(found: Figures, filters: Filters) -> BoolArray:
    """Which rows pass every filter given (comparisons with NaN are false)."""
    keep = np.ones(found.rows.size, dtype=bool)
    if filters.regime is not None:
        keep &= found.regime == (1 if filters.regime == "golden" else -1)
    if filters.max_flat_sessions_to_cross is not None:
        flat = found.flat_sessions_to_cross
        keep &= (flat >= 0) & (flat <= filters.max_flat_sessions_to_cross)
    bounds = (
        ("gap_pct", filters.min_gap_pct, filters.max_gap_pct),
        ("trigger_distance_pct", None, filters.max_trigger_distance_pct),
        ("return_pct", filters.min_return_pct, None),
        ("relative_volume", filters.min_relative_volume, None),
        ("drawdown_pct", filters.min_drawdown_pct, filters.max_drawdown_pct),
    )
    for name, low, high in bounds:
        values = found.column(name)
        if low is not None:
            keep &= values >= low
        if high is not None:
            keep &= values <= high
    return keep


def relative_volume(volumes: FloatArray) -> FloatArray:
    """Newest volume over the mean of the :data:`VOLUME_SESSIONS` before it.

    ``volumes``: ``(rows, VOLUME_SESSIONS + 1)``, each row's newest sessions oldest first,
    NaN where a session has no volume. NaN unless all are known and the mean is positive.
    """
    mean = volumes[:, :-1].mean(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio: FloatArray = np.where(mean > 0, volumes[:, -1] / mean, np.nan)
    return ratio


def align_volumes(
    analysis: Analysis,
    rows: IntArray,
    positions: IntArray,
    days: npt.NDArray[np.datetime64],
    volumes: FloatArray,
) -> FloatArray:
    """``(len(rows), VOLUME_SESSIONS + 1)`` volumes of each row's newest sessions.

    ``positions``, ``days``, ``volumes``: stored volumes as flat records, ``positions``
    indexing ``rows``; a session without a record (or before the row's first) is NaN.
    """
    span = VOLUME_SESSIONS + 1
    width = analysis.panel.closes.shape[1]
    columns = np.arange(width - span, width)
    inside = columns >= 0
    wanted = np.full((rows.size, span), np.datetime64("NaT"), dtype="datetime64[D]")
    wanted[:, inside] = analysis.panel.sessions[rows[:, None], columns[inside][None, :]]
    day_count = np.int64(1 << 32)
    stored_keys = positions.astype(np.int64) * day_count + days.astype("datetime64[D]").astype(
        np.int64
    )
    order = np.argsort(stored_keys, kind="stable")
    stored_keys, stored_volumes = stored_keys[order], volumes[order]
    known = ~np.isnat(wanted)
    keys = np.arange(rows.size, dtype=np.int64)[:, None] * day_count + np.where(
        known, wanted.astype(np.int64), 0
    )
    at = np.minimum(np.searchsorted(stored_keys, keys), max(stored_keys.size - 1, 0))
    result = np.full(keys.shape, np.nan)
    if stored_keys.size:
        hit = known & (stored_keys[at] == keys)
        result[hit] = stored_volumes[at[hit]]
    return result


def order(found: Figures, sort: str | None) -> IntArray:
    """Positions of ``found`` sorted by ``sort`` (``-name`` descending), nulls last, ties
    by symbol (panel rows are in symbol order); by symbol without ``sort``."""
    if sort is None:
        result: IntArray = np.argsort(found.rows, kind="stable")
        return result
    descending = sort.startswith("-")
    values = found.column(sort.lstrip("-"))
    null = np.isnan(values)
    key = np.where(null, 0.0, -values if descending else values)
    result = np.lexsort((found.rows, key, null))
    return result


def to_records(
    analysis: Analysis,
    found: Figures,
    last_column: IntArray,
    last_type: list[str | None],
) -> list[dict[str, Any]]:
    """Rows as JSON-ready dicts (NaN as None); ``last_column``/``last_type``: each row's
    newest event (column -1 / None when it has none)."""
    width = analysis.panel.closes.shape[1]

    def clean(values: FloatArray) -> list[float | None]:
        return [None if v != v or v in (np.inf, -np.inf) else v for v in values.tolist()]

    symbols = analysis.panel.symbols
    sessions = analysis.panel.sessions[found.rows, width - 1].astype(object).tolist()
    regimes = {1: "golden", -1: "death", 0: None}
    columns = {
        name: clean(found.column(name))
        for name in (
            "close",
            "change_pct",
            "gap_pct",
            "trigger_close",
            "trigger_distance_pct",
            "drawdown_pct",
            "return_pct",
            "relative_volume",
        )
    }
    flat = found.flat_sessions_to_cross.tolist()
    result = []
    for i, (row, column, kind) in enumerate(
        zip(found.rows.tolist(), last_column.tolist(), last_type, strict=True)
    ):
        result.append(
            {
                "symbol": symbols[row],
                "session": sessions[i],
                "regime": regimes[int(found.regime[i])],
                "flat_sessions_to_cross": flat[i] if flat[i] >= 0 else None,
                **{name: values[i] for name, values in columns.items()},
                "last_event": None
                if kind is None
                else {"type": kind, "session": analysis.session_of(row, column)},
            }
        )
    return result


def csv_text(rows: Iterable[Mapping[str, Any]]) -> str:
    """The screen's rows as CSV (:data:`CSV_COLUMNS`; empty cells for null)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        event = row["last_event"] or {}
        cells = [row[name] for name in CSV_COLUMNS[:-2]] + [
            event.get("type"),
            event.get("session"),
        ]
        writer.writerow(["" if cell is None else cell for cell in cells])
    return out.getvalue()
