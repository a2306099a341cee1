"""The status page's watch list: the newest intraday check of a store's watch list run
in this process, with each watched symbol's live price and its distance to the trigger
close.

The watch job records the card of each check (:func:`record`); the page reads it
(:func:`newest`). Cards are kept per :class:`~app.db.engine.Database` object, not per
URL: the app and the scheduler of one ``serve`` share theirs, while two apps (or two
tests) on the same store see only their own checks. A check run by another process is
not seen.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import date, datetime
from weakref import WeakKeyDictionary

from app.db.engine import Database


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


_newest: WeakKeyDictionary[Database, WatchCard] = WeakKeyDictionary()
_newest_lock = threading.Lock()


def record(db: Database, card: WatchCard) -> None:
    """``card``: the newest watch-list check of ``db``."""
    with _newest_lock:
        _newest[db] = card


def newest(db: Database) -> WatchCard | None:
    """The card of the newest watch-list check of ``db`` in this process, or None."""
    with _newest_lock:
        return _newest.get(db)
