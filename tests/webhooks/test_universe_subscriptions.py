"""A subscription limited to a universe: events (and retractions) of its members when
each event is written; with ``symbols`` too, of symbols in both; replay and snapshot
read the members as they are when asked."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event as sa_event
from sqlalchemy import select

from app.auth.service import create_key
from app.db.engine import Database
from app.market import universes
from app.settings import Settings
from app.signals.models import Event, event_id
from app.webhooks import router as webhooks_router
from app.webhooks import service
from app.webhooks.models import Delivery, Subscription
from tests.webhooks.conftest import MovableClock, make_event, store_and_enqueue, subscribe

D1, D2, D3 = date(2026, 8, 19), date(2026, 8, 20), date(2026, 8, 21)


def _universe(db: Database, name: str, symbols: list[str], now: datetime) -> None:
    with db.transaction() as session:
        universes.replace(session, name, symbols, now=now)


def _receivers(db: Database, event: Event) -> set[int]:
    with db.transaction(write=False) as session:
        query = select(Delivery.subscription_id).where(Delivery.event_id == event.id)
        return set(session.scalars(query))


def test_a_universe_subscription_gets_only_its_members_events(
    db: Database, clock: MovableClock
) -> None:
    now = clock()
    _universe(db, "mine", ["CRDO", "IONQ"], now)
    _universe(db, "other", ["AAPL"], now)
    everything, _ = subscribe(db, "http://127.0.0.1:9/all", now=now)
    mine, _ = subscribe(db, "http://127.0.0.1:9/mine", now=now, universe="Mine")
    both, _ = subscribe(
        db, "http://127.0.0.1:9/both", now=now, universe="mine", symbols=["CRDO", "AAPL"]
    )
    crdo, ionq, aapl = (make_event(s, session=D1, now=now) for s in ("CRDO", "IONQ", "AAPL"))
    assert store_and_enqueue(db, [crdo, ionq, aapl], now) == 3 + 2 + 1
    assert _receivers(db, crdo) == {everything, mine, both}
    assert _receivers(db, ionq) == {everything, mine}, "IONQ is not in both's list"
    assert _receivers(db, aapl) == {everything}, "AAPL is in both's list, not its universe"


def test_membership_counts_when_the_event_is_written(db: Database, clock: MovableClock) -> None:
    now = clock()
    _universe(db, "mine", ["CRDO"], now)
    mine, _ = subscribe(db, "http://127.0.0.1:9/mine", now=now, universe="mine")
    before = make_event("AAPL", session=D1, now=now)
    store_and_enqueue(db, [before], now)
    assert _receivers(db, before) == set()

    _universe(db, "mine", ["CRDO", "AAPL"], now)
    added = make_event("AAPL", session=D2, now=now)
    store_and_enqueue(db, [added], now)
    assert _receivers(db, added) == {mine}
    assert _receivers(db, before) == set(), "an event written before is not sent later"

    _universe(db, "mine", ["CRDO"], now)
    dropped = make_event("AAPL", session=D3, now=now)
    store_and_enqueue(db, [dropped], now)
    assert _receivers(db, dropped) == set()

    with db.transaction() as session:
        universes.remove(session, "mine")
    gone = make_event("CRDO", session=D3, now=now)
    store_and_enqueue(db, [gone], now)
    assert _receivers(db, gone) == set(), "a deleted universe has no members"


def _retract(db: Database, original: Event, now: datetime) -> Event:
    """As detection writes a retraction (``app.signals.events``), with its fan-out."""
    retraction = Event(
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
    with db.transaction() as session:
        session.add(retraction)
        session.flush()
        stored = session.get(Event, original.id)
        assert stored is not None
        stored.retracted_by = retraction.id
        service.enqueue_for_events(session, [retraction], now=now)
    return retraction


def test_retractions_follow_membership_or_the_original_they_retract(
    db: Database, clock: MovableClock
) -> None:
    now = clock()
    _universe(db, "mine", ["CRDO", "IONQ"], now)
    mine, _ = subscribe(db, "http://127.0.0.1:9/mine", now=now, universe="mine")
    # Found in history (no deliveries): only membership can route their retractions.
    member, outsider = (make_event(s, session=D1, live=False, now=now) for s in ("CRDO", "AAPL"))
    # Sent live while IONQ was a member; IONQ leaves before the retraction.
    sent = make_event("IONQ", session=D1, now=now)
    store_and_enqueue(db, [member, outsider, sent], now)
    assert _receivers(db, sent) == {mine}
    _universe(db, "mine", ["CRDO"], now)

    assert _receivers(db, _retract(db, member, now)) == {mine}
    assert _receivers(db, _retract(db, outsider, now)) == set()
    assert _receivers(db, _retract(db, sent, now)) == {mine}, "it was sent the original"


def test_the_fan_out_reads_memberships_in_bulk_not_per_subscription(
    db: Database, clock: MovableClock
) -> None:
    now = clock()
    names = [f"u{i}" for i in range(40)]
    for name in names:
        _universe(db, name, ["CRDO"], now)

    def statements_to_enqueue(subscriptions: list[str], day: date) -> int:
        for name in subscriptions:
            subscribe(db, f"http://127.0.0.1:9/{name}", now=now, universe=name)
        seen: list[str] = []

        def count(*args: Any) -> None:
            seen.append(args[2])

        sa_event.listen(db.engine, "before_cursor_execute", count)
        try:
            written = store_and_enqueue(db, [make_event("CRDO", session=day, now=now)], now)
        finally:
            sa_event.remove(db.engine, "before_cursor_execute", count)
        assert written == len(subscriptions)
        return len(seen)

    one = statements_to_enqueue(names[:1], D1)
    with db.transaction() as session:
        session.execute(Delivery.__table__.delete())
        session.execute(Subscription.__table__.delete())
    many = statements_to_enqueue(names, D2)
    assert many == one, "40 universe subscriptions cost the statements of one"


def test_replay_and_snapshot_read_the_universe_as_it_is(db: Database, clock: MovableClock) -> None:
    now = clock()
    _universe(db, "mine", ["CRDO", "IONQ"], now)
    mine, _ = subscribe(db, "http://127.0.0.1:9/mine", now=now, universe="mine")
    narrow, _ = subscribe(
        db, "http://127.0.0.1:9/narrow", now=now, universe="mine", symbols=["IONQ", "AAPL"]
    )
    history = [make_event(s, session=D1, live=False, now=now) for s in ("CRDO", "IONQ", "AAPL")]
    with db.transaction() as session:
        session.add_all(history)
    with db.transaction() as session:
        stored = session.get(Subscription, mine)
        assert stored is not None
        assert service.replay(session, stored, D1, None, now=now) == 2
        regimes = service.snapshot_data(session, stored)["regimes"]
        assert [r["symbol"] for r in regimes] == ["CRDO", "IONQ"]
        other = session.get(Subscription, narrow)
        assert other is not None
        assert service.replay(session, other, D1, None, now=now) == 1
        assert [r["symbol"] for r in service.snapshot_data(session, other)["regimes"]] == ["IONQ"]
    assert {e.symbol for e in history if _receivers(db, e) == {mine, narrow}} == {"IONQ"}
    assert {e.symbol for e in history if _receivers(db, e) == {mine}} == {"CRDO"}

    with db.transaction() as session:
        universes.remove(session, "mine")
    with db.transaction() as session:
        stored = session.get(Subscription, mine)
        assert stored is not None
        assert service.replay(session, stored, D1, None, now=now) == 0
        assert service.snapshot_data(session, stored)["regimes"] == []


@pytest.fixture
def client(settings: Settings, db: Database, clock: MovableClock) -> Iterator[TestClient]:
    from app.api.app import create_app

    app = create_app(settings, db=db, clock=clock)
    app.dependency_overrides[webhooks_router.get_resolver] = lambda: (
        lambda host, port: ["93.184.216.34"]
    )
    with TestClient(app) as test_client:
        yield test_client


def test_the_api_takes_an_existing_universe_and_refuses_an_unknown_one(
    client: TestClient, db: Database, clock: MovableClock
) -> None:
    _universe(db, "small-caps", ["CRDO"], clock())
    with db.transaction() as session:
        _row, key = create_key(session, "alice")
    auth = {"Authorization": f"Bearer {key}"}
    url = "https://example.com/hook"

    unknown = client.post("/v1/webhooks", json={"url": url, "universe": "nope"}, headers=auth)
    assert unknown.status_code == 422
    assert unknown.headers["content-type"] == "application/problem+json"
    assert unknown.json()["detail"].startswith("unknown universe 'nope'")
    bad = client.post("/v1/webhooks", json={"url": url, "universe": "a b"}, headers=auth)
    assert bad.status_code == 422
    assert "invalid universe name" in bad.json()["detail"]

    created = client.post("/v1/webhooks", json={"url": url, "universe": "Small-Caps"}, headers=auth)
    assert created.status_code == 201, created.text
    assert created.json()["universe"] == "small-caps"
    path = f"/v1/webhooks/{created.json()['id']}"
    refused = client.patch(path, json={"universe": "nope"}, headers=auth)
    assert refused.status_code == 422
    assert client.get(path, headers=auth).json()["universe"] == "small-caps"
    cleared = client.patch(path, json={"universe": None}, headers=auth)
    assert (cleared.status_code, cleared.json()["universe"]) == (200, None)
    again = client.patch(path, json={"universe": "small-caps"}, headers=auth)
    assert again.json()["universe"] == "small-caps"
    listed = client.get("/v1/webhooks", headers=auth).json()["subscriptions"]
    assert [s["universe"] for s in listed] == ["small-caps"]
