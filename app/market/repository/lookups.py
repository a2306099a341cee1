"""Per-symbol look-ups: tracked symbols, data versions, spans, newest sessions and
who produced them, one symbol's bars."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from app.market.models import DailyBar, Symbol
from app.market.repository.readers import _SYMBOLS_PER_QUERY, _Reader, _SessionReader


def data_versions(session: Session) -> dict[str, int]:
    """Each tracked symbol's data version: a cheap fingerprint of the whole store."""
    return _data_versions(_SessionReader(session))


def _data_versions(reader: _Reader) -> dict[str, int]:
    return {symbol: int(version) for symbol, version in reader.rows(_VERSIONS)}


_VERSIONS = select(Symbol.symbol, Symbol.data_version)


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
    return _tracked_symbols(_SessionReader(session))


def _tracked_symbols(reader: _Reader) -> list[str]:
    return [symbol for (symbol,) in reader.rows(_TRACKED)]


_TRACKED = select(Symbol.symbol).where(Symbol.active).order_by(Symbol.symbol)


def bar_count(session: Session, symbol: str | None = None) -> int:
    query = select(func.count()).select_from(DailyBar)
    if symbol is not None:
        query = query.where(DailyBar.symbol == symbol)
    return int(session.scalar(query) or 0)


def last_sessions(session: Session, symbols: Sequence[str]) -> dict[str, date]:
    """Each symbol's newest stored session (symbols without bars are left out).

    One index lookup per symbol (a correlated ``max``), not a scan of their histories.
    """
    newest = (
        select(func.max(DailyBar.session))
        .where(DailyBar.symbol == Symbol.symbol)
        .correlate(Symbol)
        .scalar_subquery()
    )
    found: dict[str, date] = {}
    unique = list(dict.fromkeys(symbols))
    for start in range(0, len(unique), _SYMBOLS_PER_QUERY):
        rows = session.execute(
            select(Symbol.symbol, newest).where(
                Symbol.symbol.in_(unique[start : start + _SYMBOLS_PER_QUERY])
            )
        ).tuples()
        found.update({symbol: last for symbol, last in rows if last is not None})
    return found


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
    """Who produced each symbol's newest stored bar (symbols without bars are left out).

    One query per chunk of symbols: each symbol's newest session by an index look-up,
    then that bar by its key (a list of (symbol, session) pairs took SQLite ~3 s per
    1,000 symbols).
    """
    return _newest_provenance(_SessionReader(session), symbols)


def _newest_provenance(reader: _Reader, symbols: Sequence[str]) -> dict[str, Provenance]:
    newest = (
        select(func.max(_Newer.session))
        .where(_Newer.symbol == Symbol.symbol)
        .correlate(Symbol)
        .scalar_subquery()
    )
    found: dict[str, Provenance] = {}
    unique = list(dict.fromkeys(symbols))
    for start in range(0, len(unique), _SYMBOLS_PER_QUERY):
        rows = reader.rows(
            select(
                DailyBar.symbol,
                DailyBar.session,
                DailyBar.source,
                DailyBar.instrument,
                DailyBar.fetched_at,
            )
            .join(Symbol, Symbol.symbol == DailyBar.symbol)
            .where(
                Symbol.symbol.in_(unique[start : start + _SYMBOLS_PER_QUERY]),
                DailyBar.session == newest,
            )
        )
        found.update({row[0]: Provenance(row[1], row[2], row[3], row[4]) for row in rows})
    return found


# The bars a correlated "newest session" subquery reads (an alias of its own).
_Newer = aliased(DailyBar)


def read_bars(
    session: Session, symbol: str, start: date | None = None, end: date | None = None
) -> list[DailyBar]:
    query = select(DailyBar).where(DailyBar.symbol == symbol)
    if start is not None:
        query = query.where(DailyBar.session >= start)
    if end is not None:
        query = query.where(DailyBar.session <= end)
    return list(session.scalars(query.order_by(DailyBar.session)))
