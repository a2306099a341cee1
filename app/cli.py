"""The ``crosswatch`` command line. Errors print one line on stderr and exit non-zero
(2 for usage errors); a command that touches the store names it on stderr first; long
commands show their progress on stderr (:mod:`app.terminal`)."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from sqlalchemy.exc import SQLAlchemyError

# Typer vendors click (0.27+): its parser raises these exceptions, not the click package's.
from typer import _click as click
from typer._click import exceptions as click_errors
from typer.core import TyperGroup

from app.clock import system_clock
from app.db.engine import Database
from app.db.migrate import upgrade
from app.errors import CrosswatchError
from app.jobs import ingest
from app.logs import configure
from app.market import service as market
from app.market.bars import Bar
from app.market.cli import universe_cli
from app.market.progress import PollProgress
from app.settings import Settings, SettingsError, get_settings
from app.signals.brief_cli import brief_command
from app.signals.cli import screen as screen_command
from app.signals.models import Event
from app.terminal import Progress, plural, progress
from app.webhooks.callbacks import Enqueue


class _Commands(TyperGroup):
    """A reader that stops reading (``crosswatch export ^RUT | head``) ends the command
    quietly with status 0, not a traceback or click's status 1."""

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        try:  # ``crosswatch --help | head -1``
            return super().make_context(info_name, args, parent, **extra)
        except BrokenPipeError:
            _discard_stdout()
            raise typer.Exit(0) from None

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            _discard_stdout()
            raise typer.Exit(0) from None


def _discard_stdout() -> None:
    # What is still buffered for the closed pipe is flushed at exit: to /dev/null.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


cli = typer.Typer(
    cls=_Commands,
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
    typer.echo(f"store: {_store_name(settings)}", err=True)
    # Warnings (a symbol's failed poll) as they happen, redacted; the servers log more.
    configure(settings, at_least=logging.WARNING)
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
    with _store(migrate=True):
        typer.echo("store is at the newest migration")


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

    with _store() as (settings, db):
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


@cli.command("import")
def import_(
    symbol: Annotated[str, typer.Argument(help="Canonical symbol, e.g. ^RUT or IWM.")],
    file: Annotated[Path, typer.Argument(help="CSV: date,close[,open,high,low,volume].")],
) -> None:
    """Load a CSV of daily bars for SYMBOL: validated whole (XNYS sessions already
    closed, the provider-data rules), then stored, detected and enqueued like a poll."""
    from app.jobs.subscribers import custom_rules

    with _store() as (settings, db):
        symbol = market.normalise_symbol(symbol)
        bars = market.read_csv_file(file)
        with _import_progress(len(bars)) as advance:
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
        f"imported {stored.symbol}: {plural(stored.rows, 'session')} "
        f"({counts.added} added, {counts.revised} revised, {counts.unchanged} unchanged"
        f", {plural(len(stored.events), 'event')})"
    )


#: Files shorter than this import in about a second: no progress shown.
IMPORT_PROGRESS_ROWS = 5_000


@contextmanager
def _import_progress(total: int) -> Iterator[Callable[[int], None] | None]:
    if total < IMPORT_PROGRESS_ROWS:
        yield None
        return
    with progress("import", "rows", total) as shown:
        done = 0

        def advance(rows: int) -> None:
            nonlocal done
            done += rows
            shown.update(done)

        yield advance
        shown.finish(done)


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

    from app.jobs.runtime import poller
    from app.jobs.subscribers import custom_rules

    async def run(settings: Settings, db: Database) -> int:
        with ExitStack() as stack:
            # Shown from the first symbol done: the poll resolves which symbols it polls.
            shown: Progress | None = None
            started = time.monotonic()

            def tick(counts: PollProgress) -> None:
                nonlocal shown
                if shown is None:
                    shown = stack.enter_context(
                        progress("poll", "symbols", counts.total, started=started)
                    )
                shown.update(counts.done, f"{counts.added:,} added, {counts.failed:,} failed")

            async with poller(
                db, settings, clock=system_clock, enqueue=_enqueue(), rules=custom_rules
            ) as target:
                report = await target.poll(
                    [market.normalise_symbol(s) for s in symbols or []],
                    trigger="manual",
                    on_progress=tick,
                )
            if shown is not None:
                failed = sum(1 for outcome in report.outcomes if not outcome.ok)
                shown.finish(len(report.outcomes), f"{report.added:,} added, {failed:,} failed")
        for outcome in report.outcomes:
            if outcome.ok:
                typer.echo(
                    f"{outcome.symbol}: {outcome.added} added, {outcome.revised} revised, "
                    f"{len(outcome.rejected)} rejected, {plural(len(outcome.events), 'event')} "
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
def watch(
    symbols: Annotated[
        list[str] | None, typer.Argument(help="Symbols (default: the tracked watch list).")
    ] = None,
    at: Annotated[
        str | None,
        typer.Option(help="Check as if at this time, with its offset: 2025-08-06T15:00-04:00."),
    ] = None,
) -> None:
    """Run one intraday cross-watch check now (or as if --at); exit 1 outside a session
    or if a live quote failed."""
    from datetime import datetime

    from app.jobs.subscribers import custom_rules
    from app.jobs.watch import check, console, timing

    moment = None
    if at is not None:
        try:
            moment = datetime.fromisoformat(at)
        except ValueError:
            raise _fail(
                f"--at {at!r} is not an ISO date-time like 2025-08-06T15:00-04:00"
            ) from None
        if moment.tzinfo is None:
            raise _fail(f"--at {at!r} needs a UTC offset, e.g. 2025-08-06T15:00-04:00")

    with _store() as (settings, db):
        missing = timing.no_live_source(settings)
        if missing is not None:
            raise _fail(missing)
        names = [market.normalise_symbol(s) for s in symbols] if symbols else None

        async def run() -> check.WatchReport:
            async with check.watcher(
                db, settings, clock=system_clock, enqueue=_enqueue(), rules=custom_rules
            ) as watcher:
                return await watcher.check(at=moment, symbols=names)

        report = asyncio.run(run())
    if report.outside is not None:
        raise _fail(report.outside)
    for line in console.describe(report, settings.watch_distance_pct, explicit=bool(names)):
        typer.echo(line)
    raise typer.Exit(1 if any(f.error for f in report.findings) else 0)


@cli.command()
def scheduler() -> None:
    """Run only the poll scheduler (leads alone; a second one waits to take over)."""
    from app.jobs.runtime import run_scheduler
    from app.jobs.subscribers import custom_rules

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

    from app.jobs.subscribers import custom_rules

    with _store() as (_settings, db):
        name = market.normalise_symbol(symbol)
        bars = market.read_csv_file(file)
        total = sum(1 for bar in bars if first <= bar.session and (not last or bar.session <= last))
        with progress("replay", "sessions", total) as shown:
            done = found = 0

            def show(_bar: Bar, events: list[Event]) -> None:
                nonlocal done, found
                for event in events:
                    typer.echo(f"{event.session} {event.type} {event.symbol} {event.id}")
                done, found = done + 1, found + len(events)
                shown.update(done, plural(found, "event"))

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
            shown.finish(done, plural(found, "event"))
    typer.echo(f"replayed {name}: {plural(len(live), 'live event')}")


def _enqueue() -> Enqueue:
    """The outbox writer: new live events get their delivery rows in the same transaction."""
    from app.jobs.subscribers import enqueuer

    return enqueuer(system_clock)


@cli.command()
def worker(
    concurrency: Annotated[int, typer.Option(help="Deliveries in flight at once.", min=1)] = 100,
) -> None:
    """Run only the webhook delivery worker (several may share one PostgreSQL store)."""
    from app.webhooks.cli import run_worker

    with _store() as (settings, _db):
        configure(settings)
        run_worker(settings, concurrency=concurrency)


keys = typer.Typer(help="API keys.", no_args_is_help=True)
cli.add_typer(keys, name="keys")
cli.add_typer(universe_cli, name="universe")
cli.command("screen")(screen_command)
cli.command("brief")(brief_command)


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


def _store_name(settings: Settings) -> str:
    """The store's URL, password hidden, a SQLite file as its absolute path; and whether
    it is the default (a file under the current folder, so another folder is another
    store)."""
    from sqlalchemy.engine import make_url

    url = make_url(settings.database_url)
    database = url.database or ""
    if url.get_backend_name() == "sqlite" and not database.startswith("file:"):
        url = url.set(database=str(Path(database).resolve()))
    name = url.render_as_string(hide_password=True)
    if "database_url" not in settings.model_fields_set:
        name += " (the default: data/crosswatch.db under the current folder; "
        name += "CROSSWATCH_DATABASE_URL chooses another)"
    return name


def _usage_error(exc: click_errors.UsageError) -> str:
    """Click's usage error (a box, or several lines) as one line."""
    if isinstance(exc, click_errors.NoSuchOption) and exc.possibilities:
        message = f"no such option: {exc.option_name}"
        message += f", did you mean {' or '.join(sorted(exc.possibilities))}?"
    else:
        message = " ".join(exc.format_message().split()).rstrip(".")
        # "No such command 'exprot'. Did you mean 'export'?": one lower-case sentence.
        message = re.sub(r"\. ([A-Z])", lambda m: ", " + m.group(1).lower(), message)
        message = message[:1].lower() + message[1:]
    path = exc.ctx.command_path if exc.ctx is not None else "crosswatch"
    return f"error: {message} (try '{path} --help')"


def main() -> None:
    """The ``crosswatch`` entry point: usage errors are one line with status 2."""
    try:
        code = _run()
        sys.stdout.flush()
    except BrokenPipeError:
        _discard_stdout()
        code = 0
    sys.exit(code)


def _run() -> int:
    try:
        code = cli(prog_name="crosswatch", standalone_mode=False)
    except click_errors.NoArgsIsHelpError as exc:
        exc.show()
        return exc.exit_code
    except click_errors.UsageError as exc:
        typer.echo(_usage_error(exc), err=True)
        return exc.exit_code
    except click_errors.ClickException as exc:
        typer.echo(f"error: {exc.format_message()}", err=True)
        return exc.exit_code
    except typer.Abort:
        typer.echo("error: aborted", err=True)
        return 1
    return code if isinstance(code, int) else 0
