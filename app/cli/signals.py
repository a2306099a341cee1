"""The signals on the command line: ``signals`` (the default rule's, as a table or JSON)
and ``screen`` (the ``GET /v1/screen`` screen, with the same filters; a table, ``--json``
(the API's body) or ``--csv``). ``screen`` opens the store itself: it names no store on
stderr and reports a store error by its type."""

from __future__ import annotations

from typing import Annotated

import typer

from app.cli.root import fail, quiet_read, store
from app.clock import system_clock
from app.errors import InvalidInput
from app.signals import screen as screen_arrays
from app.signals import screening, service
from app.signals.book import SignalBook
from app.signals.schemas import ScreenResult

TABLE = (
    ("symbol", "symbol", "{}"),
    ("session", "session", "{}"),
    ("close", "close", "{:.2f}"),
    ("chg%", "change_pct", "{:+.2f}"),
    ("regime", "regime", "{}"),
    ("gap%", "gap_pct", "{:+.2f}"),
    ("trigger", "trigger_close", "{:.2f}"),
    ("dist%", "trigger_distance_pct", "{:.2f}"),
    ("flat", "flat_sessions_to_cross", "{}"),
    ("dd%", "drawdown_pct", "{:.1f}"),
    ("ret%", "return_pct", "{:+.2f}"),
    ("relvol", "relative_volume", "{:.2f}"),
)


def signals(
    symbols: Annotated[list[str] | None, typer.Argument(help="Symbols (default: all).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Print the current default-rule (50/200 SMA) signals."""
    from app.signals.report import print_signals

    with store() as (_settings, db), db.transaction(write=False) as session:
        print_signals(session, symbols or [], as_json=as_json, now=system_clock())


def screen(
    universe: Annotated[str | None, typer.Option(help="Only this universe's members.")] = None,
    symbols: Annotated[str | None, typer.Option(help="Comma-separated symbols.")] = None,
    regime: Annotated[str | None, typer.Option(help="golden or death.")] = None,
    max_flat_sessions_to_cross: Annotated[int | None, typer.Option(min=1)] = None,
    min_gap_pct: Annotated[float | None, typer.Option()] = None,
    max_gap_pct: Annotated[float | None, typer.Option()] = None,
    max_trigger_distance_pct: Annotated[float | None, typer.Option(min=0)] = None,
    min_return_pct: Annotated[float | None, typer.Option()] = None,
    return_sessions: Annotated[int, typer.Option(min=1)] = 21,
    min_relative_volume: Annotated[float | None, typer.Option(min=0)] = None,
    min_drawdown_pct: Annotated[float | None, typer.Option()] = None,
    max_drawdown_pct: Annotated[float | None, typer.Option()] = None,
    event: Annotated[str | None, typer.Option(help="An event type, with --within.")] = None,
    within: Annotated[int, typer.Option(min=1, max=10_000)] = 5,
    sort: Annotated[str | None, typer.Option(help="A figure; -name for descending.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=screen_arrays.MAX_LIMIT)] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print the API's JSON.")] = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print CSV.")] = False,
) -> None:
    """Screen the newest session (the filters of GET /v1/screen)."""
    try:
        query = screening.screen_query(
            regime=regime,
            max_flat_sessions_to_cross=max_flat_sessions_to_cross,
            min_gap_pct=min_gap_pct,
            max_gap_pct=max_gap_pct,
            max_trigger_distance_pct=max_trigger_distance_pct,
            min_return_pct=min_return_pct,
            return_sessions=return_sessions,
            min_relative_volume=min_relative_volume,
            min_drawdown_pct=min_drawdown_pct,
            max_drawdown_pct=max_drawdown_pct,
            event=event,
            within=within,
            sort=sort,
            limit=limit,
        )
    except InvalidInput as exc:
        raise fail(exc.detail) from None
    asked = service.symbol_list(symbols) if symbols else None
    with quiet_read() as session:
        result = screening.screen(SignalBook(), session, query, asked, universe)
    if as_json:
        typer.echo(ScreenResult.model_validate(result).model_dump_json())
    elif as_csv:
        typer.echo(screen_arrays.csv_text(result["rows"]), nl=False)
    else:
        typer.echo(_table(result))


def _table(result: dict[str, object]) -> str:
    rows = result["rows"]
    assert isinstance(rows, list)
    cells = [[title for title, _, _ in TABLE]]
    for row in rows:
        cells.append(
            ["-" if row[name] is None else pattern.format(row[name]) for _, name, pattern in TABLE]
        )
    widths = [max(len(line[i]) for line in cells) for i in range(len(TABLE))]
    lines = [
        "  ".join(cell.rjust(width) for cell, width in zip(line, widths, strict=True))
        for line in cells
    ]
    lines.append(f"{result['count']} matching, newest session {result['session']}")
    return "\n".join(lines)
