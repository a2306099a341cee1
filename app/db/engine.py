"""Engines and sessions. SQLite gets WAL, a busy timeout and foreign keys on every connection."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from app.errors import Unavailable

SQLITE_BUSY_TIMEOUT_MS = 30_000
# Failures of the store itself, not of a statement: reported as ``Unavailable`` with the
# driver's one-line reason (a SQLAlchemy error's text carries the SQL and every bound
# parameter, kilobytes that would land in poll records and CLI output).
_SQLITE_REFUSALS = ("SQLITE_FULL", "SQLITE_READONLY", "SQLITE_IOERR", "SQLITE_CANTOPEN")
_POSTGRES_REFUSALS = frozenset({"53100", "25006"})  # disk_full, read_only_sql_transaction


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_begin(conn: Any) -> None:
    # pysqlite defers BEGIN until the first write; take the write lock up front so a
    # read-then-write transaction never fails with "database is locked" half-way.
    conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.info.get("immediate") else "BEGIN")


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create the engine for ``url``; creates the SQLite file's folder if needed."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs
        )
        event.listen(engine, "connect", _sqlite_pragmas)

        @event.listens_for(engine, "connect")
        def _no_pysqlite_transactions(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None

        event.listen(engine, "begin", _sqlite_begin)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)


def store_refusal(exc: DBAPIError) -> str | None:
    """The driver's one-line reason when the store itself refused (disk full, read-only,
    I/O error), else None: an ordinary statement error stays what it is."""
    cause = exc.orig
    name = getattr(cause, "sqlite_errorname", None)
    sqlstate = getattr(cause, "sqlstate", None)
    refused = (isinstance(name, str) and name.startswith(_SQLITE_REFUSALS)) or (
        sqlstate in _POSTGRES_REFUSALS
    )
    if not refused:
        return None
    return (str(cause).strip().splitlines() or [type(cause).__name__])[0]


class Database:
    """An engine plus unit-of-work helpers; built at start-up, never at import."""

    def __init__(self, url: str, **engine_kwargs: Any) -> None:
        self.url = url
        self.engine = make_engine(url, **engine_kwargs)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[Session]:
        """One unit of work: commit on success, roll back on any error.

        The caller (a request, a job, a CLI command) owns the transaction; services
        only flush. On SQLite a writing transaction starts with ``BEGIN IMMEDIATE``
        so it holds the write lock from its first statement. A store that refuses
        (disk full, read-only, I/O error) raises ``Unavailable`` with the driver's reason.
        """
        try:
            with self.engine.connect() as connection:
                connection.info["immediate"] = write and self.is_sqlite
                try:
                    with Session(bind=connection, expire_on_commit=False) as session:
                        try:
                            yield session
                            session.commit()
                        except BaseException:
                            session.rollback()
                            raise
                finally:
                    connection.info.pop("immediate", None)
        except DBAPIError as exc:
            reason = store_refusal(exc)
            if reason is None:
                raise
            raise Unavailable(f"the store failed: {reason}") from exc

    def dispose(self) -> None:
        self.engine.dispose()
