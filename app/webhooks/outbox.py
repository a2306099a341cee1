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
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Table, and_, bindparam, insert, or_, select, update
from sqlalchemy.orm import Session

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
    """The ``Event`` object of DESIGN §8, serialised once per event."""
    return json.dumps(
        {
            "id": event.id,
            "type": event.type,
            "symbol": event.symbol,
            "session": event.session.isoformat(),
            "live": event.live,
            "data": event.data,
            "created_at": event.created_at.isoformat(),
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
    exclude: Collection[int] = (),
) -> list[Job]:
    """Lease up to ``limit`` due deliveries to ``worker_id`` and load what sending needs."""
    due = and_(
        Delivery.status == PENDING,
        Delivery.next_attempt_at <= now,
        or_(Delivery.lease_until.is_(None), Delivery.lease_until < now),
    )
    if exclude:
        due = and_(due, Delivery.subscription_id.not_in(list(exclude)))
    # Lock a window of due rows, keep at most ``per_subscription`` of each subscription,
    # lease those; the rest are unlocked again at commit. (A window function in the
    # locking query made PostgreSQL plan it badly on fresh tables.)
    candidates = session.execute(
        select(Delivery.id, Delivery.subscription_id)
        .where(due)
        .order_by(Delivery.next_attempt_at, Delivery.id)
        .limit(limit * 4)
        .with_for_update(skip_locked=True)
    ).all()
    claimed: list[int] = []
    taken: dict[int, int] = {}
    for delivery_id, subscription_id in candidates:
        if taken.get(subscription_id, 0) < per_subscription:
            taken[subscription_id] = taken.get(subscription_id, 0) + 1
            claimed.append(delivery_id)
            if len(claimed) == limit:
                break
    if claimed:
        session.execute(
            update(Delivery)
            .where(Delivery.id.in_(claimed))
            .values(lease_until=now + lease, locked_by=worker_id),
            execution_options={"synchronize_session": False},
        )
    if not claimed:
        return []
    rows = session.execute(
        select(Delivery.id, Delivery.attempt_count, Subscription, Event)
        .join(Subscription, Subscription.id == Delivery.subscription_id)
        .join(Event, Event.id == Delivery.event_id)
        .where(Delivery.id.in_(claimed))
        .order_by(Delivery.next_attempt_at, Delivery.id)
    ).all()
    bodies: dict[str, bytes] = {}
    jobs = []
    for delivery_id, attempt_count, subscription, event in rows:
        if event.id not in bodies:
            bodies[event.id] = event_json(event)
        jobs.append(
            Job(
                delivery_id=delivery_id,
                subscription_id=subscription.id,
                url=subscription.url,
                keys=signing_keys(subscription, now),
                msg_id=event.id,
                event_type=event.type,
                event_json=bodies[event.id],
                attempt_count=attempt_count,
            )
        )
    return jobs


def signing_keys(subscription: Subscription, now: datetime) -> tuple[bytes, ...]:
    """The current key, plus the previous one while its 24 h overlap lasts."""
    keys = [secret_key(subscription.secret)]
    expires = subscription.previous_secret_expires_at
    if subscription.previous_secret and expires is not None and now < expires:
        keys.append(secret_key(subscription.previous_secret))
    return tuple(keys)


def release(session: Session, delivery_ids: Sequence[int], worker_id: str) -> None:
    """Give unsent claimed rows back to the queue at once (a graceful stop)."""
    if delivery_ids:
        session.execute(
            update(Delivery)
            .where(Delivery.id.in_(list(delivery_ids)), Delivery.locked_by == worker_id)
            .values(lease_until=None, locked_by=None)
        )


def record(session: Session, outcomes: Sequence[Outcome], *, worker_id: str) -> None:
    """Log every attempt and move each delivery and its subscription to the next state."""
    if not outcomes:
        return
    session.execute(
        insert(DeliveryAttempt),
        [
            {
                "delivery_id": o.job.delivery_id,
                "attempted_at": o.attempted_at,
                "status_code": o.status_code,
                "latency_ms": round(o.latency_ms, 3),
                "error_class": o.error_class,
                "response_excerpt": o.excerpt,
                "next_attempt_at": o.next_attempt_at,
            }
            for o in outcomes
        ],
    )
    table = Delivery.__table__
    assert isinstance(table, Table)
    session.connection().execute(
        update(table)
        .where(
            table.c.id == bindparam("b_id"),
            table.c.locked_by == worker_id,
            table.c.status == PENDING,
        )
        .values(
            status=bindparam("b_status"),
            attempt_count=table.c.attempt_count + 1,
            next_attempt_at=bindparam("b_next", type_=Delivery.next_attempt_at.type),
            finished_at=bindparam("b_finished", type_=Delivery.finished_at.type),
            last_status=bindparam("b_code"),
            last_error=bindparam("b_error"),
            lease_until=None,
            locked_by=None,
        ),
        [
            {
                "b_id": o.job.delivery_id,
                "b_status": o.status,
                "b_next": o.next_attempt_at,
                "b_finished": o.attempted_at if o.status in (SUCCEEDED, FAILED) else None,
                "b_code": o.status_code,
                "b_error": _error_text(o),
            }
            for o in outcomes
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
    if succeeded:
        session.execute(
            update(Subscription)
            .where(Subscription.id.in_(succeeded), Subscription.failing_since.is_not(None))
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
