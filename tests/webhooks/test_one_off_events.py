"""``test`` and ``snapshot`` events: the newest closed session, an RFC 3339
``created_at`` in the webhook body, and out of ``/v1/events`` unless asked for."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest
from fastapi.testclient import TestClient

from app.api.app import create_app
from app.auth.service import create_key
from app.db.engine import Database
from app.settings import Settings
from app.signals.models import Event
from app.webhooks import router as webhooks_router
from app.webhooks.delivery_queue import event_json
from tests.webhooks.conftest import make_event

# A Sunday: the calendar date is no session; the newest closed one is Friday 21 August.
SUNDAY = datetime(2026, 8, 23, 15, 0, tzinfo=UTC)
# A Monday before the close (11:00 in New York): Monday's session is not closed yet.
MONDAY_MORNING = datetime(2026, 8, 24, 15, 0, tzinfo=UTC)
FRIDAY = date(2026, 8, 21)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(SUNDAY)


@pytest.fixture
def client(settings: Settings, db: Database, clock: Clock) -> Iterator[TestClient]:
    app = create_app(settings, db=db, clock=clock)
    app.dependency_overrides[webhooks_router.get_resolver] = lambda: (
        lambda host, port: ["93.184.216.34"]
    )
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def alice(db: Database) -> dict[str, str]:
    with db.transaction() as session:
        _id, key = create_key(session, "alice")
    return {"Authorization": f"Bearer {key}"}


def _stored(db: Database, event_id: str) -> Event:
    with db.transaction(write=False) as session:
        found = session.get(Event, event_id)
        assert found is not None
        session.expunge(found)
        return found


def test_one_off_events_carry_the_newest_closed_session(
    client: TestClient, db: Database, clock: Clock, alice: dict[str, str]
) -> None:
    hook = client.post("/v1/webhooks", json={"url": "https://example.com/h"}, headers=alice)
    assert hook.status_code == 201, hook.text
    hook_id = hook.json()["id"]
    for moment in (SUNDAY, MONDAY_MORNING):
        clock.now = moment
        for kind in ("test", "snapshot"):
            made = client.post(f"/v1/webhooks/{hook_id}/{kind}", headers=alice)
            assert made.status_code == 202, made.text
            event = _stored(db, made.json()["event_id"])
            assert event.session == FRIDAY, (kind, moment)


def test_the_webhook_body_created_at_has_a_utc_offset(
    client: TestClient, db: Database, alice: dict[str, str]
) -> None:
    hook_id = client.post(
        "/v1/webhooks", json={"url": "https://example.com/h"}, headers=alice
    ).json()["id"]
    made = client.post(f"/v1/webhooks/{hook_id}/test", headers=alice).json()
    with db.transaction() as session:
        session.add(make_event("^RUT", "golden_cross", FRIDAY, now=SUNDAY))
    for event_id in (made["event_id"], make_event(session=FRIDAY, now=SUNDAY).id):
        body = json.loads(event_json(_stored(db, event_id)))
        # Go's time.RFC3339 (and RFC 3339 itself) needs the offset.
        assert body["created_at"] == "2026-08-23T15:00:00+00:00"


def test_one_off_events_stay_out_of_the_event_feed_unless_asked_for(
    client: TestClient, db: Database, alice: dict[str, str]
) -> None:
    # A market event as detection stores it (the feed serves each type's data shape).
    market_event = make_event("^RUT", "retracted", FRIDAY, rule="sma:50:200", now=SUNDAY)
    market_event.data = {
        "original_id": "evt_0",
        "original_type": "golden_cross",
        "session": FRIDAY.isoformat(),
        "reason": "revised closes no longer imply this event",
    }
    with db.transaction() as session:
        session.add(market_event)
    hook_id = client.post(
        "/v1/webhooks", json={"url": "https://example.com/h"}, headers=alice
    ).json()["id"]
    test_id = client.post(f"/v1/webhooks/{hook_id}/test", headers=alice).json()["event_id"]
    snapshot_id = client.post(f"/v1/webhooks/{hook_id}/snapshot", headers=alice).json()["event_id"]
    feed = client.get("/v1/events").json()["events"]
    assert [event["type"] for event in feed] == ["retracted"]
    assert all(
        datetime.fromisoformat(event["created_at"]).utcoffset() is not None for event in feed
    )
    asked = client.get("/v1/events", params={"type": "test"}).json()["events"]
    assert [event["id"] for event in asked] == [test_id]
    asked = client.get("/v1/events", params={"type": "snapshot"}).json()["events"]
    assert [event["id"] for event in asked] == [snapshot_id]


def test_every_timestamp_of_a_subscription_and_its_deliveries_has_an_offset(
    client: TestClient, alice: dict[str, str]
) -> None:
    created = client.post("/v1/webhooks", json={"url": "https://example.com/h"}, headers=alice)
    hook = created.json()
    client.post(f"/v1/webhooks/{hook['id']}/test", headers=alice)
    rotated = client.post(f"/v1/webhooks/{hook['id']}/rotate-secret", headers=alice).json()
    listed = client.get("/v1/webhooks", headers=alice).json()["subscriptions"][0]
    delivery = client.get(f"/v1/webhooks/{hook['id']}/deliveries", headers=alice).json()[
        "deliveries"
    ][0]
    stamps = [
        hook["created_at"],
        hook["updated_at"],
        rotated["previous_secret_expires_at"],
        listed["updated_at"],
        listed["previous_secret_expires_at"],
        delivery["created_at"],
        delivery["next_attempt_at"],
    ]
    assert all(datetime.fromisoformat(stamp).utcoffset() is not None for stamp in stamps), stamps
