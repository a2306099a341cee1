"""SQL behind the status page and the metrics: read-only, cheap aggregates.

The webhook tables belong to ``app.webhooks`` and may be absent from an older store
(or a store not yet migrated), so every query on them first checks the tables exist
and answers ``None`` when they do not.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import ColumnElement, case, func, inspect, select
from sqlalchemy.orm import Session

from app.market.models import PollResult, PollRun
from app.signals.models import Event
from app.webhooks.models import PENDING, Delivery, DeliveryAttempt, Subscription
from app.webhooks.service import PRIVATE_TYPES

WEBHOOK_TABLES = ("subscriptions", "deliveries", "delivery_attempts")
_ERROR_CLASS = re.compile(r"[A-Za-z_][A-Za-z0-9_.]{0,99}")


def aware(moment: datetime) -> datetime:
    """SQLite hands timestamps back naive; every one we store is UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _public_event() -> ColumnElement[bool]:
    """Market facts only: ``test`` and ``snapshot`` events are one owner's deliveries."""
    return Event.type.not_in(sorted(PRIVATE_TYPES))


def recent_events(session: Session, limit: int = 12) -> list[Event]:
    """The newest facts by session (a backfill stores history with one ``created_at``)."""
    query = (
        select(Event)
        .where(_public_event())
        .order_by(Event.session.desc(), Event.created_at.desc(), Event.id)
    )
    return list(session.scalars(query.limit(limit)))


def events_by_type(session: Session) -> dict[str, int]:
    rows = session.execute(
        select(Event.type, func.count()).where(_public_event()).group_by(Event.type)
    ).tuples()
    return {kind: int(count) for kind, count in rows}


def polls_by_status(session: Session) -> dict[str, int]:
    rows = session.execute(select(PollRun.status, func.count()).group_by(PollRun.status)).tuples()
    return {status: int(count) for status, count in rows}


def poll_durations(session: Session) -> list[float]:
    """Seconds of every finished poll run (a few per trading day: small)."""
    rows = session.execute(
        select(PollRun.started_at, PollRun.finished_at).where(PollRun.finished_at.is_not(None))
    ).tuples()
    return [
        (aware(finished) - aware(started)).total_seconds()
        for started, finished in rows
        if finished is not None
    ]


def sessions_ingested(session: Session) -> dict[str, tuple[int, int]]:
    """Sessions added and revised by polls, per symbol."""
    rows = session.execute(
        select(
            PollResult.symbol, func.sum(PollResult.added), func.sum(PollResult.revised)
        ).group_by(PollResult.symbol)
    ).tuples()
    return {symbol: (int(added or 0), int(revised or 0)) for symbol, added, revised in rows}


def has_webhook_tables(session: Session) -> bool:
    inspector = inspect(session.connection())
    return all(inspector.has_table(name) for name in WEBHOOK_TABLES)


@dataclass(frozen=True)
class DeliveryFacts:
    attempts: int
    succeeded: int
    backlog: int
    due: int
    oldest_due: datetime | None
    subscriptions: int
    failing: list[tuple[int, datetime | None, str | None]]
    disabled: list[tuple[int, datetime | None, str | None]]


def _is_2xx() -> ColumnElement[bool]:
    return DeliveryAttempt.status_code.between(200, 299)


def delivery_facts(session: Session, now: datetime, window: timedelta) -> DeliveryFacts | None:
    """Delivery health over ``window``; None when the webhook tables are absent."""
    if not has_webhook_tables(session):
        return None
    attempts, succeeded = session.execute(
        select(
            func.count(),
            func.coalesce(func.sum(case((_is_2xx(), 1), else_=0)), 0),
        ).where(DeliveryAttempt.attempted_at >= now - window)
    ).one()
    backlog, due, oldest_due = session.execute(
        select(
            func.count(),
            func.coalesce(func.sum(case((Delivery.next_attempt_at <= now, 1), else_=0)), 0),
            func.min(case((Delivery.next_attempt_at <= now, Delivery.created_at))),
        ).where(Delivery.status == PENDING)
    ).one()
    subscriptions = int(session.scalar(select(func.count()).select_from(Subscription)) or 0)
    failing = session.execute(
        select(Subscription.id, Subscription.failing_since, Subscription.disabled_reason)
        .where(Subscription.enabled.is_(True), Subscription.failing_since.is_not(None))
        .order_by(Subscription.failing_since, Subscription.id)
    ).tuples()
    disabled = session.execute(
        select(Subscription.id, Subscription.updated_at, Subscription.disabled_reason)
        .where(Subscription.enabled.is_(False))
        .order_by(Subscription.updated_at.desc(), Subscription.id)
    ).tuples()
    return DeliveryFacts(
        attempts=int(attempts),
        succeeded=int(succeeded),
        backlog=int(backlog),
        due=int(due),
        oldest_due=None if oldest_due is None else aware(oldest_due),
        subscriptions=subscriptions,
        failing=[(i, since, _last_error(session, i)) for i, since, _ in failing],
        disabled=list(disabled),
    )


def _last_error(session: Session, subscription_id: int) -> str | None:
    row = session.execute(
        select(Delivery.last_status, Delivery.last_error)
        .where(Delivery.subscription_id == subscription_id, Delivery.last_error.is_not(None))
        .order_by(Delivery.id.desc())
        .limit(1)
    ).first()
    return None if row is None else public_error(row[0], row[1])


def public_error(status_code: int | None, last_error: str | None) -> str | None:
    """What the public page may say about a failed delivery: the HTTP status, or the
    error class alone. The rest of ``last_error`` (``ClientConnectorError: Cannot
    connect to host example.internal:8950``) names the receiver: it stays in the
    owner's delivery log."""
    if status_code is not None:
        return f"HTTP {status_code}"
    if last_error is None:
        return None
    error_class = last_error.partition(":")[0].strip()
    return error_class if _ERROR_CLASS.fullmatch(error_class) else "delivery failed"


def deliveries_by_status(session: Session) -> dict[str, int] | None:
    if not has_webhook_tables(session):
        return None
    rows = session.execute(select(Delivery.status, func.count()).group_by(Delivery.status)).tuples()
    return {status: int(count) for status, count in rows}


def attempts_by_outcome(session: Session) -> dict[str, int]:
    """Attempts as ``success`` (2xx), ``http_error`` (another status) or ``error`` (none)."""
    outcome = case(
        (_is_2xx(), "success"),
        (DeliveryAttempt.status_code.is_not(None), "http_error"),
        else_="error",
    )
    rows = session.execute(select(outcome, func.count()).group_by(outcome)).tuples()
    return {str(kind): int(count) for kind, count in rows}


def latency_histogram(
    session: Session, bounds_seconds: Sequence[float]
) -> tuple[list[int], int, float]:
    """Cumulative attempt counts at each bound, the total count and the sum in seconds."""
    columns = [
        func.coalesce(func.sum(case((DeliveryAttempt.latency_ms <= bound * 1000.0, 1), else_=0)), 0)
        for bound in bounds_seconds
    ]
    row = session.execute(
        select(func.count(), func.coalesce(func.sum(DeliveryAttempt.latency_ms), 0.0), *columns)
    ).one()
    return [int(value) for value in row[2:]], int(row[0]), float(row[1]) / 1000.0
