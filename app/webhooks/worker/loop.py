"""The claim loop: claims due rows ahead of the sends, on wake-ups and on a timer."""

from __future__ import annotations

import asyncio
import logging
import os
import random as random_module
import socket
from datetime import timedelta

import aiohttp
import psycopg
from sqlalchemy.engine import make_url

from app.clock import Clock, system_clock
from app.db.engine import Database
from app.settings import Settings
from app.webhooks import repository
from app.webhooks.schedule import Random
from app.webhooks.ssrf import Resolver, system_resolver
from app.webhooks.worker.dispatcher import Dispatcher
from app.webhooks.worker.flusher import Flusher
from app.webhooks.worker.sender import Sender
from app.webhooks.worker.store import WorkerStore

log = logging.getLogger(__name__)
#: A claimed row starts only while its lease outlasts a whole send by this much.
LEASE_MARGIN_SECONDS = 5.0


class DeliveryWorker:
    """One worker: ``run_forever`` (the service) or ``run_once`` (one batch, for tests).

    ``concurrency``, ``per_endpoint`` and ``lease_seconds`` default to the settings
    (``DELIVERY_CONCURRENCY``, ``DELIVERY_PER_ENDPOINT``, ``DELIVERY_LEASE_SECONDS``).
    """

    def __init__(
        self,
        db: Database,
        settings: Settings,
        *,
        clock: Clock = system_clock,
        http: aiohttp.ClientSession | None = None,
        worker_id: str | None = None,
        concurrency: int | None = None,
        per_endpoint: int | None = None,
        lease_seconds: float | None = None,
        timeout_seconds: float = 15,
        poll_interval: float = 0.5,
        batch_size: int = 1000,
        wake: asyncio.Event | None = None,
        resolver: Resolver = system_resolver,
        random: Random = random_module.random,
    ) -> None:
        if concurrency is None:
            concurrency = settings.delivery_concurrency
        if per_endpoint is None:
            per_endpoint = settings.delivery_per_endpoint
        if lease_seconds is None:
            lease_seconds = settings.delivery_lease_seconds
        if lease_seconds <= 0:
            raise ValueError("the lease must be positive")
        self.db = db
        self.settings = settings
        self.clock = clock
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}"
        self.concurrency = concurrency
        self.per_endpoint = per_endpoint
        self.lease = timedelta(seconds=lease_seconds)
        self.poll_interval = poll_interval
        self.batch_size = batch_size
        self._wake = wake or asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.store = WorkerStore(
            db, clock, worker_id=self.worker_id, lease=self.lease, per_endpoint=per_endpoint
        )
        self.sender = Sender(
            settings,
            clock,
            http=http,
            connections=concurrency,
            timeout_seconds=timeout_seconds,
            resolver=resolver,
            random=random,
        )
        self.flusher = Flusher(self.store, clock, self.lease)
        self.dispatcher = Dispatcher(
            self.sender,
            self.flusher,
            concurrency=concurrency,
            batch_size=batch_size,
            # (A lease too short for that, e.g. in tests: at least half of it must be left.)
            start_by=max(lease_seconds - timeout_seconds - LEASE_MARGIN_SECONDS, lease_seconds / 2),
            wake=self._wake,
        )

    async def __aenter__(self) -> DeliveryWorker:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    def notify(self) -> None:
        """Wake the loop now (thread-safe): new rows were committed."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._wake.set)

    async def close(self) -> None:
        await self.sender.close()

    async def run_once(self) -> int:
        """Claim one batch of due rows, deliver them all, record them; returns the count."""
        self._loop = asyncio.get_running_loop()
        jobs, _more = await asyncio.to_thread(self.store.claim, self.batch_size, {})
        if not jobs:
            return 0
        self.dispatcher.dispatch(jobs)
        await self.dispatcher.idle.wait()
        results = self.flusher.take()
        await asyncio.to_thread(self.store.record, results)
        return len(results)

    async def run_forever(self, stop: asyncio.Event, *, grace_seconds: float = 5.0) -> None:
        """Deliver until ``stop`` is set; then wait up to ``grace_seconds`` for sends."""
        self._loop = asyncio.get_running_loop()
        unregister = repository.register_waker(self.notify)
        listener = None
        if self.db.engine.dialect.name == "postgresql":
            listener = asyncio.create_task(self._listen())
        flusher = asyncio.create_task(self.flusher.run())
        try:
            await self._loop_until(stop)
        finally:
            unregister()
            # Rows not yet started go back to the queue at once; sends get the grace.
            unsent = await self.dispatcher.stop(grace_seconds)
            flusher.cancel()
            if listener is not None:
                listener.cancel()
            await asyncio.gather(flusher, *(t for t in [listener] if t), return_exceptions=True)
            await self.flusher.record_all()
            if unsent:
                await asyncio.to_thread(self.store.release, unsent)
            await self.close()

    async def _loop_until(self, stop: asyncio.Event) -> None:
        # Besides the sends, up to ``batch_size`` rows are claimed ahead, so a claim's
        # round trip never leaves the sends idle. A claim is made when the rows
        # waiting fall to half of that (the dispatcher's ``room``), on a wake-up (new
        # rows committed) or every ``poll_interval`` (retries falling due).
        dispatcher = self.dispatcher
        capacity = self.concurrency + self.batch_size
        more = False
        while not stop.is_set():
            self._wake.clear()
            dispatcher.room.clear()
            expired = dispatcher.take_expired()
            if expired:
                try:
                    await asyncio.to_thread(self.store.release, expired)
                except Exception:
                    log.exception("releasing %d rows failed; their leases will end", len(expired))
            room = capacity - len(dispatcher.ready) - len(dispatcher.running)
            if room >= max(1, self.batch_size // 2) or not dispatcher.running:
                try:
                    jobs, more = await asyncio.to_thread(
                        self.store.claim, room, dict(dispatcher.held)
                    )
                except Exception:
                    log.exception("claiming deliveries failed; retrying")
                    jobs, more = [], False
                dispatcher.dispatch(jobs)
            else:
                more = True  # claim again once sends have made room
            waiters = [self._wake.wait(), stop.wait()]
            if more:
                waiters.append(dispatcher.room.wait())
            tasks = [asyncio.ensure_future(waiter) for waiter in waiters]
            await asyncio.wait(
                tasks, timeout=self.poll_interval, return_when=asyncio.FIRST_COMPLETED
            )
            for task in tasks:
                task.cancel()

    async def _listen(self) -> None:
        url = make_url(self.db.url).set(drivername="postgresql")
        conninfo = url.render_as_string(hide_password=False)
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    conninfo, autocommit=True
                ) as connection:
                    await connection.execute(f"LISTEN {repository.NOTIFY_CHANNEL}")
                    async for _note in connection.notifies():
                        self._wake.set()
            except (psycopg.Error, OSError) as exc:
                log.warning("LISTEN connection lost (%s); polling meanwhile", exc)
                await asyncio.sleep(1)
