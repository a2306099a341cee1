"""The write of a symbol's first bars, column by column (SQLite).

A symbol with nothing stored has nothing to compare: every bar is added. Its bars,
when they are ``BarColumns`` in strictly increasing sessions, are inserted from whole
columns (the values in the storage formats ``repository.upsert_many`` writes), without
a ``Bar`` or a row dict per session. The rows, counts and data versions are
``upsert_many``'s for the same bars; other writes (and PostgreSQL, whose bulk path is
``COPY``) go through it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from itertools import repeat
from typing import Any

import numpy as np
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Session

from app.market.columns import BarColumns
from app.market.models import DailyBar
from app.market.repository import BarWrite, UpsertCounts, WriteResult, bump_versions

# Rows per executemany call (progress is reported per chunk), as in the repository.
_CHUNK_ROWS = 5_000


def takes(session: Session, write: BarWrite) -> bool:
    """Whether ``write`` (of a symbol with nothing stored) is written here."""
    bars = write.bars
    return (
        session.get_bind().dialect.name == "sqlite"
        and isinstance(bars, BarColumns)
        and len(bars) > 0
        and not (bars.sessions[1:] <= bars.sessions[:-1]).any()
    )


def insert_new(
    session: Session,
    writes: Sequence[BarWrite],
    *,
    fetched_at: datetime,
    on_progress: Callable[[int], None] | None = None,
) -> dict[str, WriteResult]:
    """Insert the bars of symbols with nothing stored (each write :func:`takes`), bump
    their data versions, and return what ``upsert_many`` would: every bar added."""
    symbols = [write.symbol for write in writes]
    versions = bump_versions(session, symbols)
    table = DailyBar.__table__
    connection = session.connection()
    compiled = sqlite.insert(DailyBar).compile(dialect=connection.dialect)
    names = list(compiled.positiontup or [])
    dialect = connection.dialect
    to_datetime = table.c.fetched_at.type.dialect_impl(dialect).bind_processor(dialect)
    stamp = to_datetime(fetched_at) if to_datetime is not None else fetched_at
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    sql = str(compiled)
    for write in writes:
        rows = list(zip(*(_column(write, name, stamp) for name in names), strict=True))
        for start in range(0, len(rows), _CHUNK_ROWS):
            chunk = rows[start : start + _CHUNK_ROWS]
            cursor.executemany(sql, chunk)
            if on_progress is not None:
                on_progress(len(chunk))
    return {
        write.symbol: WriteResult(UpsertCounts(len(write.bars), 0, 0), versions.get(write.symbol))
        for write in writes
    }


def _column(write: BarWrite, name: str, stamp: Any) -> Sequence[Any]:
    """One column of ``write``'s rows, in the store's format for ``name``."""
    bars = write.bars
    assert isinstance(bars, BarColumns)
    count = len(bars)
    if name == "symbol":
        return list(repeat(write.symbol, count))
    if name == "session":
        days: list[str] = np.datetime_as_string(bars.sessions, unit="D").tolist()
        return days
    if name == "close":
        closes: list[float] = bars.closes.tolist()
        return closes
    if name in ("open", "high", "low", "volume"):
        values = getattr(bars, f"{name}s")
        if values is None:
            return list(repeat(None, count))
        known: list[float] = values.tolist()
        return list(map(round, known)) if name == "volume" else known
    if name in ("source", "instrument"):
        return list(repeat(getattr(write, name), count))
    if name == "fetched_at":
        return list(repeat(stamp, count))
    raise ValueError(f"daily_bars has a column {name} that a first write does not fill")
