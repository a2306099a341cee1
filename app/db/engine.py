"""Engines and sessions. SQLite gets WAL, a busy timeout and foreign keys on every connection.

Both stores use a bounded pool whose checkout gives up after ``POOL_TIMEOUT_SECONDS``:
a caller that cannot get a connection soon fails fast (the API answers 503) rather
than waiting half a minute. The API does not wait there: it runs at most
``CROSSWATCH_DB_CONCURRENCY`` (≤ 16) units of work at once plus one refresh of the
signal book, each holding one connection only inside the one thread that uses it,
which leaves room in the pool for the scheduler, the delivery worker and the metrics
scrape.

A SQLite writer given ``lock_wait_seconds`` (a request) waits at most that long for
the write lock, in two steps: its turn on ``Database.write_turn``, in the thread that
runs it (queued writers meet on a lock that hands over at once, not in SQLite's busy
handler, which sleeps up to 100 ms a try), then SQLite's own lock, which another
process or a background role may hold. Running out is ``StoreBusy`` or SQLite's
"database is locked"; the API answers both with a 503.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from app.errors import Unavailable

SQLITE_BUSY_TIMEOUT_MS = 30_000
POOL_SIZE = 10
POOL_OVERFLOW = 10
POOL_TIMEOUT_SECONDS = 2.0
# Failures of the store itself, not of a statement: reported as ``Unavailable`` with the
# driver's one-line reason (a SQLAlchemy error's text carries the SQL and every bound
# parameter, kilobytes that would land in poll records and CLI output).
_SQLITE_REFUSALS = ("SQLITE_FULL", "SQLITE_READONLY", "SQLITE_IOERR", "SQLITE_CANTOPEN")
_POSTGRES_REFUSALS = frozenset({"53100", "25006"})  # disk_full, read_only_sql_transaction
# Contention, not failure: the same work may succeed a moment later.
_SQLITE_BUSY = ("SQLITE_BUSY", "SQLITE_LOCKED")
_POSTGRES_BUSY = frozenset({"53300", "55P03"})  # too_many_connections, lock_not_available


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


class StoreBusy(Unavailable):
    """The store cannot take this work now (contention, not failure): the same work may
    succeed a moment later."""

    title = "Busy"


def _sqlite_begin(conn: Any) -> None:
    # pysqlite defers BEGIN until the first write; take the write lock up front so a
    # read-then-write transaction never fails with "database is locked" half-way.
    immediate = conn.info.get("immediate")
    if isinstance(immediate, _LockWait):
        immediate.take(conn)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


class _LockWait:
    """A SQLite writer's wait for the write lock, bounded by one deadline: first its turn
    on ``Database.write_turn``, then SQLite's own lock (the busy timeout)."""

    def __init__(self, turn: threading.Lock, seconds: float) -> None:
        self._turn = turn
        self._deadline = time.monotonic() + seconds
        self._held = False

    def _left(self) -> float:
        return max(0.0, self._deadline - time.monotonic())

    def take(self, conn: Any) -> None:
        """At BEGIN, not when the transaction was opened: what a request does before its
        first statement (a DNS lookup) never holds up the other writers."""
        if not self._turn.acquire(timeout=self._left()):
            raise StoreBusy("the store is busy: other writes are ahead of this one")
        self._held = True
        conn.exec_driver_sql(f"PRAGMA busy_timeout={round(self._left() * 1000)}")

    def end(self, connection: Connection) -> None:
        if not self._held:
            return
        self._held = False
        self._turn.release()
        # The connection goes back to the pool: restore the default wait, on the
        # driver's connection (through SQLAlchemy the PRAGMA would begin a transaction).
        try:
            raw = connection.connection.driver_connection
            if raw is not None:
                raw.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
                return
        except (sqlite3.Error, SQLAlchemyError):
            pass
        with contextlib.suppress(SQLAlchemyError):
            connection.invalidate()  # never hand the short wait to the next user


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create the engine for ``url``; creates the SQLite file's folder if needed."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
            _bounded_pool(kwargs)
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
    _bounded_pool(kwargs)
    return create_engine(url, **kwargs)


def _bounded_pool(kwargs: dict[str, Any]) -> None:
    if "poolclass" not in kwargs:
        kwargs.setdefault("pool_size", POOL_SIZE)
        kwargs.setdefault("max_overflow", POOL_OVERFLOW)
        kwargs.setdefault("pool_timeout", POOL_TIMEOUT_SECONDS)


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


def store_busy(exc: DBAPIError) -> bool:
    """True when the store turned the statement away for contention (SQLite's write lock
    held past the busy timeout, PostgreSQL out of connections or a lock wait timed out):
    the same request may succeed a moment later."""
    cause = exc.orig
    name = getattr(cause, "sqlite_errorname", None)
    if isinstance(name, str):
        return name.startswith(_SQLITE_BUSY)
    return getattr(cause, "sqlstate", None) in _POSTGRES_BUSY


class Database:
    """An engine plus unit-of-work helpers; built at start-up, never at import."""

    def __init__(self, url: str, **engine_kwargs: Any) -> None:
        self.url = url
        self.engine = make_engine(url, **engine_kwargs)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        # SQLite: where this process's writers that give a lock wait (requests) take
        # turns for the write lock, handed over at once rather than in SQLite's busy
        # handler, which sleeps up to 100 ms a try.
        self.write_turn = threading.Lock()

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @contextmanager
    def transaction(
        self, *, write: bool = True, lock_wait_seconds: float | None = None
    ) -> Iterator[Session]:
        """One unit of work: commit on success, roll back on any error.

        The caller (a request, a job, a CLI command) owns the transaction; services
        only flush. On SQLite a writing transaction starts with ``BEGIN IMMEDIATE``
        so it holds the write lock from its first statement. ``lock_wait_seconds``
        bounds a SQLite writer's wait for that lock (default: the 30 s busy timeout),
        its turn on ``write_turn`` included; running out raises ``StoreBusy`` (the
        turn) or SQLite's "database is locked". A store that refuses (disk full,
        read-only, I/O error) raises ``Unavailable`` with the driver's reason.
        """
        wait: _LockWait | None = None
        if write and self.is_sqlite and lock_wait_seconds is not None:
            wait = _LockWait(self.write_turn, lock_wait_seconds)
        try:
            with self.engine.connect() as connection:
                connection.info["immediate"] = wait or (write and self.is_sqlite)
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
                    if wait is not None:
                        wait.end(connection)
        except DBAPIError as exc:
            reason = store_refusal(exc)
            if reason is None:
                raise
            raise Unavailable(f"the store failed: {reason}") from exc

    def dispose(self) -> None:
        self.engine.dispose()
