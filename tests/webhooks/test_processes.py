"""Real worker processes: SIGKILL mid fan-out loses nothing; three workers on
PostgreSQL share 1,000 deliveries without sending any twice."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime

import pytest
from sqlalchemy import func, select

from app.db.engine import Database
from app.settings import Settings
from app.webhooks import service
from app.webhooks.models import Delivery, DeliveryAttempt
from app.webhooks.schemas import SubscriptionIn
from app.webhooks.ssrf import system_resolver
from app.webhooks.worker import DeliveryWorker
from tests.conftest import ROOT
from tests.webhooks.conftest import OWNER, MovableClock, Receiver, make_event, store_and_enqueue

FANOUT = 1000


def _fan_out(db: Database, receiver: Receiver, now: datetime) -> None:
    policy = service.UrlPolicy(resolver=system_resolver, allow_private=True)
    with db.transaction() as session:
        for n in range(FANOUT):
            body = SubscriptionIn(url=receiver.url(f"/k/{n}"))
            service.create_subscription(session, OWNER, body, now=now, urls=policy)
    assert store_and_enqueue(db, [make_event(now=now)], now) == FANOUT


def _spawn(database_url: str, worker_id: str, concurrency: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "CROSSWATCH_DATABASE_URL": database_url,
        "CROSSWATCH_WEBHOOK_ALLOW_PRIVATE": "true",
        "CROSSWATCH_SEED": "false",
    }
    command = [sys.executable, "-m", "app.webhooks.cli", "--worker-id", worker_id]
    command += ["--concurrency", str(concurrency)]
    return subprocess.Popen(
        command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def _count(db: Database, status: str) -> int:
    with db.transaction(write=False) as session:
        return int(session.scalar(select(func.count()).where(Delivery.status == status)) or 0)


def _wait(predicate: object, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


def test_sigkilled_worker_loses_nothing(
    db: Database,
    database_url: str,
    local_settings: Settings,
    clock: MovableClock,
    receiver: Receiver,
) -> None:
    receiver.delay = 0.02
    _fan_out(db, receiver, clock())
    worker = _spawn(database_url, "doomed", concurrency=10)
    try:
        assert receiver.wait_for(lambda got: len(got) >= 200, timeout=30)
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
    assert _count(db, "succeeded") < FANOUT

    receiver.delay = 0
    clock.advance(120)  # past the dead worker's 60 s leases (it claimed after start-up)

    async def finish() -> None:
        survivor = DeliveryWorker(db, local_settings, clock=clock, worker_id="survivor")
        stop = asyncio.Event()
        task = asyncio.create_task(survivor.run_forever(stop, grace_seconds=1))
        deadline = time.monotonic() + 30
        while (
            time.monotonic() < deadline
            and await asyncio.to_thread(_count, db, "succeeded") < FANOUT
        ):
            await asyncio.sleep(0.05)
        stop.set()
        await task

    asyncio.run(finish())
    assert _count(db, "succeeded") == FANOUT
    paths = {r.path for r in receiver.received}
    assert paths == {f"/k/{n}" for n in range(FANOUT)}
    assert {r.headers["webhook-id"] for r in receiver.received} == {make_event(now=clock()).id}


def test_three_workers_on_postgresql_send_each_delivery_once(
    db: Database, database_url: str, clock: MovableClock, receiver: Receiver
) -> None:
    if db.is_sqlite:
        pytest.skip("several workers need PostgreSQL (SKIP LOCKED); SQLite runs one worker")
    receiver.delay = 0.005
    _fan_out(db, receiver, clock())
    workers = [_spawn(database_url, f"w{n}", concurrency=20) for n in range(3)]
    try:
        assert _wait(lambda: _count(db, "succeeded") == FANOUT, timeout=60)
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        for worker in workers:
            worker.wait(15)
    with db.transaction(write=False) as session:
        successes = Counter(
            session.scalars(
                select(DeliveryAttempt.delivery_id).where(DeliveryAttempt.status_code == 200)
            )
        )
    assert len(successes) == FANOUT
    assert max(successes.values()) == 1
    assert Counter(r.path for r in receiver.received).most_common(1)[0][1] == 1
    assert len(receiver.received) == FANOUT
