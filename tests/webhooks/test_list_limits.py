"""Every list of a subscription is bounded (422 past it, and said in OpenAPI), and a
subscription stored with a huge list before the bounds still replays and snapshots:
each ``IN (...)`` is read in slices under the stores' bound-parameter caps."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from app.api.app import create_app
from app.auth.service import create_key
from app.db.engine import Database
from app.settings import Settings
from app.webhooks import router as webhooks_router
from app.webhooks import service
from app.webhooks.models import Delivery, Subscription
from app.webhooks.schemas import MAX_EVENT_TYPES, MAX_SYMBOLS
from tests.webhooks.conftest import make_event

NOW = datetime(2026, 8, 24, 22, 0, tzinfo=UTC)
URL = "https://hooks.example.com/a"
# Past both stores' caps on bound parameters (SQLite 32,766, or 250,000 as Debian builds
# it; PostgreSQL 65,535).
HUGE = 260_000


@pytest.fixture
def client(settings: Settings, db: Database) -> Iterator[TestClient]:
    app = create_app(settings, db=db, clock=lambda: NOW)
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


def _symbols(count: int) -> list[str]:
    return [f"S{index}" for index in range(count)]


def test_lists_past_their_bounds_are_422_problems(
    client: TestClient, alice: dict[str, str]
) -> None:
    too_many = [
        {"url": URL, "symbols": _symbols(MAX_SYMBOLS + 1)},
        {"url": URL, "event_types": ["golden_cross"] * (MAX_EVENT_TYPES + 1)},
        {"url": URL, "symbols": ["X" * 33]},
    ]
    for body in too_many:
        response = client.post("/v1/webhooks", json=body, headers=alice)
        assert response.status_code == 422, response.text[:200]
        assert response.headers["content-type"] == "application/problem+json"
    created = client.post(
        "/v1/webhooks", json={"url": URL, "symbols": _symbols(MAX_SYMBOLS)}, headers=alice
    )
    assert created.status_code == 201, created.text[:200]
    assert len(created.json()["symbols"]) == MAX_SYMBOLS
    hook = created.json()["id"]
    for body in too_many:
        body = {key: value for key, value in body.items() if key != "url"}
        response = client.patch(f"/v1/webhooks/{hook}", json=body, headers=alice)
        assert response.status_code == 422, response.text[:200]
    assert MAX_EVENT_TYPES == 11


def test_the_bounds_are_in_openapi(client: TestClient) -> None:
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    for name in ("SubscriptionIn", "SubscriptionPatch"):
        fields = schemas[name]["properties"]
        symbols = next(s for s in fields["symbols"]["anyOf"] if s.get("type") == "array")
        assert symbols["maxItems"] == MAX_SYMBOLS
        assert symbols["items"]["maxLength"] == 32
        event_types = fields["event_types"]
        event_types = next(
            (s for s in event_types.get("anyOf", []) if s.get("type") == "array"), event_types
        )
        assert event_types["maxItems"] == MAX_EVENT_TYPES


def test_a_stored_subscription_with_huge_lists_replays_and_snapshots(
    client: TestClient, db: Database, alice: dict[str, str]
) -> None:
    hook = client.post("/v1/webhooks", json={"url": URL}, headers=alice).json()["id"]
    # As the API accepted it before the bounds: written straight to the store.
    with db.transaction() as session:
        row = session.get(Subscription, hook)
        assert row is not None
        row.symbols = sorted(["^RUT", *_symbols(HUGE)])
        row.event_types = ["golden_cross"] * HUGE
        session.add_all(
            [
                make_event("^RUT", "golden_cross", date(2026, 7, 1), live=False, now=NOW),
                make_event("^GSPC", "golden_cross", date(2026, 7, 2), live=False, now=NOW),
            ]
        )
    replayed = client.post(
        f"/v1/webhooks/{hook}/replay", json={"since": "2026-06-01"}, headers=alice
    )
    assert replayed.status_code == 202, replayed.text[:300]
    assert replayed.json()["deliveries"] == 1
    again = client.post(f"/v1/webhooks/{hook}/replay", json={"since": "2026-06-01"}, headers=alice)
    assert again.status_code == 202, again.text[:300]
    snapshot = client.post(f"/v1/webhooks/{hook}/snapshot", headers=alice)
    assert snapshot.status_code == 202, snapshot.text[:300]
    with db.transaction(write=False) as session:
        stored = session.get(Subscription, hook)
        assert stored is not None
        regimes = service.snapshot_data(session, stored)["regimes"]
        count = session.scalar(
            select(func.count()).select_from(Delivery).where(Delivery.subscription_id == hook)
        )
    assert [regime["symbol"] for regime in regimes] == ["^RUT"]
    assert count == 2
