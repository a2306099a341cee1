"""The worker's SQL: claim due deliveries under a lease, record attempt outcomes.

Claiming is one short transaction. On PostgreSQL the rows are picked with
``FOR UPDATE SKIP LOCKED`` so any number of workers share the queue; SQLite (which
ignores the clause) supports one worker process per store. A claim takes at most
``per_subscription`` rows of one subscription, so one endpoint's backlog never fills a
worker. A worker that dies leaves its rows leased; they are due again once the lease
ends (at-least-once; the ``webhook-id`` is stable so receivers can deduplicate).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    String,
    and_,
    any_,
    bindparam,
    func,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from app.db.base import table_of
from app.db.bulk import insert_rows
from app.signals.models import Event
from app.webhooks import repository
from app.webhooks.models import (
    FAILED,
    PENDING,
    SUCCEEDED,
    Delivery,
    DeliveryAttempt,
    Subscription,
)
from app.webhooks.schedule import should_disable
from app.webhooks.signing import secret_key


@dataclass(frozen=True)
class Job:
    """One claimed delivery with everything needed to send it."""

    delivery_id: int
    subscription_id: int
    url: str
    keys: tuple[bytes, ...]
    msg_id: str
    event_type: str
    event_json: bytes
    attempt_count: int
    #: The subscription's format (``WebhookFormat``): how the body is rendered.
    format: str = "standard"


@dataclass(frozen=True)
class Outcome:
    """What one attempt produced, and what happens next (decided by the worker)."""

    job: Job
    attempted_at: datetime
    status_code: int | None
    latency_ms: float
    error_class: str | None
    excerpt: str | None
    status: str
    next_attempt_at: datetime | None
    gone: bool = False


def event_json(event: Event) -> bytes:
    """The ``Event`` object of DESIGN §8, serialised once per event.

    ``created_at`` always carries its UTC offset (RFC 3339): SQLite reads it back
    without one, and every stored time is UTC.
    """
    stored = event.created_at
    created_at = stored.replace(tzinfo=UTC) if stored.tzinfo is None else stored.astimezone(UTC)
    return json.dumps(
        {
            "id": event.id,
            "type": event.type,
            "symbol": event.symbol,
            "session": event.session.isoformat(),
            "live": event.live,
            "data": event.data,
            "created_at": created_at.isoformat(),
        },
        separators=(",", ":"),
    ).encode()


def claim(
    session: Session,
    *,
    worker_id: str,
    now: datetime,
    lease: timedelta,
    limit: int,
    per_subscription: int,
    held: Mapping[int, int] | None = None,
) -> tuple[list[Job], bool]:
    """Lease up to ``limit`` due deliveries to ``worker_id`` and load what sending needs.

    ``held`` counts rows the worker already holds per subscription: with those, no
    subscription gets more than ``per_subscription``. Also says whether more rows may
    be due now (the limit was reached, or rows were left for a subscription's cap).

    Core statements with one array parameter per id list, not ORM queries with
    expanded ``IN`` lists: this runs on the delivery hot path, where SQLAlchemy's
    per-parameter work was most of the worker's database time.
    """
    held = held or {}
    connection = session.connection()
    relax_commit(connection)
    deliveries, subscriptions = table_of(Delivery), table_of(Subscription)
    d, s = deliveries.c, subscriptions.c
    due = and_(
        d.status == PENDING,
        d.next_attempt_at <= now,
        or_(d.lease_until.is_(None), d.lease_until < now),
    )
    full = [sid for sid, count in held.items() if count >= per_subscription]
    if full:
        due = and_(due, ~ids_in(connection, d.subscription_id, full))
    # Lock a window of due rows, keep at most ``per_subscription`` of each subscription,
    # lease those; the rest are unlocked again at commit. (A window function in the
    # locking query made PostgreSQL plan it badly on fresh tables.)
    candidates = connection.execute(
        select(d.id, d.subscription_id)
        .where(due)
        .order_by(d.next_attempt_at, d.id)
        .limit(limit * 2)
        .with_for_update(skip_locked=True)
    ).all()
    claimed: list[int] = []
    taken = dict(held)
    for delivery_id, subscription_id in candidates:
        count = taken.get(subscription_id, 0)
        if count < per_subscription:
            taken[subscription_id] = count + 1
            claimed.append(delivery_id)
            if len(claimed) == limit:
                break
    more = len(claimed) == limit or len(candidates) > len(claimed) or bool(full)
    if not claimed:
        return [], more
    leased = connection.execute(
        update(deliveries)
        .where(ids_in(connection, d.id, claimed))
        .values(lease_until=now + lease, locked_by=worker_id)
        .returning(d.id, d.attempt_count, d.event_id, d.subscription_id)
    ).all()
    targets = {
        row[0]: (row[1], signing_keys(row[2], row[3], row[4], now), row[5])
        for row in connection.execute(
            select(
                s.id, s.url, s.secret, s.previous_secret, s.previous_secret_expires_at, s.format
            ).where(ids_in(connection, s.id, list({row[3] for row in leased})))
        )
    }
    events = {
        event.id: (event.type, event_json(event))
        for event in session.scalars(select(Event).where(Event.id.in_({row[2] for row in leased})))
    }
    order = {delivery_id: i for i, delivery_id in enumerate(claimed)}
    jobs = []
    for delivery_id, attempt_count, event_id, subscription_id in sorted(
        leased, key=lambda row: order[row[0]]
    ):
        url, keys, fmt = targets[subscription_id]
        event_type, body = events[event_id]
        jobs.append(
            Job(
                delivery_id=delivery_id,
                subscription_id=subscription_id,
                url=url,
                keys=keys,
                msg_id=event_id,
                event_type=event_type,
                event_json=body,
                attempt_count=attempt_count,
                format=fmt,
            )
        )
    return jobs, more


def relax_commit(connection: Connection) -> None:
    """PostgreSQL: commit this transaction without waiting for its WAL flush.

    Only for the worker's own bookkeeping (leases, attempt outcomes): if the server
    crashes within the flush delay, a lease is lost (the row is claimed again) or an
    outcome is (the delivery is sent again, same ``webhook-id``), which the outbox's
    at-least-once contract already covers; nothing is corrupted. Events and the outbox
    rows themselves are written with the default, durable commit.
    """
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql("SET LOCAL synchronous_commit = off")


def ids_in(
    connection: Connection, column: ColumnElement[int], ids: list[int]
) -> ColumnElement[bool]:
    """``column IN ids`` with the ids as one parameter (an array on PostgreSQL, a JSON
    array read by ``json_each`` on SQLite), so a long list costs one bound value."""
    if connection.dialect.name == "postgresql":
        return column == any_(bindparam(None, ids, type_=ARRAY(BigInteger)))
    values = select(literal_column("value", BigInteger)).select_from(
        func.json_each(bindparam(None, json.dumps(ids), type_=String))
    )
    return column.in_(values.scalar_subquery())


def signing_keys(
    secret: str, previous: str | None, previous_expires: datetime | None, now: datetime
) -> tuple[bytes, ...]:
    """The current key, plus the previous one while its 24 h overlap lasts."""
    if previous and previous_expires is not None and now < previous_expires:
        return secret_key(secret), secret_key(previous)
    return (secret_key(secret),)


def release(session: Session, delivery_ids: Sequence[int], worker_id: str) -> None:
    """Give unsent claimed rows back to the queue at once (a graceful stop)."""
    if delivery_ids:
        session.execute(
            update(Delivery)
            .where(Delivery.id.in_(list(delivery_ids)), Delivery.locked_by == worker_id)
            .values(lease_until=None, locked_by=None)
        )


ATTEMPT_COLUMNS = (
    "delivery_id",
    "attempted_at",
    "status_code",
    "latency_ms",
    "error_class",
    "response_excerpt",
    "next_attempt_at",
)


def record(session: Session, outcomes: Sequence[Outcome], *, worker_id: str) -> None:
    """Log every attempt and move each delivery and its subscription to the next state."""
    if not outcomes:
        return
    attempts = table_of(DeliveryAttempt)
    connection = session.connection()
    relax_commit(connection)
    insert_rows(
        connection,
        attempts,
        ATTEMPT_COLUMNS,
        [
            (
                o.job.delivery_id,
                o.attempted_at,
                o.status_code,
                round(o.latency_ms, 3),
                o.error_class,
                o.excerpt,
                o.next_attempt_at,
            )
            for o in outcomes
        ],
    )
    table = table_of(Delivery)
    c = table.c
    mine = and_(c.locked_by == worker_id, c.status == PENDING)
    done = {
        "attempt_count": c.attempt_count + 1,
        "lease_until": None,
        "locked_by": None,
    }
    # Successes (nearly all rows) in one statement per status code, finished when
    # their attempt (just inserted) was made; other outcomes row by row.
    by_code: dict[int | None, list[int]] = {}
    for o in outcomes:
        if o.status == SUCCEEDED:
            by_code.setdefault(o.status_code, []).append(o.job.delivery_id)
    attempts_c = attempts.c
    last_attempt = (
        select(func.max(attempts_c.attempted_at))
        .where(attempts_c.delivery_id == c.id)
        .scalar_subquery()
    )
    for code, ids in by_code.items():
        connection.execute(
            update(table)
            .where(ids_in(connection, c.id, ids), mine)
            .values(
                status=SUCCEEDED,
                next_attempt_at=None,
                finished_at=last_attempt,
                last_status=code,
                last_error=None,
                **done,
            )
        )
    others = [o for o in outcomes if o.status != SUCCEEDED]
    if others:
        connection.execute(
            update(table)
            .where(c.id == bindparam("b_id"), mine)
            .values(
                status=bindparam("b_status"),
                next_attempt_at=bindparam("b_next", type_=Delivery.next_attempt_at.type),
                finished_at=bindparam("b_finished", type_=Delivery.finished_at.type),
                last_status=bindparam("b_code"),
                last_error=bindparam("b_error"),
                **done,
            ),
            [
                {
                    "b_id": o.job.delivery_id,
                    "b_status": o.status,
                    "b_next": o.next_attempt_at,
                    "b_finished": o.attempted_at if o.status == FAILED else None,
                    "b_code": o.status_code,
                    "b_error": _error_text(o),
                }
                for o in others
            ],
        )
    _update_subscriptions(session, outcomes)


def _error_text(outcome: Outcome) -> str | None:
    if outcome.status == SUCCEEDED:
        return None
    if outcome.error_class is not None:
        return f"{outcome.error_class}: {outcome.excerpt or ''}"[:500]
    return f"HTTP {outcome.status_code}"


def _update_subscriptions(session: Session, outcomes: Sequence[Outcome]) -> None:
    now = max(o.attempted_at for o in outcomes)
    succeeded = {o.job.subscription_id for o in outcomes if o.status == SUCCEEDED}
    failing = {o.job.subscription_id for o in outcomes if o.status != SUCCEEDED} - succeeded
    gone = {o.job.subscription_id: o.attempted_at for o in outcomes if o.gone}
    subscriptions = table_of(Subscription)
    if succeeded:
        connection = session.connection()
        session.execute(
            update(subscriptions)
            .where(
                ids_in(connection, subscriptions.c.id, list(succeeded)),
                subscriptions.c.failing_since.is_not(None),
            )
            .values(failing_since=None)
        )
    if failing:
        session.execute(
            update(Subscription)
            .where(Subscription.id.in_(failing), Subscription.failing_since.is_(None))
            .values(failing_since=now)
        )
        for subscription in session.scalars(
            select(Subscription).where(Subscription.id.in_(failing), Subscription.enabled.is_(True))
        ):
            if subscription.id not in gone and should_disable(subscription.failing_since, now):
                _disable(session, subscription, now, "every delivery failed for 5 days")
    for subscription_id, when in gone.items():
        found = session.get(Subscription, subscription_id)
        if found is not None and found.enabled:
            _disable(session, found, when, "the endpoint answered 410 Gone")


def _disable(session: Session, subscription: Subscription, now: datetime, why: str) -> None:
    subscription.enabled = False
    subscription.disabled_reason = f"{why} (disabled {now.isoformat(timespec='seconds')})"
    subscription.updated_at = now
    session.flush()
    repository.cancel_pending(session, [subscription.id], now)
