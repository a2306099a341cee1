"""``/v1/status`` and ``/status`` on a real store: each kind of trouble changes both."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from fastapi.testclient import TestClient

from app.db.engine import Database
from app.market.bars import Bar
from app.settings import Settings
from app.signals.models import Event
from app.webhooks import delivery_queue
from app.webhooks.models import FAILED, PENDING, SUCCEEDED, Delivery, Subscription
from tests.conftest import FIXED_NOW
from tests.status.conftest import (
    LAST_SESSION,
    SYMBOLS,
    at,
    poll_settings,
    run_poll,
    store_real,
)
from tests.status.dom import Node, parse


def component(report: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in report["components"] if c["name"] == name)


def card(report: dict[str, Any], symbol: str) -> dict[str, Any]:
    return next(s for s in report["symbols"] if s["symbol"] == symbol)


def page(client: TestClient) -> Node:
    response = client.get("/status")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    return parse(response.text)


def test_root_redirects_to_the_status_page(
    db: Database, settings: Settings, client_for: Any
) -> None:
    response = client_for(settings, db).get("/", follow_redirects=False)
    assert response.status_code in (302, 307)
    assert response.headers["location"] == "/status"


def test_fresh_store_reports_each_symbol_and_hides_empty_sections(
    db: Database, database_url: str, real_series: dict[str, list[Bar]], client_for: Any
) -> None:
    store_real(db, real_series)
    client = client_for(poll_settings(database_url, ["yahoo"]), db)
    report = client.get("/v1/status").json()
    assert [s["symbol"] for s in report["symbols"]] == sorted(SYMBOLS)
    rut = card(report, "^RUT")
    assert rut["session"] == rut["expected_session"] == LAST_SESSION.isoformat()
    assert (rut["stale"], rut["sessions_behind"]) == (False, 0)
    assert rut["regime"] == "golden"
    assert rut["chart_sessions"] == 504
    assert component(report, "store")["state"] == "operational"
    assert component(report, "scheduler")["reason"].startswith("no poll has run yet")
    assert component(report, "yahoo")["state"] == "unknown"
    assert report["polls"] == []
    assert report["next_poll_at"] == "2026-08-24T21:15:00Z"
    dom = page(client)
    assert "golden regime" in dom.by_id("symbol-rut").text()
    assert "Recent polls" not in dom.text()  # no poll yet: no section
    assert "Webhook deliveries" not in dom.text()  # no subscription yet: no section
    assert report["deliveries"]["subscriptions"] == 0
    assert "Recent events" in dom.text()
    assert dom.find_all("meta")[2].attrs == {"http-equiv": "refresh", "content": "60"}


def test_a_failing_provider_is_down_with_its_reason_and_the_poll_is_listed(
    db: Database, database_url: str, real_series: dict[str, list[Bar]], client_for: Any
) -> None:
    store_real(db, real_series, until={s: date(2026, 8, 20) for s in SYMBOLS})
    settings = poll_settings(database_url, ["stooq", "yahoo"])
    client = client_for(settings, db)
    before = client.get("/v1/status").json()
    assert component(before, "stooq")["state"] == "unknown"

    report = run_poll(db, settings, real_series)
    assert report.status == "ok"  # Yahoo answered for every symbol after Stooq failed

    after = client.get("/v1/status").json()
    stooq = component(after, "stooq")
    assert stooq["state"] == "down"
    assert "Stooq needs an API key" in stooq["reason"]
    assert "Stooq has no known symbol for ^RUT" in stooq["reason"]
    assert component(after, "yahoo")["state"] == "operational"
    assert after["overall"]["state"] == "degraded"  # Yahoo still answers
    assert "stooq down" in after["overall"]["summary"]
    assert component(after, "scheduler")["state"] == "operational"
    (run,) = after["polls"]
    assert (run["status"], run["added"], run["errors"]) == ("ok", 3, [])
    assert run["duration_seconds"] == 0.0  # the fixed clock does not move
    assert card(after, "^GSPC")["session"] == LAST_SESSION.isoformat()

    dom = page(client)
    row = dom.by_id("component-stooq")
    assert "down" in row.find_all("span", "state")[0].classes
    assert "Stooq needs an API key" in row.text()
    assert "operational" in dom.by_id("component-yahoo").text()
    assert "degraded" in dom.by_id("overall").classes
    assert "manual ok" in " ".join(dom.by_id("polls").text().split())


def test_a_stale_symbol_shows_how_many_sessions_behind(
    db: Database, database_url: str, real_series: dict[str, list[Bar]], client_for: Any
) -> None:
    store_real(db, real_series)
    client = client_for(poll_settings(database_url, ["yahoo"]), db)
    assert not card(client.get("/v1/status").json(), "^RUT")["stale"]
    # Three days on, nothing new was stored: Mon-Wed closed without data.
    later = client_for(poll_settings(database_url, ["yahoo"]), db, at(2026, 8, 27, 12))
    report = later.get("/v1/status").json()
    rut = card(report, "^RUT")
    assert (rut["stale"], rut["sessions_behind"]) == (True, 3)
    assert rut["expected_session"] == "2026-08-26"
    assert report["overall"]["state"] == "degraded"
    assert "^RUT 3 sessions behind" in report["overall"]["summary"]
    scheduler = component(report, "scheduler")
    assert scheduler["state"] == "degraded"
    assert scheduler["reason"].startswith("no poll has run yet")
    rut_card = page(later).by_id("symbol-rut")
    assert "stale: 3 sessions behind" in rut_card.text()
    assert "fresh" in page(client).by_id("symbol-rut").text()


def test_one_symbol_stale_after_a_partial_history(
    db: Database, database_url: str, real_series: dict[str, list[Bar]], client_for: Any
) -> None:
    store_real(db, real_series, until={"^IXIC": date(2026, 8, 14)})
    report = client_for(poll_settings(database_url, ["yahoo"]), db).get("/v1/status").json()
    assert card(report, "^IXIC")["sessions_behind"] == 5
    assert not card(report, "^GSPC")["stale"]


def _subscription(db: Database, url: str) -> int:
    with db.transaction() as session:
        subscription = Subscription(
            url=url,
            event_types=["golden_cross"],
            enabled=True,
            secret="whsec_" + "A" * 32,
            created_at=FIXED_NOW,
            updated_at=FIXED_NOW,
        )
        session.add(subscription)
        session.flush()
        return subscription.id


def _delivery(db: Database, subscription_id: int, event_id: str, **values: Any) -> int:
    with db.transaction() as session:
        delivery = Delivery(
            event_id=event_id,
            subscription_id=subscription_id,
            status=PENDING,
            attempt_count=0,
            next_attempt_at=FIXED_NOW,
            created_at=FIXED_NOW - timedelta(minutes=10),
            **values,
        )
        session.add(delivery)
        session.flush()
        return delivery.id


def _attempt(db: Database, delivery_id: int, subscription_id: int, code: int, **kw: Any) -> None:
    """Record one attempt through the webhooks layer's own state machine."""
    job = delivery_queue.Job(delivery_id, subscription_id, "https://x.test", (), "m", "t", b"{}", 0)
    result = delivery_queue.Outcome(
        job=job,
        attempted_at=FIXED_NOW - timedelta(minutes=1),
        status_code=code,
        latency_ms=120.0,
        error_class=None,
        excerpt=None,
        status=kw.pop("status", SUCCEEDED if code < 300 else FAILED),
        next_attempt_at=None,
        **kw,
    )
    with db.transaction() as session:
        delivery_queue.record(session, [result], worker_id="worker-1")


def test_a_disabled_webhook_and_the_delivery_backlog_show(
    db: Database, database_url: str, real_series: dict[str, list[Bar]], client_for: Any
) -> None:
    store_real(db, real_series)
    with db.transaction(write=False) as session:
        event_id = session.query(Event.id).order_by(Event.id).limit(1).scalar()
    assert event_id is not None
    client = client_for(poll_settings(database_url, ["yahoo"]), db)
    healthy = _subscription(db, "https://ok.test/hook")
    gone = _subscription(db, "https://gone.test/hook?token=s3cret")
    before = client.get("/v1/status").json()["deliveries"]
    assert before["disabled"] == [] and before["subscriptions"] == 2
    assert component(client.get("/v1/status").json(), "delivery worker")["reason"] == "idle"

    sent = _delivery(db, healthy, event_id, locked_by="worker-1")
    _attempt(db, sent, healthy, 200)
    refused = _delivery(db, gone, event_id, locked_by="worker-1")
    _attempt(db, refused, gone, 410, gone=True)
    _delivery(db, healthy, _other_event(db, event_id))  # due, waiting 10 minutes

    report = client.get("/v1/status").json()
    deliveries = report["deliveries"]
    assert [d["subscription_id"] for d in deliveries["disabled"]] == [gone]
    assert "410 Gone" in deliveries["disabled"][0]["reason"]
    assert (deliveries["attempts_24h"], deliveries["succeeded_24h"]) == (2, 1)
    assert deliveries["success_rate_24h"] == 0.5
    assert (deliveries["backlog"], deliveries["due"]) == (1, 1)
    assert deliveries["oldest_due_age_seconds"] == 600.0
    worker = component(report, "delivery worker")
    assert worker["state"] == "degraded"
    assert "oldest waiting 10 min" in worker["reason"]

    dom = page(client)
    endpoints = dom.by_id("endpoints").text()
    assert f"#{gone} disabled" in endpoints and "410 Gone" in endpoints
    assert "gone.test" not in dom.text() and "s3cret" not in dom.text()  # URLs stay private
    assert "50.0%" in dom.by_id("deliveries").text()


def _other_event(db: Database, not_this: str) -> str:
    with db.transaction(write=False) as session:
        found = session.query(Event.id).filter(Event.id != not_this).limit(1).scalar()
    assert isinstance(found, str)
    return found


def test_an_unmigrated_store_is_reported_not_crashed(tmp_path: Any, client_for: Any) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    db = Database(url)
    try:
        client = client_for(poll_settings(url, ["yahoo"]), db)
        report = client.get("/v1/status").json()
        assert [c["name"] for c in report["components"]] == ["store"]
        assert report["overall"]["state"] == "degraded"
        assert "crosswatch migrate" in report["overall"]["summary"]
        assert "degraded" in page(client).by_id("overall").classes
    finally:
        db.dispose()
