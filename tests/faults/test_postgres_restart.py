"""PostgreSQL drops every connection (what a server restart does to its clients) while
a ``serve`` process and a delivery worker process run: both recover without being
restarted, ``/readyz`` answers, and every enqueued delivery reaches the receiver.

The shared cluster is not restarted (others use it): every backend of this test's own
database is ended with ``pg_terminate_backend``, twice: once while idle, once in the
middle of a fan-out."""

from __future__ import annotations

import sys
from collections import Counter
from datetime import date

import httpx
import pytest
from sqlalchemy import func, select, text

from app.db.engine import Database
from app.webhooks.models import Delivery, DeliveryAttempt
from tests.faults.support import crosswatch_env, running, serving
from tests.support.wait import wait_until
from tests.webhooks.conftest import (
    MovableClock,
    Receiver,
    make_event,
    store_and_enqueue,
    verify,
)
from tests.webhooks.conftest import subscribe as store_subscription

SUBSCRIPTIONS = 100
#: Short leases: a claim lost with its connection is due again within the deadline.
LEASE_SECONDS = "5"


def _terminate_backends(db: Database) -> int:
    """End every other connection to this database (and only this one)."""
    with db.engine.begin() as connection:
        ended = connection.execute(
            text(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        ).scalar_one()
    return int(ended)


def _succeeded(db: Database) -> int:
    with db.transaction(write=False) as session:
        query = select(func.count()).where(Delivery.status == "succeeded")
        return int(session.scalar(query) or 0)


def _get(url: str) -> int:
    return httpx.get(url, timeout=10).status_code


def test_api_and_worker_recover_from_dropped_connections_and_lose_no_delivery(
    db: Database, database_url: str, receiver: Receiver
) -> None:
    if db.is_sqlite:
        pytest.skip("PostgreSQL only: SQLite has no server to lose")
    clock = MovableClock()
    secrets = {
        f"/pg/{n}": store_subscription(db, receiver.url(f"/pg/{n}"), now=clock())[1]
        for n in range(SUBSCRIPTIONS)
    }
    env = crosswatch_env(database_url, webhook_allow_private="true")
    worker_args = [sys.executable, "-m", "app.webhooks.cli", "--worker-id", "faults"]
    worker_args += ["--concurrency", "10", "--lease-seconds", LEASE_SECONDS]
    events = [make_event(session=date(2026, 8, day), now=clock()) for day in (19, 20, 21)]

    def delivered(event_index: int) -> bool:
        wanted = events[event_index].id
        return {r.path for r in receiver.received if r.headers["webhook-id"] == wanted} == set(
            secrets
        )

    with (
        serving(env, "--no-scheduler", "--no-worker") as (server, base),
        running(worker_args, env) as worker,
    ):
        # serve warms its signal book before it says ready.
        wait_until(lambda: _get(f"{base}/readyz") == 200, 30, "the API to be ready")
        store_and_enqueue(db, [events[0]], clock())
        wait_until(lambda: delivered(0), 30, "the first fan-out")

        # 1. Every connection dropped while idle: pooled ones, the worker's LISTEN.
        assert _terminate_backends(db) >= 2
        assert _get(f"{base}/readyz") == 200, "the API's first request after the drop failed"
        assert _get(f"{base}/v1/events") == 200
        store_and_enqueue(db, [events[1]], clock())
        wait_until(lambda: delivered(1), 30, "the fan-out after the drop")

        # 2. Dropped again in the middle of a fan-out (the receiver is slowed so the
        # worker is busy claiming and recording when its connections go).
        receiver.delay = 0.02
        store_and_enqueue(db, [events[2]], clock())
        receiver.wait_for(
            lambda got: sum(r.headers["webhook-id"] == events[2].id for r in got) >= 20, 30
        )
        assert _terminate_backends(db) >= 1
        wait_until(lambda: delivered(2), 30, "the fan-out interrupted by the drop")
        wait_until(
            lambda: _succeeded(db) == 3 * SUBSCRIPTIONS, 30, "every delivery recorded as sent"
        )
        wait_until(lambda: _get(f"{base}/readyz") == 200, 15, "the API to be ready")
        assert server.popen.poll() is None and worker.popen.poll() is None, "a process died"
        worker_log = worker.output()

    receipts = Counter((r.path, r.headers["webhook-id"]) for r in receiver.received)
    assert len(receipts) == 3 * SUBSCRIPTIONS
    resent = {key: n for key, n in receipts.items() if n > 1}
    with db.transaction(write=False) as session:
        attempts = Counter(session.scalars(select(DeliveryAttempt.delivery_id)))
    refused = worker_log.count("outcomes failed")
    print(
        f"\n{sum(receipts.values())} receipts of {len(receipts)} deliveries; "
        f"{len(resent)} sent twice; outcome writes refused by the drop: {refused}"
    )
    # Outcomes whose write the drop refused are recorded on reconnection, within their
    # lease: nothing acknowledged is sent again, and each attempt is logged once.
    assert not resent, f"sent again after the receiver acknowledged them: {resent}"
    assert len(attempts) == 3 * SUBSCRIPTIONS and set(attempts.values()) == {1}
    for received in receiver.received:
        verify(secrets[received.path], received)
