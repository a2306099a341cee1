"""The delivery queue, the worker's side of the outbox: claim due deliveries under a
lease, record attempt outcomes, release rows unsent. (Writing the rows is
``service.enqueue_for_events``; reading them for people is ``repository``.)

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
    Connection,
    and_,
    bindparam,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session

from app.db.base import table_of
from app.db.bulk import ids_in, insert_rows
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
from app.webhooks.signing import signing_keys


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
    deliveries, subscriptions = table_of(Delivery).c, table_of(Subscription).c
    due = and_(
        deliveries.status == PENDING,
        deliveries.next_attempt_at <= now,
        or_(deliveries.lease_until.is_(None), deliveries.lease_until < now),
    )
    full = [sid for sid, count in held.items() if count >= per_subscription]
    if full:
        due = and_(due, ~ids_in(connection, deliveries.subscription_id, full))
    # Lock a window of due rows, keep at most ``per_subscription`` of each subscription,
    # lease those; the rest are unlocked again at commit. (A window function in the
    # locking query made PostgreSQL plan it badly on fresh tables.)
    candidates = connection.execute(
        select(deliveries.id, deliveries.subscription_id)
        .where(due)
        .order_by(deliveries.next_attempt_at, deliveries.id)
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
        update(table_of(Delivery))
        .where(ids_in(connection, deliveries.id, claimed))
        .values(lease_until=now + lease, locked_by=worker_id)
        .returning(
            deliveries.id, deliveries.attempt_count, deliveries.event_id, deliveries.subscription_id
        )
    ).all()
    targets = {
        row.id: (
            row.url,
            signing_keys(row.secret, row.previous_secret, row.previous_secret_expires_at, now),
            row.format,
        )
        for row in connection.execute(
            select(
                subscriptions.id,
                subscriptions.url,
                subscriptions.secret,
                subscriptions.previous_secret,
                subscriptions.previous_secret_expires_at,
                subscriptions.format,
            ).where(
                ids_in(connection, subscriptions.id, list({row.subscription_id for row in leased}))
            )
        )
    }
    events = {
        event.id: (event.type, event_json(event))
        for event in session.scalars(
            select(Event).where(Event.id.in_({row.event_id for row in leased}))
        )
    }
    order = {delivery_id: i for i, delivery_id in enumerate(claimed)}
    jobs = []
    for delivery_id, attempt_count, event_id, subscription_id in sorted(
        leased, key=lambda row: order[row.id]
    ):
        url, keys, webhook_format = targets[subscription_id]
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
                format=webhook_format,
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
                outcome.job.delivery_id,
                outcome.attempted_at,
                outcome.status_code,
                round(outcome.latency_ms, 3),
                outcome.error_class,
                outcome.excerpt,
                outcome.next_attempt_at,
            )
            for outcome in outcomes
        ],
    )
    table = table_of(Delivery)
    deliveries = table.c
    mine = and_(deliveries.locked_by == worker_id, deliveries.status == PENDING)
    done = {
        "attempt_count": deliveries.attempt_count + 1,
        "lease_until": None,
        "locked_by": None,
    }
    # Successes (nearly all rows) in one statement per status code, finished when
    # their attempt (just inserted) was made; other outcomes row by row.
    by_code: dict[int | None, list[int]] = {}
    for outcome in outcomes:
        if outcome.status == SUCCEEDED:
            by_code.setdefault(outcome.status_code, []).append(outcome.job.delivery_id)
    last_attempt = (
        select(func.max(attempts.c.attempted_at))
        .where(attempts.c.delivery_id == deliveries.id)
        .scalar_subquery()
    )
    for code, ids in by_code.items():
        connection.execute(
            update(table)
            .where(ids_in(connection, deliveries.id, ids), mine)
            .values(
                status=SUCCEEDED,
                next_attempt_at=None,
                finished_at=last_attempt,
                last_status=code,
                last_error=None,
                **done,
            )
        )
    others = [outcome for outcome in outcomes if outcome.status != SUCCEEDED]
    if others:
        connection.execute(
            update(table)
            .where(deliveries.id == bindparam("b_id"), mine)
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
                    "b_id": outcome.job.delivery_id,
                    "b_status": outcome.status,
                    "b_next": outcome.next_attempt_at,
                    "b_finished": outcome.attempted_at if outcome.status == FAILED else None,
                    "b_code": outcome.status_code,
                    "b_error": _error_text(outcome),
                }
                for outcome in others
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
    now = max(outcome.attempted_at for outcome in outcomes)
    succeeded = {outcome.job.subscription_id for outcome in outcomes if outcome.status == SUCCEEDED}
    failing = {
        outcome.job.subscription_id for outcome in outcomes if outcome.status != SUCCEEDED
    } - succeeded
    gone = {
        outcome.job.subscription_id: outcome.attempted_at for outcome in outcomes if outcome.gone
    }
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
