"""SQL for the market domain: bulk upserts of bars, the close matrix loader, symbols."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol

import adbc_driver_postgresql.dbapi
import numpy as np
import numpy.typing as npt
from sqlalchemy import (
    Connection,
    Dialect,
    Integer,
    Row,
    Select,
    cast,
    func,
    literal,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, aliased

from app.market import sqlite_arrow
from app.market.bars import Bar
from app.market.models import DailyBar, Symbol

# Rows per executemany call (progress is reported per chunk).
_CHUNK_ROWS = 5_000
# Rows from which a PostgreSQL write goes through COPY.
_COPY_ROWS = 2_000
# Symbols per IN (...) list: well under SQLite's and PostgreSQL's bound-parameter limits.
_SYMBOLS_PER_QUERY = 1_000
# Symbols per chunk of a panel load: bounds the driver's row tuples held at once.
_PANEL_SYMBOLS_PER_QUERY = 500
# Symbols per chunk of a panel read through Arrow (16 bytes a row: ~40 MB a chunk).
_ARROW_SYMBOLS_PER_QUERY = 1_000
# Tracked symbols from which a SQLite snapshot is read through Arrow: its child process
# costs about 0.3 s of CPU to start, then ~1.1 ms a symbol against the session path's
# ~2.5 ms (2,520 sessions each): even at about 200 symbols.
_SQLITE_ARROW_SYMBOLS = 200
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


def _stored_rows(session: Session, writes: Sequence[BarWrite]) -> dict[str, dict[date, Row[Any]]]:
    """The stored rows each write may overlap, read per chunk of symbols whose bars
    cover similar dates (a daily batch reads a few sessions per symbol, by index)."""
    found: dict[str, dict[date, Row[Any]]] = {}
    ordered = sorted(writes, key=lambda w: min(w.bars[0].session, w.bars[-1].session))
    for start in range(0, len(ordered), _SYMBOLS_PER_QUERY):
        chunk = ordered[start : start + _SYMBOLS_PER_QUERY]
        first = min(min(w.bars[0].session, w.bars[-1].session) for w in chunk)
        last = max(max(w.bars[0].session, w.bars[-1].session) for w in chunk)
        rows = session.execute(
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
                DailyBar.session >= first,
                DailyBar.session <= last,
            )
        )
        for row in rows:
            found.setdefault(row.symbol, {})[row.session] = row
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


def _epoch_days(dialect: Dialect) -> Any:
    """``DailyBar.session`` as an integer count of days since 1970-01-01, so that a
    panel's dates arrive as plain integers (no per-row date objects)."""
    if dialect.name == "postgresql":
        return DailyBar.session - literal(date(1970, 1, 1))
    return cast(func.julianday(DailyBar.session) - 2440587.5, Integer)


class _Reader(Protocol):
    """Runs a select and hands back its result, as rows or as numeric columns."""

    dialect: Dialect

    def rows(self, statement: Select[Any]) -> list[tuple[Any, ...]]:
        """The rows, each value as SQLAlchemy's own result would give it."""
        ...

    def numbers(self, statement: Select[Any]) -> list[npt.NDArray[np.float64]]:
        """Each selected column (all numeric, none null) as one float array."""
        ...


class _SessionReader:
    """Reads through the session's own connection, inside its transaction."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self.dialect = session.get_bind().dialect

    def rows(self, statement: Select[Any]) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in self._session.execute(statement)]

    def numbers(self, statement: Select[Any]) -> list[npt.NDArray[np.float64]]:
        # Straight from the driver's cursor, flattened at once: no SQLAlchemy row per row.
        result = self._session.connection().execute(statement)
        rows: Sequence[tuple[float, ...]] = result.cursor.fetchall()
        result.close()
        width = len(statement.selected_columns)
        values = np.fromiter(
            itertools.chain.from_iterable(rows), dtype=np.float64, count=width * len(rows)
        ).reshape(-1, width)
        return [values[:, column] for column in range(width)]


class _ArrowReader:
    """Reads through an ADBC driver: it hands over whole Arrow columns (SQLite and
    PostgreSQL alike), no Python object per row. The statements are the session
    path's own, compiled with their values inline; ``run`` executes one."""

    def __init__(self, run: Callable[[str], Any], dialect: Dialect) -> None:
        self._run = run
        self.dialect = dialect

    def _table(self, statement: Select[Any]) -> Any:
        sql = statement.compile(dialect=self.dialect, compile_kwargs={"literal_binds": True})
        return self._run(str(sql))

    def rows(self, statement: Select[Any]) -> list[tuple[Any, ...]]:
        table = self._table(statement)
        columns = []
        for column, values in zip(statement.selected_columns, table.columns, strict=True):
            # SQLite hands dates and timestamps over as text: SQLAlchemy's own
            # conversion makes them what the session path returns.
            convert = column.type.dialect_impl(self.dialect).result_processor(self.dialect, None)
            plain = values.to_pylist()
            columns.append(plain if convert is None else [convert(v) for v in plain])
        return list(zip(*columns, strict=True))

    def numbers(self, statement: Select[Any]) -> list[npt.NDArray[np.float64]]:
        table = self._table(statement)
        return [
            np.asarray(values.to_numpy(zero_copy_only=False), dtype=np.float64)
            for values in table.columns
        ]


@contextmanager
def _committed_reader(session: Session, *, symbols: int | None = None) -> Iterator[_Reader]:
    """A reader of the store's committed data in one read transaction of its own,
    through Arrow where the store can be opened twice (PostgreSQL, a SQLite file; for
    SQLite in a child process, see :mod:`app.market.sqlite_arrow`), else through
    ``session`` (an in-memory SQLite store, which no other connection sees; a SQLite
    store of fewer than :data:`_SQLITE_ARROW_SYMBOLS` ``symbols``, where starting the
    child would cost more than it saves: one SQLite read transaction too).

    Its reads see one state of the store: PostgreSQL's ``REPEATABLE READ`` snapshot,
    SQLite's read transaction (WAL: from its first read to its end, writers go on).
    """
    engine = session.get_bind().engine
    url = engine.url
    if url.get_backend_name() == "postgresql":
        uri = url.set(drivername="postgresql").render_as_string(hide_password=False)
        connection = adbc_driver_postgresql.dbapi.connect(uri)
        try:
            cursor = connection.cursor()
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")

            def run(sql: str) -> Any:
                cursor.execute(sql)
                return cursor.fetch_arrow_table()

            yield _ArrowReader(run, engine.dialect)
            cursor.close()
            connection.rollback()
        finally:
            connection.close()
        return
    database = url.database
    small = symbols is not None and symbols < _SQLITE_ARROW_SYMBOLS
    if small or not database or database == ":memory:" or "mode=memory" in database:
        yield _SessionReader(session)
        return
    with sqlite_arrow.reading(database) as child:
        yield _ArrowReader(child.table, engine.dialect)


@dataclass(frozen=True)
class StoreSnapshot:
    """What the serving snapshot reads: every tracked symbol's closes, each symbol's
    data version, and who produced each newest bar, all of one state of the store."""

    fingerprint: dict[str, int]
    panel: ClosePanel
    provenance: dict[str, Provenance]


def read_snapshot(session: Session) -> StoreSnapshot:
    """The committed store's :class:`StoreSnapshot`, read in one read transaction of its
    own (see :func:`_committed_reader`), not in ``session``'s: the data versions are
    exactly those of the closes read, whatever is written meanwhile, so a snapshot
    keyed by them is never torn. Uncommitted writes of ``session`` are not seen.

    Through Arrow the panel's 12.6 M rows of a 5,000-symbol universe arrive as columns:
    about a quarter of the time of the driver's row tuples (:func:`load_panel`).
    """
    count = select(func.count()).select_from(Symbol).where(Symbol.active)
    with _committed_reader(session, symbols=int(session.scalar(count) or 0)) as reader:
        fingerprint = _data_versions(reader)
        symbols = _tracked_symbols(reader)
        chunk = (
            _ARROW_SYMBOLS_PER_QUERY
            if isinstance(reader, _ArrowReader)
            else _PANEL_SYMBOLS_PER_QUERY
        )
        panel = _load_panel(reader, symbols, None, chunk)
        provenance = _newest_provenance(reader, symbols)
    return StoreSnapshot(fingerprint, panel, provenance)


def load_panel(session: Session, symbols: Sequence[str], *, tail: int | None = None) -> ClosePanel:
    """Load the stored closes of ``symbols`` as a right-aligned :class:`ClosePanel`,
    inside ``session``'s transaction (detection reads what its own write left).

    With ``tail`` only each symbol's newest ``tail`` sessions are read. First one
    index-only count per symbol (the panel's width), then per chunk of symbols two
    plain columns (epoch day, close) straight from the driver's cursor, written into
    the matrices at once: no symbol text per row, and no row tuples kept beyond a
    chunk (a whole universe's rows as tuples would take gigabytes).
    """
    return _load_panel(_SessionReader(session), symbols, tail, _PANEL_SYMBOLS_PER_QUERY)


def _load_panel(
    reader: _Reader, symbols: Sequence[str], tail: int | None, per_query: int
) -> ClosePanel:
    unique = list(dict.fromkeys(symbols))
    dialect = reader.dialect
    chunks: list[list[tuple[str, int]]] = []  # per chunk: (symbol, rows) in the store's order
    for start in range(0, len(unique), per_query):
        chosen = _panel_rows(dialect, unique[start : start + per_query], tail)
        query = (
            select(chosen.c.symbol, func.count())
            .group_by(chosen.c.symbol)
            .order_by(chosen.c.symbol)
        )
        found = [(name, int(count)) for name, count in reader.rows(query)]
        if found:
            chunks.append(found)
    width = max((count for found in chunks for _, count in found), default=0)
    matrix = np.full((len(symbols), width), np.nan, dtype=np.float64)
    sessions = np.full((len(symbols), width), np.datetime64("NaT"), dtype="datetime64[D]")
    row_of = {symbol: row for row, symbol in enumerate(symbols)}
    for found in chunks:
        chosen = _panel_rows(dialect, [name for name, _ in found], tail)
        query = select(chosen.c.day, chosen.c.close).order_by(chosen.c.symbol, chosen.c.session)
        days, closes = reader.numbers(query)
        lengths = np.array([count for _, count in found], dtype=np.int64)
        if int(lengths.sum()) != len(closes):
            raise RuntimeError("the store changed while a panel was read")
        targets = np.repeat(np.array([row_of[name] for name, _ in found]), lengths)
        starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
        columns = np.arange(len(closes)) - starts + np.repeat(width - lengths, lengths)
        matrix[targets, columns] = closes
        sessions[targets, columns] = days.astype(np.int64).astype("datetime64[D]")
    return ClosePanel(list(symbols), matrix, sessions)


def _panel_rows(dialect: Dialect, symbols: Sequence[str], tail: int | None) -> Any:
    """The (symbol, session, day, close) rows of ``symbols`` a panel reads, as a
    subquery (with ``tail``: each symbol's newest ``tail`` sessions only)."""
    query = select(
        DailyBar.symbol, DailyBar.session, _epoch_days(dialect).label("day"), DailyBar.close
    ).where(DailyBar.symbol.in_(symbols))
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
    return query.subquery()


@dataclass(frozen=True)
class VolumeRows:
    """Stored volumes as flat arrays, grouped by symbol: ``counts[i]`` rows of
    ``symbols[i]`` (in that order, sessions ascending); NaN where no volume is stored."""

    symbols: list[str]
    counts: npt.NDArray[np.int64]
    sessions: npt.NDArray[np.datetime64]
    volumes: npt.NDArray[np.float64]


def load_volumes(session: Session, symbols: Sequence[str], *, since: date) -> VolumeRows:
    """The stored volumes of ``symbols`` from session ``since`` on (one query per
    :data:`_SYMBOLS_PER_QUERY` symbols), e.g. the newest sessions a screen compares."""
    days = _epoch_days(session.get_bind().dialect)
    names: list[str] = []
    counts: list[int] = []
    day_numbers: list[int] = []
    values: list[float | None] = []
    unique = list(dict.fromkeys(symbols))
    for start in range(0, len(unique), _SYMBOLS_PER_QUERY):
        query = (
            select(DailyBar.symbol, days, DailyBar.volume)
            .where(
                DailyBar.symbol.in_(unique[start : start + _SYMBOLS_PER_QUERY]),
                DailyBar.session >= since,
            )
            .order_by(DailyBar.symbol, DailyBar.session)
        )
        result = session.connection().execute(query)
        rows: Sequence[tuple[str, int, float | None]] = result.cursor.fetchall()
        result.close()
        for name, group in itertools.groupby(rows, key=lambda row: row[0]):
            chunk = list(group)
            names.append(name)
            counts.append(len(chunk))
            day_numbers.extend(row[1] for row in chunk)
            values.extend(row[2] for row in chunk)
    return VolumeRows(
        names,
        np.array(counts, dtype=np.int64),
        np.array(day_numbers, dtype=np.int64).astype("datetime64[D]"),
        np.array(values, dtype=np.float64),
    )
