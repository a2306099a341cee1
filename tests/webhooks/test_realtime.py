"""``run_forever``: a hanging receiver never delays the others; a commit that enqueues
wakes the worker at once (no waiting for the poll)."""

from __future__ import annotations

import asyncio
import time
from datetime import date

from sqlalchemy import func, select

from app.db.engine import Database
from app.settings import Settings
from app.webhooks.models import Delivery
from app.webhooks.worker import DeliveryWorker
from tests.support.wait import until
from tests.webhooks.conftest import (
    MovableClock,
    Receiver,
    make_event,
    store_and_enqueue,
    subscribe,
)


def _succeeded(db: Database) -> int:
    with db.transaction(write=False) as session:
        query = select(func.count()).where(Delivery.status == "succeeded")
        return int(session.scalar(query) or 0)


def test_one_hanging_receiver_does_not_delay_the_others(
    db: Database, local_settings: Settings, clock: MovableClock, receiver: Receiver
) -> None:
    receiver.hanging.add("/hang")
    subscribe(db, receiver.url("/hang"), now=clock())
    for n in range(30):
        subscribe(db, receiver.url(f"/ok/{n}"), now=clock())
    events = [make_event(session=date(2026, 8, d), now=clock()) for d in (17, 18, 19, 20, 21)]
    store_and_enqueue(db, events, clock())  # 5 x 31 deliveries, 5 of them hang

    async def scenario() -> None:
        worker = DeliveryWorker(
            db, local_settings, clock=clock, concurrency=20, per_endpoint=2, timeout_seconds=15
        )
        stop = asyncio.Event()
        task = asyncio.create_task(worker.run_forever(stop, grace_seconds=0.1))
        try:
            await until(
                lambda: _succeeded(db) == 150, 10, "150 deliveries", every=0.02, in_thread=True
            )
        finally:
            stop.set()
            await task

    started = time.monotonic()
    asyncio.run(scenario())
    assert time.monotonic() - started < 10
    assert len(receiver.at("/hang")) <= 2  # the per-endpoint bound held
    ok_ids = {(r.path, r.headers["webhook-id"]) for r in receiver.received if r.path != "/hang"}
    assert len(ok_ids) == 150


def test_a_commit_wakes_the_worker_without_waiting_for_the_poll(
    db: Database, local_settings: Settings, clock: MovableClock, receiver: Receiver
) -> None:
    subscribe(db, receiver.url("/fast"), now=clock())

    async def scenario() -> float:
        worker = DeliveryWorker(db, local_settings, clock=clock, poll_interval=30)
        stop = asyncio.Event()
        task = asyncio.create_task(worker.run_forever(stop, grace_seconds=0.1))
        await asyncio.sleep(0.2)  # let the loop reach its idle wait (30 s poll)
        committed = time.monotonic()
        await asyncio.to_thread(store_and_enqueue, db, [make_event(now=clock())], clock())
        arrived = await asyncio.to_thread(receiver.wait_for, lambda got: len(got) == 1, 5.0)
        latency = time.monotonic() - committed
        stop.set()
        await task
        assert arrived
        return latency

    assert asyncio.run(scenario()) < 1.0
