"""A poll (``poll``) or an intraday cross-watch check (``watch``) now, on the command line."""

from __future__ import annotations

import asyncio
import time
from contextlib import ExitStack
from typing import Annotated

import typer

from app.cli.root import enqueue, fail, store
from app.clock import system_clock
from app.db.engine import Database
from app.market import service as market
from app.market.progress import PollProgress
from app.settings import Settings
from app.terminal import Progress, plural, progress


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
                db, settings, clock=system_clock, enqueue=enqueue(), rules=custom_rules
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

    with store() as (settings, db):
        code = asyncio.run(run(settings, db))
    raise typer.Exit(code)


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
            raise fail(f"--at {at!r} is not an ISO date-time like 2025-08-06T15:00-04:00") from None
        if moment.tzinfo is None:
            raise fail(f"--at {at!r} needs a UTC offset, e.g. 2025-08-06T15:00-04:00")

    with store() as (settings, db):
        missing = timing.no_live_source(settings)
        if missing is not None:
            raise fail(missing)
        names = [market.normalise_symbol(s) for s in symbols] if symbols else None

        async def run() -> check.WatchReport:
            async with check.watcher(
                db, settings, clock=system_clock, enqueue=enqueue(), rules=custom_rules
            ) as watcher:
                return await watcher.check(at=moment, symbols=names)

        report = asyncio.run(run())
    if report.outside is not None:
        raise fail(report.outside)
    for line in console.describe(report, settings.watch_distance_pct, explicit=bool(names)):
        typer.echo(line)
    raise typer.Exit(1 if any(f.error for f in report.findings) else 0)
