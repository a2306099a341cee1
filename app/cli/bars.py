"""Bars from and to files: ``import`` and ``export`` a symbol's CSV, ``replay`` one as if
live."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from app.cli.root import enqueue, fail, store
from app.clock import system_clock
from app.jobs import ingest
from app.market import service as market
from app.market.bars import Bar
from app.signals.models import Event
from app.terminal import plural, progress


def import_(
    symbol: Annotated[str, typer.Argument(help="Canonical symbol, e.g. ^RUT or IWM.")],
    file: Annotated[Path, typer.Argument(help="CSV: date,close[,open,high,low,volume].")],
) -> None:
    """Load a CSV of daily bars for SYMBOL: validated whole (XNYS sessions already
    closed, the provider-data rules), then stored, detected and enqueued like a poll."""
    from app.jobs.subscribers import custom_rules

    with store() as (settings, db):
        symbol = market.normalise_symbol(symbol)
        bars = market.read_csv_file(file)
        with _import_progress(len(bars)) as advance:
            stored = ingest.import_bars(
                db,
                symbol,
                bars,
                clock=system_clock,
                bad_tick_pct=settings.bad_tick_pct,
                enqueue=enqueue(),
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


def export(symbol: Annotated[str, typer.Argument(help="Canonical symbol, e.g. ^RUT.")]) -> None:
    """Print the stored bars of SYMBOL as CSV (date,close,open,high,low,volume)."""
    with store() as (_settings, db), db.transaction(write=False) as session:
        out = sys.stdout
        for line in market.export_csv(session, market.normalise_symbol(symbol)):
            out.write(line)


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
        raise fail(f"--from/--to must be YYYY-MM-DD ({exc})") from None
    if last is not None and last < first:
        raise fail(f"--to {last} is before --from {first}")

    from app.jobs.subscribers import custom_rules

    with store() as (_settings, db):
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
                    enqueue=enqueue(),
                    rules=custom_rules,
                    on_session=show,
                )
            )
            shown.finish(done, plural(found, "event"))
    typer.echo(f"replayed {name}: {plural(len(live), 'live event')}")
