"""``crosswatch brief``: the ``GET /v1/brief`` brief on the command line, as Markdown
(default) or the API's JSON."""

from __future__ import annotations

from datetime import date
from typing import Annotated

import typer

from app.cli.root import fail, quiet_read
from app.clock import system_clock
from app.signals import brief, brief_markdown
from app.signals.book import SignalBook
from app.signals.schemas import ISO_DATE

FORMATS = ("markdown", "json")


def _day(raw: str) -> date:
    try:
        if ISO_DATE.fullmatch(raw):
            return date.fromisoformat(raw)
    except ValueError:
        pass
    raise fail(f"session {raw!r} is not a date as YYYY-MM-DD")


def brief_command(
    session: Annotated[
        str | None, typer.Option(help="A stored session, YYYY-MM-DD (default: the newest).")
    ] = None,
    universe: Annotated[str | None, typer.Option(help="Only this universe's section.")] = None,
    output: Annotated[
        str, typer.Option("--format", help="markdown (default) or json.")
    ] = "markdown",
    top: Annotated[
        int, typer.Option(min=1, max=50, help="Rows of each top list.")
    ] = brief.TOP_ROWS,
) -> None:
    """The daily brief: each index, each universe's breadth and top screen rows."""
    if output not in FORMATS:
        raise fail(f"format must be markdown or json, not {output!r}")
    asked = None if session is None else _day(session)
    with quiet_read() as store:
        book = SignalBook()
        if asked is None:
            day = brief.newest_session(book, store)
        else:
            brief.check_session(book, store, asked)
            day = asked
        result = brief.build(book, store, day, system_clock(), universe=universe, top=top)
    if output == "json":
        typer.echo(result.model_dump_json())
    else:
        typer.echo(brief_markdown.markdown(result), nl=False)
