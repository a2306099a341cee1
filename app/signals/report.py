"""The ``crosswatch signals`` table (or JSON) for people at a terminal."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import typer
from sqlalchemy.orm import Session

from app.errors import NotFound
from app.signals import service
from app.signals.book import SignalBook

COLUMNS = (
    "symbol",
    "session",
    "close",
    "regime",
    "gap %",
    "last cross",
    "trigger",
    "flat→cross",
    "drawdown %",
)


def _cell(value: Any, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def _row(signal: dict[str, Any]) -> list[str]:
    cross = signal["last_cross"]
    last_cross = f"{cross['type'].split('_')[0]} {cross['session']}" if cross is not None else "-"
    stale = " (stale)" if signal["stale"] else ""
    return [
        signal["symbol"],
        f"{signal['session']}{stale}",
        _cell(signal["close"]),
        _cell(signal["regime"]),
        _cell(signal["gap_pct"]),
        last_cross,
        _cell(signal["trigger_close"]),
        _cell(signal["flat_sessions_to_cross"]),
        _cell(signal["drawdown_pct"]),
    ]


def print_signals(
    session: Session, symbols: Sequence[str], *, as_json: bool, now: datetime
) -> None:
    book = SignalBook()
    signals = service.all_signals(book, session, now)
    if symbols:
        wanted = [service.normalise(s) for s in symbols]
        by_symbol = {s["symbol"]: s for s in signals}
        missing = [s for s in wanted if s not in by_symbol]
        if missing:
            raise NotFound(f"unknown symbol {missing[0]!r}: it is not tracked or has no closes")
        signals = [by_symbol[s] for s in wanted]
    if as_json:
        typer.echo(json.dumps({"signals": signals}, default=str, indent=2))
        return
    rows = [list(COLUMNS), *(_row(s) for s in signals)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    for row in rows:
        typer.echo(
            "  ".join(
                cell.rjust(w) if i >= 2 else cell.ljust(w)
                for i, (cell, w) in enumerate(zip(row, widths, strict=True))
            ).rstrip()
        )
