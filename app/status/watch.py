"""The status page's watch list: the newest intraday check this process ran, with each
watched symbol's live price and its distance to the trigger close."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from app.jobs.watch import LAST_CHECKS


@dataclass(frozen=True)
class WatchRow:
    symbol: str
    rule: str
    direction: str | None
    trigger_close: float | None
    live_price: float | None
    as_of: datetime | None
    distance_pct: float | None
    event_id: str | None
    error: str | None


@dataclass(frozen=True)
class WatchCard:
    session: date
    checked_at: datetime
    rows: list[WatchRow]


def newest(store: str) -> WatchCard | None:
    """The card of the newest watch-list check of ``store`` in this process, or None."""
    report = LAST_CHECKS.of(store)
    if report is None or report.session is None:
        return None
    rows = [
        WatchRow(
            symbol=f.candidate.symbol,
            rule=f.candidate.rule.key,
            direction=f.candidate.direction,
            trigger_close=f.candidate.trigger_close,
            live_price=f.quote.price if f.quote is not None else None,
            as_of=f.quote.as_of if f.quote is not None else None,
            distance_pct=f.distance_pct,
            event_id=f.event.id if f.event is not None else None,
            error=f.error,
        )
        for f in report.findings
    ]
    return WatchCard(report.session, report.at, rows)
