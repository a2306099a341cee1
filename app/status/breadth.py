"""The status page's breadth cards: one per universe, its newest ``/v1/breadth`` row
under the default rule and the charted window of its shares.

Self-contained: :func:`cards` reads the universes and the signal book's breadth
(:func:`app.signals.service.breadth_series`, whole arrays), nothing else of the page.
"""

from __future__ import annotations

import numpy as np
from sqlalchemy.orm import Session

from app.market import universes
from app.signals import breadth
from app.signals.analysis import DEFAULT_RULE
from app.signals.book import SignalBook
from app.signals.schemas import BreadthRow
from app.signals.service import breadth_series
from app.status.chart import CHART_SESSIONS, BreadthSeries
from app.status.schemas import BreadthCard


def cards(session: Session, book: SignalBook) -> tuple[list[BreadthCard], dict[str, BreadthSeries]]:
    """Each universe's card and chart series, by universe name."""
    found: list[BreadthCard] = []
    charts: dict[str, BreadthSeries] = {}
    for universe in universes.list_all(session):
        series = breadth_series(book, session, DEFAULT_RULE, universe.name)
        window = slice(max(series.sessions.size - CHART_SESSIONS, 0), None)
        chart = BreadthSeries(
            universe=universe.name,
            sessions=[day.astype(object) for day in series.sessions[window]],
            above_fast=np.asarray(series.above_fast_pct[window], dtype=np.float64),
            above_slow=np.asarray(series.above_slow_pct[window], dtype=np.float64),
            golden_regime=np.asarray(series.golden_regime_pct[window], dtype=np.float64),
            fast_window=DEFAULT_RULE.fast,
            slow_window=DEFAULT_RULE.slow,
        )
        newest = breadth.newest(series)
        found.append(
            BreadthCard(
                universe=universe.name,
                symbols=universe.members,
                newest=None if newest is None else BreadthRow.model_validate(newest),
                chart_sessions=len(chart.sessions),
            )
        )
        charts[universe.name] = chart
    return found, charts
