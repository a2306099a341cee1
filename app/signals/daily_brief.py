"""The poll's ``daily_brief`` event: a line of state per tracked symbol, from the figures
the poll's detection already derived, and the brief of the tracked indices as Markdown.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from app.market import calendar
from app.market import repository as market
from app.signals import brief_markdown, daily_path, repository
from app.signals.analysis import analyse, signals_of
from app.signals.events import CarriedStates
from app.signals.models import Event, event_id


def brief_signals(
    session: Session, carried: CarriedStates | None, *, now: datetime
) -> list[dict[str, Any]]:
    """What :func:`record_daily_brief` needs of every tracked symbol with bars.

    Taken from the figures the poll's detection already derived (``carried``, for each
    symbol whose state is at its current data version); only the other symbols (new to
    this process, too short for a state, or written elsewhere) are loaded and analysed,
    as the signal book would. One small query of data versions, no full load.
    """
    expected = calendar.last_closed_session(now)
    versions = market.data_versions(session)
    symbols = market.tracked_symbols(session)
    known: dict[str, daily_path.Newest] = {}
    if carried is not None:
        for symbol in symbols:
            figures = carried.newest(symbol, versions.get(symbol, -1))
            if figures is not None:
                known[symbol] = figures
    missing = [symbol for symbol in symbols if symbol not in known]
    if missing:
        analysis = analyse(market.load_panel(session, missing))
        provenance = market.newest_provenance(session, missing)
        rows = np.arange(len(missing), dtype=np.int64)
        for symbol, signal in zip(missing, signals_of(analysis, rows), strict=True):
            bar = provenance.get(symbol)
            figures = daily_path.newest_of(
                signal, bar.source if bar else None, bar.instrument if bar else None
            )
            if figures is not None:
                known[symbol] = figures
    return [
        {
            "symbol": symbol,
            "session": figures.session,
            "close": figures.close,
            "regime": figures.regime,
            "gap_pct": figures.gap_pct,
            "trigger_close": figures.trigger_close,
            "drawdown_pct": figures.drawdown_pct,
            "stale": figures.session < expected,
            "source": figures.source,
            "instrument": figures.instrument,
        }
        for symbol in symbols
        if (figures := known.get(symbol)) is not None
    ]


def daily_brief_text(session: Session, signals: Sequence[dict[str, Any]], *, now: datetime) -> str:
    """The brief's Markdown of the tracked indices on the newest session of ``signals``
    (:func:`brief.indices_markdown`; empty without signals): the ``text`` of
    :func:`record_daily_brief`. It reads the indices' histories, so a poll derives it
    before its write transaction opens rather than holding the store's write lock."""
    if not signals:
        return ""
    return brief_markdown.indices_markdown(session, _newest_session(signals), now)


def _newest_session(signals: Sequence[dict[str, Any]]) -> date:
    newest: date = max(signal["session"] for signal in signals)
    return newest


def record_daily_brief(
    session: Session,
    signals: Sequence[dict[str, Any]],
    *,
    text: str,
    now: datetime,
    live: bool,
) -> Event | None:
    """One ``daily_brief`` event after a poll: a line of state per symbol, and ``text``,
    the brief's Markdown of the tracked indices (:func:`daily_brief_text`)."""
    if not signals:
        return None
    newest = _newest_session(signals)
    lines = []
    for signal in signals:
        regime = signal["regime"] or "no regime"
        gap = signal["gap_pct"]
        lines.append(
            {
                "symbol": signal["symbol"],
                "session": signal["session"].isoformat(),
                "close": signal["close"],
                "regime": signal["regime"],
                "gap_pct": gap,
                "trigger_close": signal["trigger_close"],
                "drawdown_pct": signal["drawdown_pct"],
                "stale": signal["stale"],
                "source": signal["source"],
                "instrument": signal["instrument"],
                "line": f"{signal['symbol']} {signal['close']:.2f} {regime}"
                + (f", gap {gap:+.2f}%" if gap is not None else ""),
            }
        )
    brief = Event(
        id=event_id("*", "brief", "daily_brief", newest),
        type="daily_brief",
        symbol="*",
        session=newest,
        rule="brief",
        live=live,
        data={
            "session": newest.isoformat(),
            "symbols": lines,
            "text": text,
        },
        created_at=now,
    )
    fresh = repository.insert_new(session, [brief])
    return fresh[0] if fresh else None
