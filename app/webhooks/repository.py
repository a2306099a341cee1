"""SQL for subscriptions and the outbox rows the API writes (the worker's is in delivery_queue.py).

Enqueueing marks the session; when it commits, in-process workers are woken (and on
PostgreSQL ``pg_notify`` reaches workers in other processes, also at commit).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import Select, and_, bindparam, event, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, contains_eager, selectinload

from app.db.base import table_of
from app.db.chunks import chunks
from app.signals.models import Event
from app.webhooks.models import CANCELLED, PENDING, Delivery, Subscription

NOTIFY_CHANNEL = "crosswatch_outbox"
_wakers: list[Callable[[], None]] = []


def register_waker(waker: Callable[[], None]) -> Callable[[], None]:
    """Call ``waker`` after every commit that enqueued deliveries; returns the undo."""
    _wakers.append(waker)
    return lambda: _wakers.remove(waker)


@event.listens_for(Session, "after_commit")
def _wake_after_commit(session: Session) -> None:
    if session.info.pop("outbox_dirty", False):
        for waker in list(_wakers):
            waker()


@event.listens_for(Session, "after_rollback")
def _forget_after_rollback(session: Session) -> None:
    session.info.pop("outbox_dirty", None)


def mark_outbox_dirty(session: Session) -> None:
    """Wake workers when this transaction commits (NOTIFY is transactional too)."""
    session.info["outbox_dirty"] = True
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_notify(:channel, '')"), {"channel": NOTIFY_CHANNEL})


def owned(owner_key_id: int | None) -> Any:
    return (
        Subscription.owner_key_id.is_(None)
        if owner_key_id is None
        else Subscription.owner_key_id == owner_key_id
    )


def list_subscriptions(session: Session, owner_key_id: int | None) -> Sequence[Subscription]:
    return session.scalars(
        select(Subscription).where(owned(owner_key_id)).order_by(Subscription.id)
    ).all()


def get_subscription(
    session: Session, owner_key_id: int | None, subscription_id: int
) -> Subscription | None:
    return session.scalar(
        select(Subscription).where(owned(owner_key_id), Subscription.id == subscription_id)
    )


def enabled_targets(session: Session) -> Sequence[Any]:
    """What matching needs of each enabled subscription (plain rows: fan-out is per row)."""
    return session.execute(
        select(
            Subscription.id,
            Subscription.event_types,
            Subscription.symbols,
            Subscription.universe,
            Subscription.rule_fast,
            Subscription.rule_slow,
            Subscription.rule_type,
        ).where(Subscription.enabled.is_(True))
    ).all()


def existing_pairs(session: Session, event_ids: list[str]) -> set[tuple[str, int]]:
    found: set[tuple[str, int]] = set()
    for ids in chunks(event_ids):
        rows = session.execute(
            select(Delivery.event_id, Delivery.subscription_id).where(Delivery.event_id.in_(ids))
        )
        found.update((row[0], row[1]) for row in rows)
    return found


def originals_of(session: Session, retraction_ids: list[str]) -> dict[str, list[str]]:
    """For each retraction event id, the ids of the events it retracted."""
    found: dict[str, list[str]] = {}
    for ids in chunks(retraction_ids):
        rows = session.execute(
            select(Event.retracted_by, Event.id).where(Event.retracted_by.in_(ids))
        )
        for retraction_id, original_id in rows:
            found.setdefault(str(retraction_id), []).append(original_id)
    return found


def insert_deliveries(session: Session, pairs: Iterable[tuple[str, int]], now: datetime) -> None:
    """One pending delivery, due ``now``, per (event id, subscription id) pair; an existing
    pair is kept. A Core executemany: the parameters are just the two ids."""
    rows = [{"event_id": event_id, "subscription_id": sid} for event_id, sid in pairs]
    if not rows:
        return
    table = table_of(Delivery)
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = (
        insert(table)
        .values(
            status=bindparam("c_status", PENDING),
            attempt_count=bindparam("c_attempts", 0),
            next_attempt_at=bindparam("c_due", now, type_=Delivery.next_attempt_at.type),
            created_at=bindparam("c_created", now, type_=Delivery.created_at.type),
        )
        .on_conflict_do_nothing(index_elements=[table.c.event_id, table.c.subscription_id])
    )
    session.connection().execute(statement, rows)


def reset_deliveries(session: Session, delivery_ids: Iterable[int], now: datetime) -> None:
    """Make deliveries due now with a fresh schedule (replay)."""
    for ids in chunks(delivery_ids):
        session.execute(
            update(Delivery)
            .where(Delivery.id.in_(ids))
            .values(
                status=PENDING,
                attempt_count=0,
                next_attempt_at=now,
                finished_at=None,
                lease_until=None,
                locked_by=None,
            )
        )


def cancel_pending(session: Session, subscription_ids: Iterable[int], now: datetime) -> None:
    for ids in chunks(subscription_ids):
        session.execute(
            update(Delivery)
            .where(Delivery.subscription_id.in_(ids), Delivery.status == PENDING)
            .values(status=CANCELLED, finished_at=now, lease_until=None, locked_by=None)
        )


def delivery_ids_for(
    session: Session, subscription_id: int, event_ids: list[str]
) -> dict[str, int]:
    found: dict[str, int] = {}
    for ids in chunks(event_ids):
        rows = session.execute(
            select(Delivery.event_id, Delivery.id).where(
                Delivery.subscription_id == subscription_id, Delivery.event_id.in_(ids)
            )
        )
        found.update((row[0], row[1]) for row in rows)
    return found


def events_in_range(
    session: Session,
    *,
    types: list[str],
    symbols: list[str] | None,
    since: date,
    until: date | None,
    limit: int,
) -> Sequence[Event]:
    """The first ``limit`` events by (session, id) of ``types`` (empty: all) and
    ``symbols`` (None: all) in the range; a long symbol list is read in slices."""
    query: Select[tuple[Event]] = select(Event).where(Event.session >= since)
    if until is not None:
        query = query.where(Event.session <= until)
    if types:
        query = query.where(Event.type.in_(sorted(set(types))))
    query = query.order_by(Event.session, Event.id).limit(limit)
    if symbols is None:
        return session.scalars(query).all()
    found = [
        row
        for part in chunks(sorted(set(symbols)))
        for row in session.scalars(query.where(Event.symbol.in_(part)))
    ]
    return sorted(found, key=lambda event: (event.session, event.id))[:limit]


def latest_crosses(session: Session, rule: str, symbols: list[str] | None) -> Sequence[Event]:
    """The newest golden/death cross per symbol for ``rule`` (not retracted)."""
    crosses = and_(
        Event.type.in_(["golden_cross", "death_cross"]),
        Event.rule == rule,
        Event.retracted_by.is_(None),
    )
    parts = [None] if symbols is None else list(chunks(sorted(set(symbols))))
    latest: dict[str, Event] = {}
    for part in parts:
        where = crosses if part is None else and_(crosses, Event.symbol.in_(part))
        for row in session.scalars(
            select(Event).where(where).order_by(Event.symbol, Event.session)
        ):
            latest[row.symbol] = row
    return [latest[symbol] for symbol in sorted(latest)]


def deliveries_with_attempts(
    session: Session, subscription_id: int, status: str | None, limit: int
) -> list[Delivery]:
    """The newest deliveries first, each with its event's type and its attempts loaded."""
    query = (
        select(Delivery)
        .join(Delivery.event)
        .options(
            contains_eager(Delivery.event).load_only(Event.type),
            selectinload(Delivery.attempts),
        )
        .where(Delivery.subscription_id == subscription_id)
    )
    if status is not None:
        query = query.where(Delivery.status == status)
    return list(session.scalars(query.order_by(Delivery.id.desc()).limit(limit)))


def get_delivery(session: Session, subscription_id: int, delivery_id: int) -> Delivery | None:
    return session.scalar(
        select(Delivery).where(
            Delivery.id == delivery_id, Delivery.subscription_id == subscription_id
        )
    )


def distinct_rules(session: Session) -> set[tuple[int, int, str]]:
    rows = session.execute(
        select(Subscription.rule_fast, Subscription.rule_slow, Subscription.rule_type)
        .where(Subscription.enabled.is_(True), Subscription.rule_fast.is_not(None))
        .distinct()
    )
    return {(int(f), int(s), str(t)) for f, s, t in rows if s is not None and t is not None}
