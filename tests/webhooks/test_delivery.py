"""The worker against a real local receiver: signatures, retries, 410, 5-day disable,
rotation, SSRF at delivery time, and one hanging receiver among many."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta

from sqlalchemy import select

from app.db.engine import Database
from app.settings import Settings
from app.webhooks import service
from app.webhooks.models import Delivery, DeliveryAttempt, Subscription
from app.webhooks.worker import DeliveryWorker
from tests.support.wait import until
from tests.webhooks.conftest import (
    MovableClock,
    Receiver,
    make_event,
    store_and_enqueue,
    subscribe,
    subscription,
    verify,
)


def _worker(db: Database, settings: Settings, clock: MovableClock, **kw: object) -> DeliveryWorker:
    return DeliveryWorker(db, settings, clock=clock, random=lambda: 0.5, **kw)  # type: ignore[arg-type]


async def _run_once(worker: DeliveryWorker) -> int:
    async with worker:
        return await worker.run_once()


def _deliveries(db: Database) -> list[Delivery]:
    with db.transaction(write=False) as session:
        return list(session.scalars(select(Delivery).order_by(Delivery.id)))


def _attempts(db: Database, delivery_id: int) -> list[DeliveryAttempt]:
    with db.transaction(write=False) as session:
        query = select(DeliveryAttempt).where(DeliveryAttempt.delivery_id == delivery_id)
        return list(session.scalars(query.order_by(DeliveryAttempt.id)))


def test_enqueue_matches_type_symbol_and_rule(db: Database, clock: MovableClock) -> None:
    now = clock()
    every, _ = subscribe(db, "http://127.0.0.1:9/all", now=now)
    rut_golden, _ = subscribe(
        db, "http://127.0.0.1:9/g", now=now, event_types=["golden_cross"], symbols=["^rut"]
    )
    ema, _ = subscribe(
        db, "http://127.0.0.1:9/e", now=now, rule={"fast": 20, "slow": 50, "type": "ema"}
    )
    off, _ = subscribe(db, "http://127.0.0.1:9/off", now=now, enabled=False)
    events = [
        make_event("^RUT", "golden_cross", now=now),
        make_event("^GSPC", "death_cross", now=now),
        make_event("^RUT", "golden_cross", rule="ema:20:50", now=now),
        make_event("^RUT", "peak", rule="zigzag:20:20", now=now),
        make_event("^IXIC", "golden_cross", date(2001, 1, 2), live=False, now=now),
    ]
    assert store_and_enqueue(db, events, now) == 6
    pairs = {(d.event_id, d.subscription_id) for d in _deliveries(db)}
    golden, death, ema_golden, peak, _history = (e.id for e in events)
    assert pairs == {
        (golden, every),
        (golden, rut_golden),
        (death, every),
        (ema_golden, ema),
        (peak, every),
        (peak, ema),
    }
    assert off not in {s for _e, s in pairs}
    with db.transaction() as session:
        assert service.enqueue_for_events(session, events[:2], now=now) == 0
        assert service.subscription_rules(session) == {(20, 50, "ema")}


def test_retraction_reaches_those_sent_the_original(db: Database, clock: MovableClock) -> None:
    now = clock()
    golden_only, _ = subscribe(db, "http://127.0.0.1:9/g", now=now, event_types=["golden_cross"])
    deaths_only, _ = subscribe(db, "http://127.0.0.1:9/d", now=now, event_types=["death_cross"])
    original = make_event("^RUT", "golden_cross", now=now)
    store_and_enqueue(db, [original], now)
    retraction = make_event("^RUT", "retracted", rule="retraction", now=now)
    with db.transaction() as session:
        session.add(retraction)
        session.flush()
        stored = session.get(type(original), original.id)
        assert stored is not None
        stored.retracted_by = retraction.id
        assert service.enqueue_for_events(session, [retraction], now=now) == 1
    pairs = {(d.event_id, d.subscription_id) for d in _deliveries(db)}
    assert (retraction.id, golden_only) in pairs
    assert (retraction.id, deaths_only) not in pairs


def test_500_then_recovery_same_id_every_signature_verifies(
    db: Database, local_settings: Settings, clock: MovableClock, receiver: Receiver
) -> None:
    receiver.statuses["/hook"] = [500, 200]
    sub_id, secret = subscribe(db, receiver.url("/hook"), now=clock())
    event = make_event(now=clock())
    store_and_enqueue(db, [event], clock())

    assert asyncio.run(_run_once(_worker(db, local_settings, clock))) == 1
    assert asyncio.run(_run_once(_worker(db, local_settings, clock))) == 0  # not due yet
    clock.advance(6)  # the second attempt is 5 s (±20%) after the first
    assert asyncio.run(_run_once(_worker(db, local_settings, clock))) == 1

    first, second = receiver.at("/hook")
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == event.id
    assert int(second.headers["webhook-timestamp"]) - int(first.headers["webhook-timestamp"]) == 6
    for received in (first, second):
        body = verify(secret, received)
        assert body["type"] == "golden_cross"
        assert body["data"]["id"] == event.id
        assert body["data"]["symbol"] == "^RUT"
    (delivery,) = _deliveries(db)
    assert (delivery.status, delivery.attempt_count, delivery.last_status) == ("succeeded", 2, 200)
    attempts = _attempts(db, delivery.id)
    assert [a.status_code for a in attempts] == [500, 200]
    assert attempts[0].response_excerpt == "answer 500"
    assert attempts[0].next_attempt_at == attempts[0].attempted_at + timedelta(seconds=5)
    assert subscription(db, sub_id).failing_since is None


def test_retry_after_is_honoured(
    db: Database, local_settings: Settings, clock: MovableClock, receiver: Receiver
) -> None:
    receiver.statuses["/busy"] = [429]
    receiver.headers["/busy"] = {"Retry-After": "120"}
    subscribe(db, receiver.url("/busy"), now=clock())
    store_and_enqueue(db, [make_event(now=clock())], clock())
    asyncio.run(_run_once(_worker(db, local_settings, clock)))
    (delivery,) = _deliveries(db)
    assert delivery.next_attempt_at == clock() + timedelta(seconds=120)
    assert delivery.last_status == 429


def test_410_disables_at_once_and_cancels_the_rest(
    db: Database, local_settings: Settings, clock: MovableClock, receiver: Receiver
) -> None:
    receiver.statuses["/gone"] = [410]
    sub_id, _ = subscribe(db, receiver.url("/gone"), now=clock())
    events = [make_event(session=date(2026, 8, d), now=clock()) for d in (20, 21)]
    store_and_enqueue(db, events, clock())
    worker = _worker(db, local_settings, clock, per_endpoint=1)
    assert asyncio.run(_run_once(worker)) == 1
    found = subscription(db, sub_id)
    assert not found.enabled
    assert "410" in (found.disabled_reason or "")
    assert sorted(d.status for d in _deliveries(db)) == ["cancelled", "failed"]
    assert asyncio.run(_run_once(_worker(db, local_settings, clock))) == 0


def test_endpoint_failing_for_five_days_is_disabled(
    db: Database, local_settings: Settings, clock: MovableClock, receiver: Receiver
) -> None:
    receiver.statuses["/down"] = [503]
    sub_id, _ = subscribe(db, receiver.url("/down"), now=clock())
    start = clock()
    store_and_enqueue(db, [make_event(session=date(2026, 8, 17), now=clock())], clock())
    asyncio.run(_run_once(_worker(db, local_settings, clock)))
    assert subscription(db, sub_id).failing_since == start
    clock.advance(4 * 86400)
    store_and_enqueue(db, [make_event(session=date(2026, 8, 18), now=clock())], clock())
    asyncio.run(_run_once(_worker(db, local_settings, clock)))
    assert subscription(db, sub_id).enabled
    clock.advance(86400)
    store_and_enqueue(db, [make_event(session=date(2026, 8, 19), now=clock())], clock())
    asyncio.run(_run_once(_worker(db, local_settings, clock)))
    found = subscription(db, sub_id)
    assert not found.enabled
    assert "5 days" in (found.disabled_reason or "")
    assert {d.status for d in _deliveries(db)} <= {"cancelled", "failed"}


def test_schedule_exhausted_marks_failed(
    db: Database, local_settings: Settings, clock: MovableClock, receiver: Receiver
) -> None:
    receiver.statuses["/err"] = [500]
    subscribe(db, receiver.url("/err"), now=clock())
    store_and_enqueue(db, [make_event(now=clock())], clock())
    for _ in range(8):
        assert asyncio.run(_run_once(_worker(db, local_settings, clock))) == 1
        (delivery,) = _deliveries(db)
        if delivery.next_attempt_at is not None and delivery.status == "pending":
            clock.now = delivery.next_attempt_at
    (delivery,) = _deliveries(db)
    assert (delivery.status, delivery.attempt_count) == ("failed", 8)
    assert len(receiver.at("/err")) == 8


def test_rotated_secret_signs_alongside_for_24_hours(
    db: Database, local_settings: Settings, clock: MovableClock, receiver: Receiver
) -> None:
    sub_id, old = subscribe(db, receiver.url("/rot"), now=clock())
    with db.transaction() as session:
        found = session.get(type(subscription(db, sub_id)), sub_id)
        assert found is not None
        new = service.rotate_secret(session, found, now=clock())
    store_and_enqueue(db, [make_event(now=clock())], clock())
    asyncio.run(_run_once(_worker(db, local_settings, clock)))
    (received,) = receiver.at("/rot")
    assert len(received.headers["webhook-signature"].split(" ")) == 2
    assert verify(old, received)["type"] == "golden_cross"
    assert verify(new, received)["type"] == "golden_cross"

    clock.advance(24 * 3600 + 1)
    store_and_enqueue(db, [make_event(session=date(2026, 8, 24), now=clock())], clock())
    asyncio.run(_run_once(_worker(db, local_settings, clock)))
    later = receiver.at("/rot")[1]
    assert len(later.headers["webhook-signature"].split(" ")) == 1


def test_private_address_refused_at_delivery_time(
    db: Database, settings: Settings, clock: MovableClock, receiver: Receiver
) -> None:
    subscribe(db, "http://internal.example:8080/hook", now=clock())
    store_and_enqueue(db, [make_event(now=clock())], clock())
    worker = _worker(db, settings, clock, resolver=lambda host, port: ["10.0.0.1"])
    asyncio.run(_run_once(worker))
    (delivery,) = _deliveries(db)
    (attempt,) = _attempts(db, delivery.id)
    assert attempt.error_class == "UnsafeUrl"
    assert "10.0.0.1" in (attempt.response_excerpt or "")
    assert delivery.status == "pending"
    assert receiver.received == []


def test_connections_go_to_the_address_the_guard_checked(
    db: Database, settings: Settings, clock: MovableClock, receiver: Receiver
) -> None:
    """The check runs in the HTTP client's own resolver: the connection is made to the
    very address that passed it (no second lookup a rebinding DNS could answer)."""
    port = receiver.base_url.rsplit(":", 1)[1]
    subscribe(db, f"http://hooks.invalid:{port}/via-resolver", now=clock())
    subscribe(db, f"http://rebind.invalid:{port}/rebind", now=clock())
    store_and_enqueue(db, [make_event(now=clock())], clock())
    answers = {"hooks.invalid": ["127.0.0.1"], "rebind.invalid": ["127.0.0.1"]}
    lookups: list[str] = []

    def resolver(host: str, _port: int) -> list[str]:
        lookups.append(host)
        return answers[host]

    # Private addresses allowed: both are delivered through the resolver's answer
    # (".invalid" never resolves in real DNS).
    allowed = settings.model_copy(update={"webhook_allow_private": True})
    assert asyncio.run(_run_once(_worker(db, allowed, clock, resolver=resolver))) == 2
    assert {r.path for r in receiver.received} == {"/via-resolver", "/rebind"}
    assert sorted(lookups) == ["hooks.invalid", "rebind.invalid"]

    # Not allowed: the same answer is refused when the connection is opened.
    _retry_all(db, clock)
    asyncio.run(_run_once(_worker(db, settings, clock, resolver=resolver)))
    assert len(receiver.received) == 2  # nothing more was sent
    attempts = sorted((a for d in _deliveries(db) for a in _attempts(db, d.id)), key=lambda a: a.id)
    refused = attempts[-2:]
    assert {a.error_class for a in refused} == {"UnsafeUrl"}
    assert all("127.0.0.1" in (a.response_excerpt or "") for a in refused)


def _retry_all(db: Database, clock: MovableClock) -> None:
    with db.transaction() as session:
        for delivery in session.scalars(select(Delivery)):
            delivery.status, delivery.next_attempt_at = "pending", clock()


def test_a_claimed_row_that_waited_too_long_goes_back_unsent(
    db: Database, local_settings: Settings, clock: MovableClock, receiver: Receiver
) -> None:
    """Rows claimed ahead start only while their lease outlasts a whole send; one that
    waited longer is released (due again at once), never sent on an ending lease."""
    receiver.delay = 0.3
    for n in range(3):
        subscribe(db, receiver.url(f"/slow/{n}"), now=clock())
    store_and_enqueue(db, [make_event(now=clock())], clock())
    # One send at a time, each taking 0.3 s; a row must start within 0.05 s of its
    # claim (what a lease 0.05 s longer than a send plus the margin would allow).
    worker = _worker(db, local_settings, clock, concurrency=1, timeout_seconds=1)
    worker.dispatcher.start_by = 0.05
    released: list[int] = []
    release = worker.store.release

    def spy(ids: list[int]) -> None:
        released.extend(ids)
        release(ids)

    worker.store.release = spy  # type: ignore[method-assign]

    async def scenario() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(worker.run_forever(stop, grace_seconds=2))
        try:
            await until(
                lambda: all(d.status == "succeeded" for d in _deliveries(db)),
                30,
                "every delivery to succeed",
                in_thread=True,
            )
        finally:
            stop.set()
            await task

    asyncio.run(scenario())
    assert released  # rows did wait too long and went back
    assert len(receiver.received) == 3
    assert len({r.path for r in receiver.received}) == 3  # each sent once
    for delivery in _deliveries(db):
        assert [a.status_code for a in _attempts(db, delivery.id)] == [200]


def test_a_url_the_client_cannot_parse_and_a_nul_in_the_answer_are_recorded(
    db: Database, local_settings: Settings, clock: MovableClock, receiver: Receiver
) -> None:
    """Nothing an endpoint stores or answers leaves a row leased and unrecorded: an
    unparseable URL is an ``UnsafeUrl`` attempt, and a NUL byte in the answer (which
    PostgreSQL text cannot hold) is dropped from the excerpt."""
    bad, _ = subscribe(db, receiver.url("/placeholder"), now=clock())
    with db.transaction() as session:
        stored = session.get(Subscription, bad)
        assert stored is not None
        stored.url = "http://exa mple.com:99999/x"  # stored before validation existed
    subscribe(db, receiver.url("/nul"), now=clock())
    receiver.bodies["/nul"] = b"ok\x00done"
    store_and_enqueue(db, [make_event(now=clock())], clock())
    assert asyncio.run(_run_once(_worker(db, local_settings, clock))) == 2
    attempts = {d.subscription_id: _attempts(db, d.id) for d in _deliveries(db)}
    (refused,) = attempts[bad]
    assert refused.error_class == "UnsafeUrl"
    (answered,) = next(a for sid, a in attempts.items() if sid != bad)
    assert (answered.status_code, answered.response_excerpt) == (200, "okdone")
