"""The ``crosswatch`` command line. Errors print one line on stderr and exit non-zero."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from sqlalchemy.exc import SQLAlchemyError

from app.clock import system_clock
from app.db.engine import Database
from app.db.migrate import upgrade
from app.errors import CrosswatchError
from app.jobs import ingest
from app.market import service as market
from app.market.bars import Bar
from app.market.cli import universe_cli
from app.settings import Settings, SettingsError, get_settings
from app.signals.cli import screen as screen_command
from app.signals.models import Event

cli = typer.Typer(
    name="crosswatch",
    help="Crosswatch: golden-cross alerts for stock indices.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

T = TypeVar("T")


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


@contextmanager
def _store(*, migrate: bool = True) -> Iterator[tuple[Settings, Database]]:
    """Settings and a migrated store; domain and setting errors become one line."""
    try:
        settings = get_settings()
        db = Database(settings.database_url)
    except SettingsError as exc:
        raise _fail(str(exc)) from None
    try:
        if migrate:
            upgrade(db.engine)
        yield settings, db
    except CrosswatchError as exc:
        raise _fail(exc.detail) from None
    except SQLAlchemyError as exc:
        cause = getattr(exc, "orig", None) or exc
        reason = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
        raise _fail(f"the store failed: {reason}") from None
    finally:
        db.dispose()


@cli.command()
def migrate() -> None:
    """Apply the database migrations (alembic upgrade head) to the configured store."""
    with _store(migrate=True) as (settings, _db):
        typer.echo(f"store is at the newest migration ({_redacted(settings.database_url)})")


@cli.command()
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
    from app.logs import configure

    with _store() as (settings, db):
        configure(settings)
        if settings.seed:
            for report in ingest.seed(db, settings.symbols, clock=system_clock):
                typer.echo(f"seeded {report.symbol}: {report.rows} sessions", err=True)
        app = create_app(
            settings, db=db, scheduler=not no_scheduler, worker=not no_worker, freeze_gc=True
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


@cli.command("import")
def import_(
    symbol: Annotated[str, typer.Argument(help="Canonical symbol, e.g. ^RUT or IWM.")],
    file: Annotated[Path, typer.Argument(help="CSV: date,close[,open,high,low,volume].")],
) -> None:
    """Load a CSV of daily bars for SYMBOL: validated whole (XNYS sessions already
    closed, the provider-data rules), then stored, detected and enqueued like a poll."""
    from app.jobs.outbox import custom_rules

    with _store() as (settings, db):
        symbol = market.normalise_symbol(symbol)
        bars = market.read_csv_file(file)
        with _progress(len(bars)) as advance:
            stored = ingest.import_bars(
                db,
                symbol,
                bars,
                clock=system_clock,
                bad_tick_pct=settings.bad_tick_pct,
                enqueue=_enqueue(),
                rules=custom_rules,
                on_progress=advance,
            )
    counts = stored.counts
    typer.echo(
        f"imported {stored.symbol}: {stored.rows} sessions "
        f"({counts.added} added, {counts.revised} revised, {counts.unchanged} unchanged"
        f", {len(stored.events)} events)"
    )


@contextmanager
def _progress(total: int) -> Iterator[Callable[[int], None] | None]:
    if not sys.stderr.isatty() or total < 5_000:
        yield None
        return
    from rich.progress import Progress

    with Progress(transient=True) as progress:
        task = progress.add_task("storing", total=total)
        yield lambda n: progress.advance(task, n)


@cli.command()
def export(symbol: Annotated[str, typer.Argument(help="Canonical symbol, e.g. ^RUT.")]) -> None:
    """Print the stored bars of SYMBOL as CSV (date,close,open,high,low,volume)."""
    with _store() as (_settings, db), db.transaction(write=False) as session:
        out = sys.stdout
        for line in market.export_csv(session, market.normalise_symbol(symbol)):
            out.write(line)


@cli.command()
def signals(
    symbols: Annotated[list[str] | None, typer.Argument(help="Symbols (default: all).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Print the current default-rule (50/200 SMA) signals."""
    from app.signals.report import print_signals

    with _store() as (_settings, db), db.transaction(write=False) as session:
        print_signals(session, symbols or [], as_json=as_json, now=system_clock())


@cli.command()
def poll(
    symbols: Annotated[list[str] | None, typer.Argument(help="Symbols (default: tracked).")] = None,
) -> None:
    """Poll now through the configured providers; exit 1 if any symbol failed."""
    import asyncio

    from app.jobs.outbox import custom_rules
    from app.jobs.runtime import poller

    async def run(settings: Settings, db: Database) -> int:
        async with poller(
            db, settings, clock=system_clock, enqueue=_enqueue(), rules=custom_rules
        ) as target:
            report = await target.poll(
                [market.normalise_symbol(s) for s in symbols or []], trigger="manual"
            )
        for outcome in report.outcomes:
            if outcome.ok:
                typer.echo(
                    f"{outcome.symbol}: {outcome.added} added, {outcome.revised} revised, "
                    f"{len(outcome.rejected)} rejected, {len(outcome.events)} events "
                    f"(source {outcome.source}, instrument {outcome.instrument})"
                )
            else:
                typer.echo(f"{outcome.symbol}: failed: {outcome.error}", err=True)
            for day, reason in outcome.rejected:
                typer.echo(f"  rejected {day or '-'}: {reason}", err=True)
        return 0 if report.status == "ok" else 1

    with _store() as (settings, db):
        code = asyncio.run(run(settings, db))
    raise typer.Exit(code)


@cli.command()
def scheduler() -> None:
    """Run only the poll scheduler (leads alone; a second one waits to take over)."""
    from app.jobs.outbox import custom_rules
    from app.jobs.runtime import run_scheduler
    from app.logs import configure

    with _store() as (settings, db):
        configure(settings)
        _run_until_signal(
            lambda stop: run_scheduler(
                db, settings, stop, clock=system_clock, enqueue=_enqueue(), rules=custom_rules
            )
        )


@cli.command()
def replay(
    symbol: Annotated[str, typer.Argument(help="Symbol to feed, e.g. ^RUT.")],
    file: Annotated[Path, typer.Argument(help="CSV: date,close[,open,high,low,volume].")],
    start: Annotated[str, typer.Option("--from", help="First session fed as live.")],
    end: Annotated[str | None, typer.Option("--to", help="Last session fed.")] = None,
    interval: Annotated[float, typer.Option(help="Seconds between sessions.", min=0)] = 1.0,
) -> None:
    """Load FILE's history before --from, then feed one session per interval as if live."""
    import asyncio
    from datetime import date

    try:
        first = date.fromisoformat(start)
        last = date.fromisoformat(end) if end else None
    except ValueError as exc:
        raise _fail(f"--from/--to must be YYYY-MM-DD ({exc})") from None
    if last is not None and last < first:
        raise _fail(f"--to {last} is before --from {first}")

    def show(_bar: Bar, events: list[Event]) -> None:
        for event in events:
            typer.echo(f"{event.session} {event.type} {event.symbol} {event.id}")

    from app.jobs.outbox import custom_rules

    with _store() as (_settings, db):
        name = market.normalise_symbol(symbol)
        bars = market.read_csv_file(file)
        live = asyncio.run(
            ingest.replay(
                db,
                name,
                bars,
                start=first,
                end=last,
                interval=interval,
                clock=system_clock,
                enqueue=_enqueue(),
                rules=custom_rules,
                on_session=show,
            )
        )
    typer.echo(f"replayed {name}: {len(live)} live events")


def _enqueue() -> Callable[..., object]:
    """The outbox writer: new live events get their delivery rows in the same transaction."""
    from app.jobs.outbox import enqueuer

    return enqueuer(system_clock)


@cli.command()
def worker(
    concurrency: Annotated[int, typer.Option(help="Deliveries in flight at once.", min=1)] = 100,
) -> None:
    """Run only the webhook delivery worker (several may share one PostgreSQL store)."""
    from app.logs import configure
    from app.webhooks.cli import run_worker

    with _store() as (settings, _db):
        configure(settings)
        run_worker(settings, concurrency=concurrency)


keys = typer.Typer(help="API keys.", no_args_is_help=True)
cli.add_typer(keys, name="keys")
cli.add_typer(universe_cli, name="universe")
cli.command("screen")(screen_command)


@keys.command("create")
def keys_create(
    name: Annotated[str, typer.Option(help="Who or what the key is for.")],
    admin: Annotated[bool, typer.Option("--admin", help="May manage every subscription.")] = False,
) -> None:
    """Create an API key and print it once (only its hash is stored)."""
    from app.auth.service import keys_create as create

    with _store() as (settings, _db):
        typer.echo(create(settings, name.strip() or "unnamed", admin))


def _run_until_signal(main: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    """Run ``main(stop)`` until SIGINT or SIGTERM sets ``stop``."""
    import signal

    async def runner() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await main(stop)

    asyncio.run(runner())


def _redacted(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def main() -> None:
    try:
        cli()
    except BrokenPipeError:
        sys.exit(1)
