"""The long-running commands: ``serve`` (API, status page, scheduler and worker in one
process), ``scheduler`` and ``worker`` alone; and ``migrate``."""

from __future__ import annotations

from typing import Annotated

import typer

from app.cli.root import enqueue, run_until_signal, store
from app.clock import system_clock
from app.jobs import ingest
from app.logs import configure


def migrate() -> None:
    """Apply the database migrations (alembic upgrade head) to the configured store."""
    with store(migrate=True):
        typer.echo("store is at the newest migration")


def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    no_scheduler: Annotated[
        bool, typer.Option("--no-scheduler", help="Do not run the poll scheduler here.")
    ] = False,
    no_worker: Annotated[
        bool, typer.Option("--no-worker", help="Do not run the webhook delivery worker here.")
    ] = False,
) -> None:
    """Migrate, seed an empty store, and serve the API, status page, scheduler and worker."""
    import uvicorn

    from app.api.app import create_app

    with store() as (settings, db):
        configure(settings)
        if settings.seed:
            # Logged: one line per symbol seeded.
            ingest.seed(db, settings.symbols, clock=system_clock)
        app = create_app(
            settings,
            db=db,
            scheduler=not no_scheduler,
            worker=not no_worker,
            freeze_gc=True,
            warm=True,
        )
        # One process, one event loop: the app object (not an import string) cannot be
        # forked into several uvicorn workers, so nothing in it ever runs twice.
        # The standard asyncio loop, not uvloop: with uvloop this app's p99 latency under
        # 64 connections was 110-165 ms against 24 ms on asyncio, at the same throughput
        # (benchmarks/README.md).
        uvicorn.run(
            app,
            host=host,
            port=port,
            log_level=settings.log_level.lower(),
            log_config=None,
            loop="asyncio",
        )


def scheduler() -> None:
    """Run only the poll scheduler (leads alone; a second one waits to take over)."""
    from app.jobs.runtime import run_scheduler
    from app.jobs.subscribers import custom_rules

    with store() as (settings, db):
        configure(settings)
        run_until_signal(
            lambda stop: run_scheduler(
                db, settings, stop, clock=system_clock, enqueue=enqueue(), rules=custom_rules
            )
        )


def worker(
    concurrency: Annotated[
        int | None,
        typer.Option(help="Deliveries in flight at once (default: DELIVERY_CONCURRENCY).", min=1),
    ] = None,
) -> None:
    """Run only the webhook delivery worker (several may share one PostgreSQL store)."""
    from app.webhooks.cli import run_worker

    with store() as (settings, _db):
        configure(settings)
        run_worker(settings, concurrency=concurrency)
