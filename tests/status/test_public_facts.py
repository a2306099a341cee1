"""The status page and its JSON are public: a receiver's host stays behind its owner's
key, and one owner's ``test`` and ``snapshot`` events are not market facts."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from sqlalchemy import select

from app.db.engine import Database
from app.settings import Settings, load_settings
from app.webhooks import delivery_queue
from app.webhooks.models import PENDING, Delivery
from tests.conftest import FIXED_NOW
from tests.status.dom import parse
from tests.webhooks.conftest import make_event, store_and_enqueue, subscribe

ADMIN = {"Authorization": "Bearer boot-token-1234567890"}
CONNECT_ERROR = (
    "Cannot connect to host localhost.:8950 ssl:default [Connect call failed ('127.0.0.1', 8950)]"
)


def _settings(database_url: str) -> Settings:
    return load_settings(
        database_url=database_url,
        seed=False,
        providers=["yahoo"],
        admin_token=ADMIN["Authorization"].removeprefix("Bearer "),
        _env_file=None,
    )


def _record_failure(
    db: Database, subscription_id: int, delivery_id: int, code: int | None, error: str | None
) -> None:
    """One failed attempt, recorded through the webhooks layer's own state machine."""
    job = delivery_queue.Job(
        delivery_id, subscription_id, "http://localhost.:8950/h", (), "m", "t", b"{}", 0
    )
    result = delivery_queue.Outcome(
        job=job,
        attempted_at=FIXED_NOW - timedelta(minutes=1),
        status_code=code,
        latency_ms=3.0,
        error_class=error,
        excerpt=CONNECT_ERROR if error else "upstream exploded at db7.internal",
        status=PENDING,
        next_attempt_at=FIXED_NOW + timedelta(minutes=5),
    )
    with db.transaction() as session:
        delivery_queue.record(session, [result], worker_id="worker-1")


def _claimed(db: Database, subscription_id: int) -> int:
    """The subscription's delivery, leased to ``worker-1`` as a claim would."""
    with db.transaction() as session:
        delivery = session.scalars(
            select(Delivery).where(Delivery.subscription_id == subscription_id)
        ).one()
        delivery.locked_by = "worker-1"
        return delivery.id


def test_failing_endpoints_show_the_error_class_and_the_owner_keeps_the_details(
    db: Database, database_url: str, client_for: Any
) -> None:
    refused, _ = subscribe(db, "http://localhost.:8950/hook", now=FIXED_NOW)
    broken, _ = subscribe(db, "http://broken.example:8951/hook", now=FIXED_NOW)
    store_and_enqueue(db, [make_event(now=FIXED_NOW)], FIXED_NOW)
    _record_failure(db, refused, _claimed(db, refused), None, "ClientConnectorError")
    _record_failure(db, broken, _claimed(db, broken), 500, None)
    client = client_for(_settings(database_url), db)

    report = client.get("/v1/status")
    failing = {e["subscription_id"]: e["reason"] for e in report.json()["deliveries"]["failing"]}
    assert failing == {refused: "ClientConnectorError", broken: "HTTP 500"}
    page = client.get("/status").text
    for private in ("localhost.", "8950", "Cannot connect", "db7.internal"):
        assert private not in report.text and private not in page, private
    assert "ClientConnectorError" in page

    log = client.get(f"/v1/webhooks/{refused}/deliveries", headers=ADMIN)
    assert log.status_code == 200
    (delivery,) = log.json()["deliveries"]
    assert "Cannot connect to host localhost.:8950" in delivery["last_error"]


def test_test_and_snapshot_events_stay_off_the_status_page_and_the_metrics(
    db: Database, database_url: str, client_for: Any
) -> None:
    cross = make_event(now=FIXED_NOW, session=date(2026, 8, 20))
    private = [
        make_event(event_type=kind, session=date(2026, 8, 21), now=FIXED_NOW)
        for kind in ("test", "snapshot")
    ]
    with db.transaction() as session:
        session.add_all([cross, *private])
    client = client_for(_settings(database_url), db)

    events = client.get("/v1/status").json()["events"]
    assert [(e["id"], e["type"]) for e in events] == [(cross.id, "golden_cross")]
    metrics = client.get("/metrics").text
    counted = [line for line in metrics.splitlines() if line.startswith("crosswatch_events_total")]
    assert counted == ['crosswatch_events_total{type="golden_cross"} 1.0']
    rows = parse(client.get("/status").text).by_id("events").text()
    assert "golden cross" in rows
    assert "snapshot" not in rows and "test" not in rows
