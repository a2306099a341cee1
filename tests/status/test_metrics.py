"""``/metrics`` parses with prometheus-client's own parser and reads the store."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from app.db.engine import Database
from app.market.bars import Bar
from app.signals.models import Event
from app.status import metrics
from tests.conftest import FIXED_NOW
from tests.status.conftest import SYMBOLS, build_app, poll_settings, run_poll, store_real
from tests.status.test_status_api import _attempt, _delivery, _subscription


def scrape(client: Any) -> dict[str, list[Sample]]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    return {f.name: f.samples for f in text_string_to_metric_families(response.text)}


def value(samples: list[Sample], name: str, **labels: str) -> float:
    found = [s.value for s in samples if s.name == name and s.labels == labels]
    assert len(found) == 1, (name, labels, samples)
    return found[0]


def test_metrics_count_polls_ingest_data_age_events_and_deliveries(
    db: Database, database_url: str, real_series: dict[str, list[Bar]], client_for: Any
) -> None:
    until = {"^RUT": date(2026, 8, 19), "^GSPC": date(2026, 8, 20), "^IXIC": date(2026, 8, 20)}
    store_real(db, real_series, until=until)
    settings = poll_settings(database_url, ["stooq", "yahoo"])
    client = client_for(settings, db)
    first = scrape(client)
    assert value(first["crosswatch_polls"], "crosswatch_polls_total", outcome="ok") == 0
    assert (
        value(first["crosswatch_data_age_sessions"], "crosswatch_data_age_sessions", symbol="^RUT")
        == 2
    )
    assert "crosswatch_deliveries" in first  # webhook tables exist: delivery families appear

    run_poll(db, settings, real_series)
    subscription = _subscription(db, "https://ok.test/hook")
    with db.transaction(write=False) as session:
        event_ids = [e for (e,) in session.query(Event.id).order_by(Event.id).limit(2)]
    sent = _delivery(db, subscription, event_ids[0], locked_by="worker-1")
    _attempt(db, sent, subscription, 200)
    _delivery(db, subscription, event_ids[1])

    families = scrape(client)
    assert value(families["crosswatch_polls"], "crosswatch_polls_total", outcome="ok") == 1
    assert value(families["crosswatch_polls"], "crosswatch_polls_total", outcome="failed") == 0
    duration = families["crosswatch_poll_duration_seconds"]
    assert value(duration, "crosswatch_poll_duration_seconds_count") == 1
    ingested = families["crosswatch_sessions_ingested"]
    assert value(ingested, "crosswatch_sessions_ingested_total", symbol="^RUT", kind="added") == 2
    assert value(ingested, "crosswatch_sessions_ingested_total", symbol="^GSPC", kind="added") == 1
    for symbol in SYMBOLS:
        age = families["crosswatch_data_age_sessions"]
        assert value(age, "crosswatch_data_age_sessions", symbol=symbol) == 0
    events = families["crosswatch_events"]
    assert value(events, "crosswatch_events_total", type="golden_cross") >= 1
    assert value(events, "crosswatch_events_total", type="daily_brief") == 1
    deliveries = families["crosswatch_deliveries"]
    assert value(deliveries, "crosswatch_deliveries_total", outcome="succeeded") == 1
    attempts = families["crosswatch_delivery_attempts"]
    assert value(attempts, "crosswatch_delivery_attempts_total", outcome="success") == 1
    latency = families["crosswatch_delivery_latency_seconds"]
    assert value(latency, "crosswatch_delivery_latency_seconds_bucket", le="0.1") == 0
    assert value(latency, "crosswatch_delivery_latency_seconds_bucket", le="0.25") == 1
    assert value(latency, "crosswatch_delivery_latency_seconds_sum") == 0.12
    backlog = families["crosswatch_outbox_backlog"]
    assert value(backlog, "crosswatch_outbox_backlog", due="yes") == 1
    oldest = families["crosswatch_outbox_oldest_due_age_seconds"]
    assert value(oldest, "crosswatch_outbox_oldest_due_age_seconds") == 600
    endpoints = families["crosswatch_webhook_endpoints"]
    assert value(endpoints, "crosswatch_webhook_endpoints", state="healthy") == 1
    requests = families["crosswatch_http_request_duration_seconds"]
    assert (
        value(
            requests,
            "crosswatch_http_request_duration_seconds_count",
            method="GET",
            route="/metrics",
            status="200",
        )
        == 1
    )


def test_stale_data_raises_the_data_age(
    db: Database, database_url: str, real_series: dict[str, list[Bar]], client_for: Any
) -> None:
    store_real(db, real_series)
    settings = poll_settings(database_url, ["yahoo"])
    later = client_for(settings, db, FIXED_NOW + timedelta(days=3))
    age = scrape(later)["crosswatch_data_age_sessions"]
    assert value(age, "crosswatch_data_age_sessions", symbol="^IXIC") == 3


def test_each_app_has_its_own_registry(db: Database, database_url: str) -> None:
    settings = poll_settings(database_url, ["yahoo"])
    one, two = build_app(settings, db), build_app(settings, db)
    assert metrics.metrics_for(one).registry is not metrics.metrics_for(two).registry
    assert REGISTRY.get_sample_value("crosswatch_store_up") is None


def test_an_unreachable_store_still_answers_a_scrape(tmp_path: Any, client_for: Any) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"  # no tables: every store query fails
    db = Database(url)
    try:
        families = scrape(client_for(poll_settings(url, ["yahoo"]), db))
        assert value(families["crosswatch_store_up"], "crosswatch_store_up") == 0
    finally:
        db.dispose()
