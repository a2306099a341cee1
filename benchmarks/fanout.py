"""Fan-out benchmark: one event to 5,000 subscriptions on a local receiver.

End-to-end (the commit that writes the outbox rows -> every delivery acknowledged and
recorded as succeeded in the store) against the fastest raw async loop POSTing the same
signed payloads at the same concurrency (raw httpx and raw aiohttp are both timed in
this run). The receiver is an aiohttp server in a separate process. Runs on SQLite,
and on PostgreSQL when ``--pg URL`` or ``CROSSWATCH_TEST_DATABASE_URL`` is given (that
database is wiped).

Run: ``.venv/bin/python benchmarks/fanout.py [--subscriptions 5000] [--concurrency 100]``.
Last line: ``fanout/raw=R deliveries_per_s=N first_attempt_p50_ms=L`` (the last store
measured; L is from the enqueueing commit to each delivery's first attempt).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import aiohttp
import httpx
from aiohttp import web
from sqlalchemy import func, select, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.auth.service import Identity
from app.db.engine import Database
from app.db.migrate import upgrade
from app.metadata import metadata
from app.settings import load_settings
from app.signals.models import Event
from app.webhooks import service
from app.webhooks.models import Delivery, DeliveryAttempt
from app.webhooks.schemas import SubscriptionIn
from app.webhooks.signing import new_secret, secret_key, webhook_headers
from app.webhooks.ssrf import system_resolver
from app.webhooks.worker import DeliveryWorker, message_body

OWNER = Identity(key_id=None, name="bench", admin=True)


def _receiver(port: int, ready: multiprocessing.synchronize.Event, received: Any) -> None:  # type: ignore[name-defined]
    async def ok(_request: web.Request) -> web.Response:
        await _request.read()
        with received.get_lock():
            received.value += 1
        return web.Response(text="ok")

    async def main() -> None:
        app = web.Application()
        app.router.add_route("POST", "/{tail:.*}", ok)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port, backlog=4096).start()
        ready.set()
        await asyncio.Event().wait()

    asyncio.run(main())


def _payloads(base: str, n: int) -> list[tuple[str, bytes, dict[str, str]]]:
    now = datetime.now(UTC)
    data = b'{"id":"evt_bench","type":"golden_cross","data":{}}'
    key = secret_key(new_secret())
    out = []
    for i in range(n):
        body = message_body("golden_cross", now, data)
        out.append((f"{base}/s/{i}", body, webhook_headers([key], "evt_bench", 0, body)))
    return out


async def raw_aiohttp(payloads: list[tuple[str, bytes, dict[str, str]]], c: int) -> float:
    sem = asyncio.Semaphore(c)
    connector = aiohttp.TCPConnector(limit=c)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(url: str, body: bytes, headers: dict[str, str]) -> None:
            async with sem, session.post(url, data=body, headers=headers) as response:
                await response.read()

        started = time.perf_counter()
        await asyncio.gather(*(one(*p) for p in payloads))
        return time.perf_counter() - started


async def raw_httpx(payloads: list[tuple[str, bytes, dict[str, str]]], c: int) -> float:
    sem = asyncio.Semaphore(c)
    limits = httpx.Limits(max_connections=c, max_keepalive_connections=c)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:

        async def one(url: str, body: bytes, headers: dict[str, str]) -> None:
            async with sem:
                (await client.post(url, content=body, headers=headers)).raise_for_status()

        started = time.perf_counter()
        await asyncio.gather(*(one(*p) for p in payloads))
        return time.perf_counter() - started


def _prepare(url: str, base: str, n: int) -> Database:
    db = Database(url)
    upgrade(db.engine)
    if not db.is_sqlite:
        names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
        with db.engine.begin() as connection:
            connection.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    policy = service.UrlPolicy(resolver=system_resolver, allow_private=True)
    now = datetime.now(UTC)
    with db.transaction() as session:
        for i in range(n):
            service.create_subscription(
                session, OWNER, SubscriptionIn(url=f"{base}/s/{i}"), now=now, urls=policy
            )
    return db


async def end_to_end(
    url: str, db: Database, n: int, c: int, received: Any = None
) -> tuple[float, float]:
    settings = load_settings(database_url=url, webhook_allow_private=True, _env_file=None)
    worker = DeliveryWorker(db, settings, concurrency=c, per_endpoint=10)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run_forever(stop, grace_seconds=1))
    await asyncio.sleep(0.3)  # worker idle and connected before the clock starts
    now = datetime.now(UTC)
    event = Event(
        id="evt_bench_" + str(time.time_ns()),
        type="golden_cross",
        symbol="^RUT",
        session=date(2026, 8, 21),
        rule="sma:50:200",
        live=True,
        data={"close": 2200.5},
        created_at=now,
    )
    committed_at: list[float] = []
    if received is not None:
        received.value = 0

    def enqueue() -> datetime:
        with db.transaction() as session:
            session.add(event)
            session.flush()
            service.enqueue_for_events(session, [event], now=datetime.now(UTC))
        committed_at.append(time.perf_counter())
        return datetime.now(UTC)

    committed = await asyncio.to_thread(enqueue)
    started = committed_at[0]  # the clock starts when the outbox rows are committed
    query = select(func.count()).where(Delivery.status == "succeeded")

    # Until the receiver has been sent every delivery, watch its counter (shared
    # memory), not the store: polling PostgreSQL every 10 ms would take CPU from the
    # run being measured. Then poll the store until all are recorded as succeeded.
    while received is not None and received.value < n:
        await asyncio.sleep(0.005)
    with db.engine.connect() as connection:

        def done() -> int:
            count = int(connection.scalar(query) or 0)
            connection.rollback()  # a fresh snapshot for the next look
            return count

        while await asyncio.to_thread(done) < n:
            await asyncio.sleep(0.01)
    elapsed = time.perf_counter() - started
    stop.set()
    await task
    with db.transaction(write=False) as session:
        firsts = session.execute(
            select(func.min(DeliveryAttempt.attempted_at)).group_by(DeliveryAttempt.delivery_id)
        ).scalars()
        lags = [(first - committed).total_seconds() * 1000 for first in firsts]
    return elapsed, statistics.median(lags)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--subscriptions", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--pg", default=os.environ.get("CROSSWATCH_TEST_DATABASE_URL"))
    parser.add_argument("--port", type=int, default=18765)
    args = parser.parse_args()
    n, c = args.subscriptions, args.concurrency
    ready = multiprocessing.Event()
    received = multiprocessing.Value("i", 0)
    server = multiprocessing.Process(
        target=_receiver, args=(args.port, ready, received), daemon=True
    )
    server.start()
    ready.wait(10)
    base = f"http://127.0.0.1:{args.port}"
    try:
        payloads = _payloads(base, n)
        asyncio.run(raw_aiohttp(payloads[:200], c))  # warm-up
        aio = asyncio.run(raw_aiohttp(payloads, c))
        hx = asyncio.run(raw_httpx(payloads, c))
        fastest = min(aio, hx)
        print(f"raw aiohttp: {n / aio:,.0f}/s  raw httpx: {n / hx:,.0f}/s  (concurrency {c})")
        stores = [f"sqlite:///{tempfile.mkdtemp()}/bench.db"] + ([args.pg] if args.pg else [])
        line = ""
        for url in stores:
            db = _prepare(url, base, n)
            elapsed, p50 = asyncio.run(end_to_end(url, db, n, c, received))
            db.dispose()
            name = "sqlite" if url.startswith("sqlite") else "postgresql"
            print(f"{name}: end-to-end {elapsed:.2f}s for {n} deliveries")
            line = (
                f"fanout/raw={elapsed / fastest:.2f} deliveries_per_s={n / elapsed:,.0f} "
                f"first_attempt_p50_ms={p50:.0f}"
            )
            print(f"{name}: {line}")
        print(line)
    finally:
        server.terminate()


if __name__ == "__main__":
    main()
