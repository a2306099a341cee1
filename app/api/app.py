"""The FastAPI application factory, and the background roles it may host.

``crosswatch serve`` runs one process: the API plus (unless told not to) the poll
scheduler and the delivery worker as tasks of the same event loop, started in the
lifespan. The app object is handed to uvicorn directly, so it cannot be forked into
several web workers: the scheduler never runs once per web worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import threading
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from app.api.limits import BodyLimit
from app.clock import Clock, system_clock
from app.db.engine import Database
from app.market import router as market_router
from app.settings import Settings, get_settings
from app.signals import brief_router, screen_router
from app.signals import router as signals_router
from app.signals.book import SignalBook
from app.signals.fastpath import CachedSignals
from app.signals.fastpath import warm as warm_signals
from app.status import health
from app.status import metrics as status_metrics
from app.status import router as status_router
from app.web import problems
from app.web.deps import Services, StoreGate
from app.webhooks import router as webhooks_router

log = logging.getLogger("crosswatch.app")

DESCRIPTION = """Golden-cross technical alerts: moving-average crosses, trigger closes,
drawdowns and turns of the Russell 2000, S&P 500, Nasdaq and any symbol you track.
Symbols in paths are URL-encoded: `^RUT` is `%5ERUT`. Errors are RFC 9457
`application/problem+json`. Reads are public; writes and everything under
`/v1/webhooks` need `Authorization: Bearer <api key>`."""


def create_app(
    settings: Settings | None = None,
    *,
    db: Database | None = None,
    clock: Clock = system_clock,
    scheduler: bool = False,
    worker: bool = False,
    freeze_gc: bool = False,
    warm: bool = False,
    signal_book: SignalBook | None = None,
) -> FastAPI:
    """Build the app. The store (and any background role) starts in the lifespan.

    ``freeze_gc`` (the ``serve`` process, not tests): once started, everything alive is
    moved out of the garbage collector's reach (``gc.freeze``), so its full collections
    scan only what requests create instead of the whole process (libraries, calendars,
    the signal book): those pauses were the API's latency tail.

    ``warm`` (the ``serve`` process): the signal book's snapshot and the ``/v1/signals``
    body are computed in the background at start, and ``/readyz`` answers 503
    "warming" until they exist, so no request waits for a cold render.
    ``app.state.signals_warm`` is set once they do (at once without ``warm``). With
    ``warm``, a poll of the scheduler that added data warms the book again once it has
    committed (``app.state.signals_rewarmed`` is set after each such warm-up).
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        resolved = settings or get_settings()
        owned = db is None
        database = db or Database(resolved.database_url)
        book = signal_book or SignalBook()
        gate = StoreGate.for_store(resolved, database)
        services = Services(settings=resolved, db=database, gate=gate, clock=clock)
        app.state.services = services
        app.state.signal_book = book
        stop = asyncio.Event()
        rewarmed = threading.Event()
        app.state.signals_rewarmed = rewarmed
        tasks = [
            asyncio.create_task(role, name=name)
            for name, role in _roles(
                services,
                book,
                stop,
                scheduler=scheduler,
                worker=worker,
                rewarmed=rewarmed if warm else None,
            )
        ]
        warmed = threading.Event()
        app.state.signals_warm = warmed
        if warm:
            health.start_warming(database)
            tasks.append(asyncio.create_task(_warm(services, book, warmed), name="warm-up"))
        else:
            warmed.set()
        if freeze_gc:
            gc.collect()
            gc.freeze()
        try:
            yield
        finally:
            stop.set()
            for task in tasks:
                with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                    await asyncio.wait_for(task, timeout=10)
            if owned:
                database.dispose()

    # Swagger UI and ReDoc from the installed fastapi-offline package, not a CDN: /docs
    # renders on a machine with no internet.
    app = FastAPIOffline(
        title="Crosswatch", version="0.1.0", description=DESCRIPTION, lifespan=lifespan
    )
    problems.install(app)
    app.add_middleware(BodyLimit)  # innermost: a 413 is still counted in the metrics
    app.add_middleware(CachedSignals)  # inside the request metrics (installed next)
    status_metrics.install(app)
    app.include_router(status_router.router)
    app.include_router(signals_router.router)
    app.include_router(screen_router.router)
    app.include_router(brief_router.router)
    app.include_router(market_router.router)
    app.include_router(market_router.universes_router)
    app.include_router(webhooks_router.router)
    return app


def _roles(
    services: Services,
    book: SignalBook,
    stop: asyncio.Event,
    *,
    scheduler: bool,
    worker: bool,
    rewarmed: threading.Event | None = None,
) -> list[tuple[str, Coroutine[Any, Any, None]]]:
    """The background roles; with ``rewarmed``, a poll that added data is followed by
    a warm-up of ``book`` (:func:`_rewarm`), which sets ``rewarmed`` when done."""
    from app.jobs.poll import PollReport
    from app.jobs.runtime import run_scheduler
    from app.jobs.subscribers import custom_rules, enqueuer
    from app.webhooks.worker import DeliveryWorker

    roles: list[tuple[str, Coroutine[Any, Any, None]]] = []
    delivery = (
        DeliveryWorker(services.db, services.settings, clock=services.clock) if worker else None
    )
    services.delivery = delivery

    rewarms: set[asyncio.Task[None]] = set()  # referenced until done

    def committed(report: PollReport) -> None:
        book.invalidate()
        if delivery is not None:
            delivery.notify()
        if rewarmed is not None and report.added:
            task = asyncio.get_running_loop().create_task(_rewarm(services, book, rewarmed))
            rewarms.add(task)
            task.add_done_callback(rewarms.discard)

    if scheduler:
        roles.append(
            (
                "scheduler",
                run_scheduler(
                    services.db,
                    services.settings,
                    stop,
                    clock=services.clock,
                    enqueue=enqueuer(services.clock),
                    rules=custom_rules,
                    on_committed=committed,
                ),
            )
        )
    if delivery is not None:

        async def deliver(worker: DeliveryWorker) -> None:
            try:
                await worker.run_forever(stop)
            finally:
                await worker.close()

        roles.append(("delivery-worker", deliver(delivery)))
    return roles


async def _warm(services: Services, book: SignalBook, warmed: threading.Event) -> None:
    try:
        await asyncio.to_thread(warm_signals, book, services.db, services.clock())
    except Exception:
        # Readiness then reports the store's own state; requests render on demand.
        log.exception("warming the signal book failed")
    finally:
        health.finish_warming(services.db)
        warmed.set()


async def _rewarm(services: Services, book: SignalBook, rewarmed: threading.Event) -> None:
    """The snapshot and the ``/v1/signals`` body again after a poll committed new data,
    in a thread and a read transaction of its own (the poll's writes are committed and
    its transaction is over), so the next request is served from memory."""
    try:
        await asyncio.to_thread(warm_signals, book, services.db, services.clock())
    except Exception:
        log.exception("re-warming the signal book failed")
    finally:
        rewarmed.set()
