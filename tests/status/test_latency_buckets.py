"""Delivery-latency buckets resolve loopback deliveries (1–30 ms) up to the worker's timeout."""

from __future__ import annotations

import inspect
from datetime import timedelta
from itertools import pairwise
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from app.db.engine import Database
from app.market.bars import Bar
from app.signals.models import Event
from app.webhooks import delivery_queue
from app.webhooks.models import SUCCEEDED
from app.webhooks.worker import DeliveryWorker
from tests.conftest import FIXED_NOW
from tests.status.conftest import poll_settings, store_real
from tests.status.test_status_api import _delivery, _subscription

LATENCY = "crosswatch_delivery_latency_seconds"


def _attempt_taking(db: Database, delivery_id: int, subscription_id: int, ms: float) -> None:
    job = delivery_queue.Job(delivery_id, subscription_id, "https://x.test", (), "m", "t", b"{}", 0)
    result = delivery_queue.Outcome(
        job=job,
        attempted_at=FIXED_NOW - timedelta(minutes=1),
        status_code=200,
        latency_ms=ms,
        error_class=None,
        excerpt=None,
        status=SUCCEEDED,
        next_attempt_at=None,
    )
    with db.transaction() as session:
        delivery_queue.record(session, [result], worker_id="worker-1")


def test_latency_buckets_start_at_a_millisecond_and_end_at_the_delivery_timeout(
    db: Database, database_url: str, real_series: dict[str, list[Bar]], client_for: Any
) -> None:
    store_real(db, real_series)
    subscription = _subscription(db, "https://ok.test/hook")
    with db.transaction(write=False) as session:
        event_ids = [e for (e,) in session.query(Event.id).order_by(Event.id).limit(2)]
    for event_id, ms in zip(event_ids, (3.0, 27.0), strict=True):  # two loopback deliveries
        delivery = _delivery(db, subscription, event_id, locked_by="worker-1")
        _attempt_taking(db, delivery, subscription, ms)

    text = client_for(poll_settings(database_url, ["yahoo"]), db).get("/metrics").text
    (family,) = [f for f in text_string_to_metric_families(text) if f.name == LATENCY]
    buckets = {
        float(s.labels["le"]): s.value for s in family.samples if s.name == f"{LATENCY}_bucket"
    }
    bounds = sorted(b for b in buckets if b != float("inf"))
    timeout = inspect.signature(DeliveryWorker).parameters["timeout_seconds"].default
    assert bounds[0] <= 0.001
    assert bounds[-1] == timeout == 15
    assert buckets[0.001] == 0
    assert buckets[0.0025] == 0
    assert buckets[0.005] == 1  # the 3 ms delivery
    assert buckets[0.025] == 1
    assert buckets[0.05] == 2  # the 27 ms one
    assert buckets[float("inf")] == 2
    # no decade is skipped: each bound is at most 2.5 times the one below it
    assert all(high / low <= 2.5 for low, high in pairwise(bounds))
