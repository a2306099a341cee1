"""SQL for the market domain: bulk upserts of bars, the close matrix loader, symbols."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import Row, func, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.market.bars import Bar
from app.market.models import DailyBar, Symbol

# Rows per executemany call (progress is reported per chunk).
_CHUNK_ROWS = 5_000
_UPDATABLE = ("close", "open", "high", "low", "volume", "source", "instrument", "fetched_at")


@dataclass(frozen=True)
class ClosePanel:
    """The symbols × sessions close matrix the kernel takes.

    Row ``i`` holds ``symbols[i]``'s own consecutive stored sessions, right-aligned:
    NaN (and ``NaT`` in ``sessions``) only as left padding for shorter histories.
    """

    symbols: list[str]
    closes: npt.NDArray[np.float64]
    sessions: npt.NDArray[np.datetime64]

    def row(self, symbol: str) -> int:
        return self.symbols.index(symbol)


@dataclass(frozen=True)
class UpsertCounts:
    added: int
    revised: int
    unchanged: int


def ensure_symbols(session: Session, symbols: Iterable[str], *, now: datetime) -> None:
    """Insert the symbols that are not tracked yet (idempotent)."""
    rows = [{"symbol": s, "created_at": now, "active": True} for s in dict.fromkeys(symbols)]
    if rows:
        session.execute(_insert(session)(Symbol).values(rows).on_conflict_do_nothing())


def _insert(session: Session) -> Any:
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert
    return sqlite.insert


def upsert_bars(
    session: Session,
    symbol: str,
    bars: Sequence[Bar],
    *,
    source: str,
    instrument: str,
    fetched_at: datetime,
    on_progress: Callable[[int], None] | None = None,
) -> UpsertCounts:
    """Insert or update ``bars`` of ``symbol`` with bulk statements.

    A stored session whose close (or OHLCV) differs is updated in place and counted
    as revised; identical rows are left alone, so re-polling the overlap is free.
    The caller owns the transaction.
    """
    if not bars:
        return UpsertCounts(0, 0, 0)
    first, last = bars[0].session, bars[-1].session
    existing = {
        row.session: row
        for row in session.execute(
            select(
                DailyBar.session,
                DailyBar.close,
                DailyBar.open,
                DailyBar.high,
                DailyBar.low,
                DailyBar.volume,
            ).where(
                DailyBar.symbol == symbol,
                DailyBar.session >= min(first, last),
                DailyBar.session <= max(first, last),
            )
        )
    }
    changed: list[dict[str, Any]] = []
    added = revised = 0
    for bar in bars:
        old = existing.get(bar.session)
        volume = None if bar.volume is None else round(bar.volume)
        if old is not None and _same(old, bar, volume):
            continue
        if old is None:
            added += 1
        else:
            revised += 1
        changed.append(
            {
                "symbol": symbol,
                "session": bar.session,
                "close": bar.close,
                "open": bar.open,
                "high": bar.high,
                "low": bar.low,
                "volume": volume,
                "source": source,
                "instrument": instrument,
                "fetched_at": fetched_at,
            }
        )
    if changed:
        table = DailyBar.__table__
        statement = _insert(session)(table)
        statement = statement.on_conflict_do_update(
            index_elements=[table.c.symbol, table.c.session],
            set_={name: statement.excluded[name] for name in _UPDATABLE},
        )
        connection = session.connection()
        session.execute(
            update(Symbol)
            .where(Symbol.symbol == symbol)
            .values(data_version=Symbol.data_version + 1)
        )
        for start in range(0, len(changed), _CHUNK_ROWS):
            # executemany of one cached statement: SQLAlchemy batches it into
            # multi-row INSERTs ("insertmanyvalues") on both back-ends.
            connection.execute(statement, changed[start : start + _CHUNK_ROWS])
            if on_progress is not None:
                on_progress(min(_CHUNK_ROWS, len(changed) - start))
    return UpsertCounts(added, revised, len(bars) - added - revised)


def _same(old: Row[Any], bar: Bar, volume: int | None) -> bool:
    return bool(
        old.close == bar.close
        and old.open == bar.open
        and old.high == bar.high
        and old.low == bar.low
        and old.volume == volume
    )


def data_versions(session: Session) -> dict[str, int]:
    """Each tracked symbol's data version: a cheap fingerprint of the whole store."""
    return dict(session.execute(select(Symbol.symbol, Symbol.data_version)).tuples().all())


def spans(session: Session, symbols: Sequence[str]) -> dict[str, tuple[date, date, int]]:
    """First session, last session and session count of each symbol with bars."""
    rows = session.execute(
        select(
            DailyBar.symbol,
            func.min(DailyBar.session),
            func.max(DailyBar.session),
            func.count(),
        )
        .where(DailyBar.symbol.in_(symbols))
        .group_by(DailyBar.symbol)
    )
    return {row[0]: (row[1], row[2], int(row[3])) for row in rows}


def tracked_symbols(session: Session) -> list[str]:
    return list(session.scalars(select(Symbol.symbol).where(Symbol.active).order_by(Symbol.symbol)))


def bar_count(session: Session, symbol: str | None = None) -> int:
    query = select(func.count()).select_from(DailyBar)
    if symbol is not None:
        query = query.where(DailyBar.symbol == symbol)
    return int(session.scalar(query) or 0)


def last_sessions(session: Session, symbols: Sequence[str]) -> dict[str, date]:
    rows = session.execute(
        select(DailyBar.symbol, func.max(DailyBar.session))
        .where(DailyBar.symbol.in_(symbols))
        .group_by(DailyBar.symbol)
    )
    return {symbol: last for symbol, last in rows}


def session_before(session: Session, symbol: str, count: int) -> date | None:
    """The stored session ``count`` sessions before the newest one (or the oldest)."""
    rows = session.scalars(
        select(DailyBar.session)
        .where(DailyBar.symbol == symbol)
        .order_by(DailyBar.session.desc())
        .limit(count + 1)
    ).all()
    return rows[-1] if rows else None


def bar_before(session: Session, symbol: str, day: date) -> tuple[date, float] | None:
    """The newest stored (session, close) strictly before ``day``."""
    row = session.execute(
        select(DailyBar.session, DailyBar.close)
        .where(DailyBar.symbol == symbol, DailyBar.session < day)
        .order_by(DailyBar.session.desc())
        .limit(1)
    ).first()
    return None if row is None else (row[0], row[1])


@dataclass(frozen=True)
class Provenance:
    session: date
    source: str
    instrument: str
    fetched_at: datetime


def newest_provenance(session: Session, symbols: Sequence[str]) -> dict[str, Provenance]:
    """Who produced each symbol's newest stored bar."""
    newest = (
        select(DailyBar.symbol, func.max(DailyBar.session).label("last"))
        .where(DailyBar.symbol.in_(symbols))
        .group_by(DailyBar.symbol)
        .subquery()
    )
    rows = session.execute(
        select(
            DailyBar.symbol,
            DailyBar.session,
            DailyBar.source,
            DailyBar.instrument,
            DailyBar.fetched_at,
        ).join(
            newest,
            (DailyBar.symbol == newest.c.symbol) & (DailyBar.session == newest.c.last),
        )
    )
    return {row[0]: Provenance(row[1], row[2], row[3], row[4]) for row in rows}


def read_bars(
    session: Session, symbol: str, start: date | None = None, end: date | None = None
) -> list[DailyBar]:
    query = select(DailyBar).where(DailyBar.symbol == symbol)
    if start is not None:
        query = query.where(DailyBar.session >= start)
    if end is not None:
        query = query.where(DailyBar.session <= end)
    return list(session.scalars(query.order_by(DailyBar.session)))


def load_panel(session: Session, symbols: Sequence[str], *, tail: int | None = None) -> ClosePanel:
    """Load the stored closes of ``symbols`` as a right-aligned :class:`ClosePanel`.

    With ``tail`` only each symbol's newest ``tail`` sessions are read (the daily path).
    """
    columns: dict[str, tuple[list[date], list[float]]] = {s: ([], []) for s in symbols}
    query = select(DailyBar.symbol, DailyBar.session, DailyBar.close).where(
        DailyBar.symbol.in_(symbols)
    )
    if tail is not None:
        ranked = (
            select(
                DailyBar.symbol,
                DailyBar.session,
                func.row_number()
                .over(partition_by=DailyBar.symbol, order_by=DailyBar.session.desc())
                .label("age"),
            )
            .where(DailyBar.symbol.in_(symbols))
            .subquery()
        )
        query = query.where(
            tuple_(DailyBar.symbol, DailyBar.session).in_(
                select(ranked.c.symbol, ranked.c.session).where(ranked.c.age <= tail)
            )
        )
    for symbol, day, close in session.execute(
        query.order_by(DailyBar.symbol, DailyBar.session)
    ).tuples():
        dates, closes = columns[symbol]
        dates.append(day)
        closes.append(close)
    width = max((len(dates) for dates, _ in columns.values()), default=0)
    matrix = np.full((len(symbols), width), np.nan, dtype=np.float64)
    sessions = np.full((len(symbols), width), np.datetime64("NaT"), dtype="datetime64[D]")
    for row, symbol in enumerate(symbols):
        dates, closes = columns[symbol]
        if dates:
            matrix[row, width - len(closes) :] = closes
            sessions[row, width - len(dates) :] = np.array(dates, dtype="datetime64[D]")
    return ClosePanel(list(symbols), matrix, sessions)
