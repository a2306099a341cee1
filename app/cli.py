"""The ``crosswatch`` command line. Errors print one line on stderr and exit non-zero."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, TypeVar

import typer

from app.clock import system_clock
from app.db.engine import Database
from app.db.migrate import upgrade
from app.errors import CrosswatchError
from app.market import service as market
from app.settings import Settings, SettingsError, get_settings

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
) -> None:
    """Migrate, seed an empty store with the bundled history, and serve the API."""
    import uvicorn

    from app.api.app import create_app
    from app.logs import configure

    with _store() as (settings, db):
        configure(settings)
        if settings.seed:
            for report in market.seed_if_empty(db, settings.symbols, clock=system_clock):
                typer.echo(f"seeded {report.symbol}: {report.rows} sessions", err=True)
        app = create_app(settings, db=db)
        # One process, one event loop: the app object (not an import string) cannot be
        # forked into several uvicorn workers, so nothing in it ever runs twice.
        uvicorn.run(app, host=host, port=port, log_level=settings.log_level.lower())


@cli.command("import")
def import_(
    symbol: Annotated[str, typer.Argument(help="Canonical symbol, e.g. ^RUT or IWM.")],
    file: Annotated[Path, typer.Argument(help="CSV: date,close[,open,high,low,volume].")],
) -> None:
    """Load a CSV of daily bars for SYMBOL: the whole file is validated, then stored at once."""
    with _store() as (_settings, db):
        symbol = market.normalise_symbol(symbol)
        bars = market.read_csv_file(file)
        with db.transaction() as session, _progress(len(bars)) as advance:
            report = market.store_bars(
                session,
                symbol,
                bars,
                source=market.IMPORT_SOURCE,
                clock=system_clock,
                on_progress=advance,
            )
    counts = report.counts
    typer.echo(
        f"imported {report.symbol}: {report.rows} sessions "
        f"({counts.added} added, {counts.revised} revised, {counts.unchanged} unchanged)"
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


def _redacted(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def main() -> None:
    try:
        cli()
    except BrokenPipeError:
        sys.exit(1)
