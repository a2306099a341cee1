"""Regression: when the store refuses the write of delivery outcomes (a dropped
connection, a restart), the worker keeps them and records them once the store answers
again. It used to drop them, so every delivery the receivers had acknowledged was sent
a second time when its lease ran out (60 s later), with the first attempt missing from
the delivery log. The refusal is a trigger in the store, removed mid-test."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter

import pytest
from sqlalchemy import func, select

from app.db.engine import Database
from app.settings import load_settings
from app.webhooks.models import Delivery, DeliveryAttempt
from app.webhooks.worker import DeliveryWorker
from tests.support.wait import until
from tests.webhooks.conftest import MovableClock, Receiver, make_event, store_and_enqueue
from tests.webhooks.conftest import subscribe as store_subscription

SUBSCRIPTIONS = 5
REFUSE = {
    "sqlite": [
        "CREATE TRIGGER faults_refuse BEFORE INSERT ON delivery_attempts "
        "BEGIN SELECT RAISE(ABORT, 'faults: the store refused the write'); END"
    ],
    "postgresql": [
        "CREATE FUNCTION faults_refuse() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'faults: the store refused the write'; END $$",
        "CREATE TRIGGER faults_refuse BEFORE INSERT ON delivery_attempts "
        "FOR EACH ROW EXECUTE FUNCTION faults_refuse()",
    ],
}
ACCEPT = {
    "sqlite": ["DROP TRIGGER IF EXISTS faults_refuse"],
    "postgresql": [
        "DROP TRIGGER IF EXISTS faults_refuse ON delivery_attempts",
        "DROP FUNCTION IF EXISTS faults_refuse()",
    ],
}


def _execute(db: Database, statements: list[str]) -> None:
    with db.engine.begin() as connection:
        for statement in statements:
            connection.exec_driver_sql(statement)


def _succeeded(db: Database) -> int:
    with db.transaction(write=False) as session:
        query = select(func.count()).where(Delivery.status == "succeeded")
        return int(session.scalar(query) or 0)


def test_outcomes_refused_by_the_store_are_recorded_later_not_resent(
    db: Database, database_url: str, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    clock = MovableClock()  # never advanced: the 60 s leases never run out here
    dialect = db.engine.dialect.name
    for n in range(SUBSCRIPTIONS):
        store_subscription(db, receiver.url(f"/h/{n}"), now=clock())
    settings = load_settings(
        database_url=database_url, seed=False, webhook_allow_private=True, _env_file=None
    )
    _execute(db, REFUSE[dialect])
    try:
        store_and_enqueue(db, [make_event(now=clock())], clock())

        async def deliver() -> None:
            worker = DeliveryWorker(db, settings, clock=clock, worker_id="hiccup")
            stop = asyncio.Event()
            task = asyncio.create_task(worker.run_forever(stop, grace_seconds=1))
            try:
                await until(
                    lambda: (
                        len(receiver.received) == SUBSCRIPTIONS
                        and any("outcomes failed" in r.getMessage() for r in caplog.records)
                    ),
                    10,
                    "the sends, and the store refusing their outcomes",
                    in_thread=True,
                )
                await asyncio.to_thread(_execute, db, ACCEPT[dialect])
                await until(
                    lambda: _succeeded(db) == SUBSCRIPTIONS,
                    10,
                    "the outcomes to be recorded",
                    in_thread=True,
                )
            finally:
                stop.set()
                await task

        with caplog.at_level(logging.ERROR, logger="app.webhooks.worker"):
            asyncio.run(deliver())
    finally:
        _execute(db, ACCEPT[dialect])

    assert len(receiver.received) == SUBSCRIPTIONS, "an acknowledged delivery was sent again"
    with db.transaction(write=False) as session:
        attempts = Counter(session.scalars(select(DeliveryAttempt.delivery_id)))
    assert len(attempts) == SUBSCRIPTIONS and set(attempts.values()) == {1}
