"""Command-line hooks: ``crosswatch worker`` runs only delivery (``run_worker``).

Also runnable as ``python -m app.webhooks.cli`` (settings from the environment), which
the reliability tests use to start, kill and restart real worker processes.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal

from app.db.engine import Database
from app.logs import configure
from app.settings import Settings, load_settings
from app.webhooks.worker import DeliveryWorker

log = logging.getLogger(__name__)


def run_worker(
    settings: Settings,
    *,
    worker_id: str | None = None,
    concurrency: int | None = None,
    lease_seconds: float | None = None,
) -> None:
    """Deliver webhooks until SIGINT or SIGTERM (blocking). The store must be migrated.

    ``concurrency`` and ``lease_seconds`` override the settings (``DELIVERY_*``)."""
    asyncio.run(_run(settings, worker_id, concurrency, lease_seconds))


async def _run(
    settings: Settings, worker_id: str | None, concurrency: int | None, lease_seconds: float | None
) -> None:
    db = Database(settings.database_url)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    worker = DeliveryWorker(
        db,
        settings,
        worker_id=worker_id,
        concurrency=concurrency,
        lease_seconds=lease_seconds,
    )
    log.info("delivery worker %s started", worker.worker_id)
    try:
        await worker.run_forever(stop)
    finally:
        db.dispose()
        log.info("delivery worker %s stopped", worker.worker_id)


def main() -> None:
    parser = argparse.ArgumentParser(description="Run one webhook delivery worker.")
    parser.add_argument("--worker-id")
    parser.add_argument("--concurrency", type=int, help="default: DELIVERY_CONCURRENCY")
    parser.add_argument("--lease-seconds", type=float, help="default: DELIVERY_LEASE_SECONDS")
    args = parser.parse_args()
    if args.lease_seconds is not None and args.lease_seconds <= 0:
        parser.error("--lease-seconds must be positive")
    settings = load_settings()
    configure(settings)
    run_worker(
        settings,
        worker_id=args.worker_id,
        concurrency=args.concurrency,
        lease_seconds=args.lease_seconds,
    )


if __name__ == "__main__":
    main()
