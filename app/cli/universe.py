"""``crosswatch universe``: import, list and show named symbol lists.

Every command here runs in ``app.cli.root.store`` (settings, a migrated store, errors as
one line on stderr and exit 1).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from app.cli.root import store
from app.clock import system_clock
from app.market import universes

universe_cli = typer.Typer(help="Universes: named symbol lists.", no_args_is_help=True)


@universe_cli.command("import")
def import_(
    name: Annotated[str, typer.Argument(help="Universe name, e.g. russell2000.")],
    file: Annotated[
        Path,
        typer.Argument(
            help="One symbol a line, or a CSV (a fund-holdings export) with a Ticker or "
            "Symbol column."
        ),
    ],
) -> None:
    """Make FILE's symbols the members of universe NAME (created if new) and track them;
    the next poll backfills new symbols. A refused file changes nothing."""
    with store() as (_settings, db):
        # Checked whole before the transaction: a refused name or file writes nothing.
        universes.canonical_name(name)
        parsed = universes.read_symbol_file(file)
        with db.transaction() as session:
            replaced = universes.replace(session, name, parsed.symbols, now=system_clock())
    rows = "row" if parsed.skipped == 1 else "rows"
    typer.echo(
        f"universe {replaced.name}: {_count(len(replaced.symbols), 'symbol')} "
        f"({len(replaced.newly_tracked):,} newly tracked), {parsed.skipped:,} {rows} skipped"
    )


@universe_cli.command("list")
def list_() -> None:
    """Print every universe with its member count."""
    with store() as (_settings, db), db.transaction(write=False) as session:
        found = universes.list_all(session)
    if not found:
        typer.echo("no universes (crosswatch universe import NAME FILE makes one)")
    for universe in found:
        typer.echo(
            f"{universe.name}: {_count(universe.members, 'symbol')} "
            f"(updated {universe.updated_at.isoformat(timespec='seconds')})"
        )


@universe_cli.command("show")
def show(name: Annotated[str, typer.Argument(help="Universe name.")]) -> None:
    """Print the members of universe NAME, one a line."""
    with store() as (_settings, db), db.transaction(write=False) as session:
        symbols = universes.members(session, name)
    for symbol in symbols:
        typer.echo(symbol)


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"
