"""Retractions fan out like the events they retract: by symbol and, for crosses, by rule."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import select

from app.db.engine import Database
from app.signals.models import Event, event_id
from app.webhooks import service
from app.webhooks.models import Delivery
from tests.webhooks.conftest import MovableClock, make_event, subscribe


def _retraction_of(original: Event, now: datetime) -> Event:
    """As detection writes it (``app.signals.events._retract``)."""
    return Event(
        id=event_id(original.symbol, original.id, "retracted", original.session),
        type="retracted",
        symbol=original.symbol,
        session=original.session,
        rule=original.rule,
        live=True,
        data={
            "original_id": original.id,
            "original_type": original.type,
            "session": original.session.isoformat(),
            "reason": "revised closes no longer imply this event",
        },
        created_at=now,
    )


def _retract(db: Database, original: Event, now: datetime) -> tuple[Event, int]:
    retraction = _retraction_of(original, now)
    with db.transaction() as session:
        session.add(retraction)
        session.flush()
        stored = session.get(Event, original.id)
        assert stored is not None
        stored.retracted_by = retraction.id
        return retraction, service.enqueue_for_events(session, [retraction], now=now)


def _receivers(db: Database, event: Event) -> set[int]:
    with db.transaction(write=False) as session:
        query = select(Delivery.subscription_id).where(Delivery.event_id == event.id)
        return set(session.scalars(query))


def test_a_cross_retraction_skips_subscriptions_of_another_rule(
    db: Database, clock: MovableClock
) -> None:
    now = clock()
    default, _ = subscribe(db, "http://127.0.0.1:9/default", now=now)
    ema, _ = subscribe(
        db, "http://127.0.0.1:9/ema", now=now, rule={"fast": 20, "slow": 50, "type": "ema"}
    )
    retractions_only, _ = subscribe(
        db, "http://127.0.0.1:9/r", now=now, event_types=["retracted"], symbols=["^RUT"]
    )
    # Stored without deliveries (found in history): only rule matching can route its
    # retraction, not "was sent the original".
    original = make_event("^RUT", "golden_cross", date(2026, 8, 3), live=False, now=now)
    with db.transaction() as session:
        session.add(original)
    retraction, written = _retract(db, original, now)
    assert _receivers(db, retraction) == {default, retractions_only}
    assert written == 2
    assert ema not in _receivers(db, retraction)


def test_the_retraction_of_an_ema_cross_reaches_only_that_rule(
    db: Database, clock: MovableClock
) -> None:
    now = clock()
    default, _ = subscribe(db, "http://127.0.0.1:9/default", now=now)
    ema, _ = subscribe(
        db, "http://127.0.0.1:9/ema", now=now, rule={"fast": 20, "slow": 50, "type": "ema"}
    )
    original = make_event("^RUT", "death_cross", date(2026, 8, 4), rule="ema:20:50", now=now)
    with db.transaction() as session:
        session.add(original)
    retraction, _written = _retract(db, original, now)
    assert _receivers(db, retraction) == {ema}
    assert default not in _receivers(db, retraction)


def test_a_turn_retraction_reaches_every_rule(db: Database, clock: MovableClock) -> None:
    now = clock()
    default, _ = subscribe(db, "http://127.0.0.1:9/default", now=now)
    ema, _ = subscribe(
        db, "http://127.0.0.1:9/ema", now=now, rule={"fast": 20, "slow": 50, "type": "ema"}
    )
    golden_only, _ = subscribe(db, "http://127.0.0.1:9/g", now=now, event_types=["golden_cross"])
    peak = make_event("^RUT", "peak", date(2026, 8, 5), rule="zigzag:20:20", now=now)
    with db.transaction() as session:
        session.add(peak)
    retraction, _written = _retract(db, peak, now)
    assert _receivers(db, retraction) == {default, ema}
    assert golden_only not in _receivers(db, retraction)
