"""The screen: the newest session's figures of the chosen symbols that pass a query's
filters (whole arrays of the cached analysis; see :mod:`app.signals.screen`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from app.errors import InvalidInput
from app.market import repository
from app.signals import scan as scan_arrays
from app.signals import screen as screen_arrays
from app.signals.book import SignalBook, Snapshot, chosen_rows


@dataclass(frozen=True)
class ScreenQuery:
    """A screen's filters, event window, order and page size."""

    filters: screen_arrays.Filters = field(default_factory=screen_arrays.Filters)
    event: str | None = None
    within: int = 5
    sort: str | None = None
    limit: int = 50


#: The event types a screen (and a scan) can ask for, in the order errors list them.
SCAN_EVENTS = ("golden_cross", "death_cross", "peak", "trough", "cross_approaching")


def screen_query(
    *,
    regime: str | None = None,
    max_flat_sessions_to_cross: int | None = None,
    min_gap_pct: float | None = None,
    max_gap_pct: float | None = None,
    max_trigger_distance_pct: float | None = None,
    min_return_pct: float | None = None,
    return_sessions: int = 21,
    min_relative_volume: float | None = None,
    min_drawdown_pct: float | None = None,
    max_drawdown_pct: float | None = None,
    event: str | None = None,
    within: int = 5,
    sort: str | None = None,
    limit: int = 50,
) -> ScreenQuery:
    """The query of ``GET /v1/screen`` and ``crosswatch screen``, from their flat
    parameters; an unknown regime, event or sort is :class:`InvalidInput`."""
    if regime not in (None, "golden", "death"):
        raise InvalidInput(f"regime must be golden or death, not {regime!r}")
    if event is not None and event not in SCAN_EVENTS:
        raise InvalidInput(f"event must be one of {', '.join(SCAN_EVENTS)}")
    if sort is not None and sort.lstrip("-") not in screen_arrays.SORTABLE:
        raise InvalidInput(
            f"sort must be one of {', '.join(screen_arrays.SORTABLE)} (-name: descending)"
        )
    return ScreenQuery(
        filters=screen_arrays.Filters(
            regime=regime,
            max_flat_sessions_to_cross=max_flat_sessions_to_cross,
            min_gap_pct=min_gap_pct,
            max_gap_pct=max_gap_pct,
            max_trigger_distance_pct=max_trigger_distance_pct,
            min_return_pct=min_return_pct,
            return_sessions=return_sessions,
            min_relative_volume=min_relative_volume,
            min_drawdown_pct=min_drawdown_pct,
            max_drawdown_pct=max_drawdown_pct,
        ),
        event=event,
        within=within,
        sort=sort,
        limit=limit,
    )


def _with_volumes(
    session: Session, snap: Snapshot, found: screen_arrays.Figures
) -> screen_arrays.Figures:
    """``found`` with relative volume, from one read of the newest volumes."""
    analysis = snap.analysis
    if found.rows.size == 0:
        return found
    width = analysis.panel.closes.shape[1]
    oldest = np.maximum(
        width - analysis.lengths[found.rows], width - screen_arrays.VOLUME_SESSIONS - 1
    )
    since = analysis.panel.sessions[found.rows, oldest].min().astype(object)
    symbols = [analysis.panel.symbols[row] for row in found.rows.tolist()]
    stored = repository.load_volumes(session, symbols, since=since)
    position = {symbol: i for i, symbol in enumerate(symbols)}
    positions = np.repeat(
        np.array([position[s] for s in stored.symbols], dtype=np.int64), stored.counts
    )
    volumes = screen_arrays.align_volumes(
        analysis, found.rows, positions, stored.sessions, stored.volumes
    )
    relative = screen_arrays.relative_volume(volumes)
    return screen_arrays.Figures(
        **{
            **{n: getattr(found, n) for n in found.__dataclass_fields__},
            "relative_volume": relative,
        }
    )


def screen(
    book: SignalBook,
    session: Session,
    query: ScreenQuery,
    symbols: Sequence[str] | None = None,
    universe: str | None = None,
) -> dict[str, Any]:
    """The newest session's figures of every chosen symbol that passes the filters."""
    snap = book.snapshot(session)
    analysis = snap.analysis
    rows = chosen_rows(snap, session, symbols, universe)
    found = screen_arrays.figures(analysis, rows, query.filters.return_sessions)
    width = analysis.panel.closes.shape[1]
    newest = (
        analysis.panel.sessions[found.rows, width - 1].max().astype(object)
        if found.rows.size
        else None
    )
    # Relative volume needs a read of the volumes: filtered after the rest.
    keep = screen_arrays.select(found, replace(query.filters, min_relative_volume=None))
    if query.event is not None:
        columns = snap.latest.column[query.event][found.rows]
        keep &= (columns >= 0) & (width - 1 - columns < query.within)
    found = found.take(keep)
    by_volume = query.sort is not None and query.sort.lstrip("-") == "relative_volume"
    if query.filters.min_relative_volume is not None or by_volume:
        found = _with_volumes(session, snap, found)
        found = found.take(screen_arrays.select(found, query.filters))
    count = int(found.rows.size)
    found = found.take(screen_arrays.order(found, query.sort)[: query.limit])
    if not (query.filters.min_relative_volume is not None or by_volume):
        found = _with_volumes(session, snap, found)
    last_column, last_kind = snap.latest.newest()
    kinds = [scan_arrays.EVENT_TYPES[k] if k >= 0 else None for k in last_kind[found.rows].tolist()]
    rows_out = screen_arrays.to_records(analysis, found, last_column[found.rows], kinds)
    return {"session": newest, "count": count, "rows": rows_out}
