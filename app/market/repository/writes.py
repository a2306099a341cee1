"""Bar writes: bulk upserts of many symbols' bars, the symbols they need, data versions."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, cast

from sqlalchemy import Connection, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.market.bars import Bar
from app.market.models import DailyBar, Symbol
from app.market.repository.readers import _SYMBOLS_PER_QUERY

# Rows per executemany call (progress is reported per chunk).
_CHUNK_ROWS = 5_000
# Rows from which a PostgreSQL write goes through COPY.
_COPY_ROWS = 2_000
_UPDATABLE = ("close", "open", "high", "low", "volume", "source", "instrument", "fetched_at")


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


def stop_tracking(session: Session, symbol: str) -> bool:
    """Mark a tracked ``symbol`` inactive (its bars stay) and bump its data version;
    False when it is not tracked."""
    result = session.execute(
        update(Symbol)
        .where(Symbol.symbol == symbol, Symbol.active)
        .values(active=False, data_version=Symbol.data_version + 1)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class BarWrite:
    """One symbol's bars to upsert, with who produced them."""

    symbol: str
    bars: Sequence[Bar]
    source: str
    instrument: str


@dataclass(frozen=True)
class WriteResult:
    counts: UpsertCounts
    # The symbol's data version after this write (None when nothing changed).
    version: int | None


def upsert_many(
    session: Session,
    writes: Sequence[BarWrite],
    *,
    fetched_at: datetime,
    on_progress: Callable[[int], None] | None = None,
) -> dict[str, WriteResult]:
    """Insert or update the bars of many symbols with a few bulk statements.

    A stored session whose close (or OHLCV) differs is updated in place and counted
    as revised; identical rows are left alone, so re-polling the overlap is free. Each
    changed symbol's ``data_version`` is bumped once (first, so concurrent writers of
    the same symbol queue on its row) and returned. One statement reads the stored
    rows each chunk of symbols may overlap, one executemany writes all changed rows.
    The caller owns the transaction. Symbols must be distinct.
    """
    if len({w.symbol for w in writes}) != len(writes):
        raise ValueError("upsert_many takes each symbol at most once")
    existing = _stored_rows(session, [w for w in writes if w.bars])
    changed: list[dict[str, Any]] = []
    counts: dict[str, UpsertCounts] = {}
    for write in writes:
        stored = existing.get(write.symbol, {})
        added = revised = 0
        for bar in write.bars:
            old = stored.get(bar.session)
            volume = None if bar.volume is None else round(bar.volume)
            if old is not None and _same(old, bar, volume):
                continue
            if old is None:
                added += 1
            else:
                revised += 1
            changed.append(
                {
                    "symbol": write.symbol,
                    "session": bar.session,
                    "close": bar.close,
                    "open": bar.open,
                    "high": bar.high,
                    "low": bar.low,
                    "volume": volume,
                    "source": write.source,
                    "instrument": write.instrument,
                    "fetched_at": fetched_at,
                }
            )
        counts[write.symbol] = UpsertCounts(added, revised, len(write.bars) - added - revised)
    touched = [symbol for symbol, c in counts.items() if c.added or c.revised]
    versions = bump_versions(session, touched)
    if changed:
        _write_rows(session, changed, on_progress)
    return {s: WriteResult(c, versions.get(s)) for s, c in counts.items()}


def _write_rows(
    session: Session, rows: list[dict[str, Any]], on_progress: Callable[[int], None] | None
) -> None:
    """Upsert ``rows`` of ``daily_bars`` in chunks of one executemany each."""
    table = DailyBar.__table__
    statement = _insert(session)(table)
    statement = statement.on_conflict_do_update(
        index_elements=[table.c.symbol, table.c.session],
        set_={name: statement.excluded[name] for name in _UPDATABLE},
    )
    connection = session.connection()
    if connection.dialect.name == "postgresql" and len(rows) >= _COPY_ROWS:
        _copy_rows(connection, rows)
        if on_progress is not None:
            on_progress(len(rows))
        return
    if connection.dialect.name != "sqlite":
        for start in range(0, len(rows), _CHUNK_ROWS):
            # executemany of one cached statement: SQLAlchemy batches it into
            # multi-row INSERTs ("insertmanyvalues").
            connection.execute(statement, rows[start : start + _CHUNK_ROWS])
            if on_progress is not None:
                on_progress(min(_CHUNK_ROWS, len(rows) - start))
        return
    # SQLite: the same statement compiled once and handed to the driver with plain
    # tuples, the values in SQLAlchemy's storage formats (ISO dates, its datetime
    # format): its per-row parameter processing would cost twice the insert itself.
    compiled = statement.compile(dialect=connection.dialect)
    names = list(compiled.positiontup or [])
    session_at, fetched_at = names.index("session"), names.index("fetched_at")
    dialect = connection.dialect
    to_datetime = table.c.fetched_at.type.dialect_impl(dialect).bind_processor(dialect)
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    sql = str(compiled)
    for start in range(0, len(rows), _CHUNK_ROWS):
        chunk = rows[start : start + _CHUNK_ROWS]
        values = []
        stamps: dict[datetime, Any] = {}  # a write's rows share one fetched_at
        for row in chunk:
            value = [row[name] for name in names]
            value[session_at] = value[session_at].isoformat()
            if to_datetime is not None:
                stamp = value[fetched_at]
                if stamp not in stamps:
                    stamps[stamp] = to_datetime(stamp)
                value[fetched_at] = stamps[stamp]
            values.append(value)
        cursor.executemany(sql, values)
        if on_progress is not None:
            on_progress(len(chunk))


_COLUMNS = ("symbol", "session", "close", "open", "high", "low", "volume", *_UPDATABLE[5:])


def _copy_rows(connection: Connection, rows: list[dict[str, Any]]) -> None:
    """PostgreSQL, many rows: ``COPY`` into a temporary table, then one upsert from it
    (an order of magnitude faster than multi-row INSERTs for a backfill)."""
    columns = ", ".join(_COLUMNS)
    updates = ", ".join(f"{name} = excluded.{name}" for name in _UPDATABLE)
    driver = connection.connection.driver_connection
    with driver.cursor() as cursor:  # type: ignore[union-attr]
        cursor.execute(
            "CREATE TEMPORARY TABLE IF NOT EXISTS daily_bars_incoming "
            "(LIKE daily_bars INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
        )
        with cursor.copy(f"COPY daily_bars_incoming ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(tuple(row[name] for name in _COLUMNS))
        cursor.execute(
            f"INSERT INTO daily_bars ({columns}) SELECT {columns} FROM daily_bars_incoming "
            f"ON CONFLICT (symbol, session) DO UPDATE SET {updates}"
        )
        cursor.execute("DELETE FROM daily_bars_incoming")


# A stored bar's prices as upsert_many compares them: close, open, high, low, volume.
_Prices = tuple[float, float | None, float | None, float | None, int | None]


def _stored_rows(session: Session, writes: Sequence[BarWrite]) -> dict[str, dict[date, _Prices]]:
    """The stored rows each write may overlap, read per chunk of symbols whose bars
    cover similar dates (a daily batch reads a few sessions per symbol, by index).
    Straight from the driver's cursor: no SQLAlchemy row per stored row."""
    found: dict[str, dict[date, _Prices]] = {}
    spans = {}  # each write's first and last session (bars may come in either order)
    for write in writes:
        ends = (write.bars[0].session, write.bars[-1].session)
        spans[write.symbol] = (min(ends), max(ends))
    ordered = sorted(writes, key=lambda w: spans[w.symbol][0])
    connection = session.connection()
    dialect = connection.dialect
    # SQLite hands sessions over as text: SQLAlchemy's own conversion makes them dates.
    to_date = DailyBar.__table__.c.session.type.dialect_impl(dialect).result_processor(
        dialect, None
    )
    for start in range(0, len(ordered), _SYMBOLS_PER_QUERY):
        chunk = ordered[start : start + _SYMBOLS_PER_QUERY]
        result = connection.execute(
            select(
                DailyBar.symbol,
                DailyBar.session,
                DailyBar.close,
                DailyBar.open,
                DailyBar.high,
                DailyBar.low,
                DailyBar.volume,
            ).where(
                DailyBar.symbol.in_([w.symbol for w in chunk]),
                DailyBar.session >= min(spans[w.symbol][0] for w in chunk),
                DailyBar.session <= max(spans[w.symbol][1] for w in chunk),
            )
        )
        rows: Sequence[tuple[str, Any, float, float | None, float | None, float | None, int | None]]
        rows = result.cursor.fetchall()
        result.close()
        for symbol, day, close, open_, high, low, volume in rows:
            stored = cast(date, day if to_date is None else to_date(day))
            found.setdefault(symbol, {})[stored] = (close, open_, high, low, volume)
    return found


def bump_versions(session: Session, symbols: Sequence[str]) -> dict[str, int]:
    """Bump each symbol's data version; returns the new versions (every writer of bars
    calls this once per write, first, so concurrent writers of a symbol queue on its row)."""
    versions: dict[str, int] = {}
    for start in range(0, len(symbols), _SYMBOLS_PER_QUERY):
        rows = session.execute(
            update(Symbol)
            .where(Symbol.symbol.in_(symbols[start : start + _SYMBOLS_PER_QUERY]))
            .values(data_version=Symbol.data_version + 1)
            .returning(Symbol.symbol, Symbol.data_version)
        )
        versions.update({symbol: int(version) for symbol, version in rows})
    return versions


def _same(old: _Prices, bar: Bar, volume: int | None) -> bool:
    close, open_, high, low, stored_volume = old
    return bool(
        close == bar.close
        and open_ == bar.open
        and high == bar.high
        and low == bar.low
        and stored_volume == volume
    )
