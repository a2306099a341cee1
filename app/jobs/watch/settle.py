"""Settling after the close: each recent ``cross_watch`` whose session's close is now
stored is confirmed by detection's cross, or answered by a ``cross_watch_missed``."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from app.market.models import DailyBar
from app.signals import repository
from app.signals.models import Event, event_id
from app.webhooks.callbacks import Enqueue

#: Watches of sessions this recent are settled by a poll (older ones stay as they are).
SETTLE_WITHIN = timedelta(days=30)


def settle_watches(
    session: Session, *, now: datetime, enqueue: Enqueue | None = None
) -> list[Event]:
    """Answer every recent ``cross_watch`` whose session's close is now stored.

    Confirmed when detection stored the cross of that direction, rule and session
    (nothing more is written: the cross event is the answer); otherwise a live
    ``cross_watch_missed`` with the close. Runs in the caller's transaction; returns
    the events it wrote (a concurrent settle of the same watch writes nothing).
    """
    watches = list(
        session.scalars(
            select(Event).where(
                Event.type == "cross_watch",
                Event.session >= (now - SETTLE_WITHIN).date(),
                Event.retracted_by.is_(None),
            )
        )
    )
    if not watches:
        return []
    answers = {
        watch.id: (
            event_id(watch.symbol, watch.rule, f"{watch.data['direction']}_cross", watch.session),
            event_id(watch.symbol, watch.rule, "cross_watch_missed", watch.session),
        )
        for watch in watches
    }
    known = set(
        session.scalars(
            select(Event.id).where(
                Event.id.in_([i for pair in answers.values() for i in pair]),
                Event.retracted_by.is_(None),
            )
        )
    )
    open_watches = [w for w in watches if not known.intersection(answers[w.id])]
    closes = _closes(session, [(w.symbol, w.session) for w in open_watches])
    missed = [
        _missed(watch, answers[watch.id][1], closes[(watch.symbol, watch.session)], now)
        for watch in open_watches
        if (watch.symbol, watch.session) in closes
    ]
    fresh = repository.insert_new(session, missed)
    if fresh and enqueue is not None:
        enqueue(session, fresh)
    return fresh


def _closes(session: Session, keys: Sequence[tuple[str, date]]) -> dict[tuple[str, date], float]:
    if not keys:
        return {}
    rows = session.execute(
        select(DailyBar.symbol, DailyBar.session, DailyBar.close).where(
            tuple_(DailyBar.symbol, DailyBar.session).in_(list(keys))
        )
    )
    return {(symbol, day): float(close) for symbol, day, close in rows}


def _missed(watch: Event, missed_id: str, close: float, now: datetime) -> Event:
    return Event(
        id=missed_id,
        type="cross_watch_missed",
        symbol=watch.symbol,
        session=watch.session,
        rule=watch.rule,
        live=True,
        data={
            "direction": watch.data["direction"],
            "close": close,
            "trigger_close": watch.data["trigger_close"],
            "session": watch.session.isoformat(),
            "rule": watch.data["rule"],
            "watch_id": watch.id,
        },
        created_at=now,
    )
