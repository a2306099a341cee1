"""How the repository reads: through the session, or through Arrow in a read
transaction of its own (:func:`_committed_reader`)."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date
from typing import Any, Protocol

import adbc_driver_postgresql.dbapi
import numpy as np
import numpy.typing as npt
from sqlalchemy import Dialect, Integer, Select, cast, func, literal
from sqlalchemy.orm import Session

from app.market import sqlite_arrow
from app.market.models import DailyBar

# Symbols per IN (...) list: well under SQLite's and PostgreSQL's bound-parameter limits.
_SYMBOLS_PER_QUERY = 1_000
# Tracked symbols from which a SQLite snapshot is read through Arrow: its child process
# costs about 0.3 s of CPU to start, then ~1.1 ms a symbol against the session path's
# ~2.5 ms (2,520 sessions each): even at about 200 symbols.
_SQLITE_ARROW_SYMBOLS = 200


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
