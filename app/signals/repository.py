"""SQL for events: insert-if-new by deterministic id, retraction, cursor paging."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from datetime import date, datetime

from sqlalchemy import and_, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.db.chunks import chunks
from app.errors import InvalidInput
from app.signals.models import Event

# Made for one webhook subscription on request, not detected: kept out of the event
# feed unless asked for by type.
ONE_OFF_TYPES = ("test", "snapshot")


def insert_new(session: Session, events: Sequence[Event]) -> list[Event]:
    """Insert the events whose id is not stored yet; return those this call inserted.

    Re-runs add nothing, and so do races: the ``INSERT … ON CONFLICT DO NOTHING
    RETURNING id`` answers only the rows this statement wrote. On PostgreSQL a
    concurrent transaction inserting the same id makes this one wait for it and then
    skip the row; on SQLite the write lock orders them. Only the inserting transaction
    gets an event back, so only it enqueues deliveries (a check-then-insert would have
    let both transactions enqueue the same event).
    """
    if not events:
        return []
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    statement = insert(Event).on_conflict_do_nothing(index_elements=["id"]).returning(Event.id)
    inserted: set[str] = set()
    for part in chunks(list(events)):
        rows = [
            {
                "id": e.id,
                "type": e.type,
                "symbol": e.symbol,
                "session": e.session,
                "rule": e.rule,
                "live": e.live,
                "data": e.data,
                "created_at": e.created_at,
                "retracted_by": None,
            }
            for e in part
        ]
        inserted.update(session.scalars(statement, rows))
    return [event for event in events if event.id in inserted]


def active_for(session: Session, symbol: str, rules: Sequence[str], since: date) -> list[Event]:
    """Stored, unretracted events of ``symbol`` under ``rules`` on or after ``since``."""
    return [
        event
        for part in chunks(sorted(set(rules)))
        for event in session.scalars(
            select(Event).where(
                Event.symbol == symbol,
                Event.rule.in_(part),
                Event.session >= since,
                Event.retracted_by.is_(None),
                Event.type != "retracted",
            )
        )
    ]


def _encode(created_at: datetime, event_id: str) -> str:
    raw = f"{created_at.isoformat()}|{event_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if "\x00" in raw:
            raise ValueError("NUL in cursor")
        stamp, event_id = raw.split("|", 1)
        return datetime.fromisoformat(stamp), event_id
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput(
            f"invalid cursor {cursor!r}: pass the `next` of a previous page"
        ) from None


def page(
    session: Session,
    *,
    symbol: str | None,
    event_type: str | None,
    after: str | None,
    limit: int,
    live: bool | None = None,
) -> tuple[list[Event], str | None]:
    """Events oldest first by (created_at, id); ``after`` is the previous page's cursor.

    ``test`` and ``snapshot`` events (made for one subscription, not facts of the
    market) are listed only when ``event_type`` asks for them.
    """
    query = select(Event)
    if symbol is not None:
        query = query.where(Event.symbol == symbol)
    if event_type is not None:
        query = query.where(Event.type == event_type)
    else:
        query = query.where(Event.type.not_in(ONE_OFF_TYPES))
    if live is not None:
        query = query.where(Event.live.is_(live))
    if after is not None:
        stamp, event_id = _decode(after)
        query = query.where(
            or_(Event.created_at > stamp, and_(Event.created_at == stamp, Event.id > event_id))
        )
    rows = list(session.scalars(query.order_by(Event.created_at, Event.id).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    cursor = _encode(rows[-1].created_at, rows[-1].id) if more and rows else None
    return rows, cursor
