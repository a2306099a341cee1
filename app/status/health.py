"""Liveness and readiness: is the process up, and can it serve from a current store?

Readiness asks the store itself, never the engine's pool: a pooled SQLite connection
keeps its handle on a file that was deleted or replaced and goes on answering from it.
On SQLite each check therefore looks at the file (there, writable) and reads the
migration revision over a fresh ``sqlite3`` connection with a short timeout. When the
store comes back after a failed check, or the file at the path is another one than at
the last good check, the pool is emptied so that requests reopen the file now there.
On PostgreSQL the pool's pre-ping already opens a fresh connection for a dead one.
The revision is compared with a plain SELECT (no Alembic logging on every probe).
"""

from __future__ import annotations

import os
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from weakref import WeakKeyDictionary

from sqlalchemy.exc import SQLAlchemyError

from app.db.engine import Database
from app.db.migrate import VERSION_TABLE, pending_reason, revision_problem
from app.errors import Unavailable
from app.status.schemas import State

PROBE_TIMEOUT_SECONDS = 2.0
_WRITE_BITS = 0o222


@dataclass(frozen=True)
class StoreProblem:
    """Why the store cannot serve: ``down`` (unreachable, broken, read-only) or
    ``degraded`` (reachable but behind on migrations)."""

    state: State
    reason: str


MISSING = StoreProblem("down", "the store file is missing: restore it from a backup")


def one_line(exc: BaseException) -> str:
    """The driver's first line for ``exc`` (a SQLAlchemy error's text carries its SQL)."""
    cause = getattr(exc, "orig", None) or exc
    return (str(cause).strip().splitlines() or [type(cause).__name__])[0]


def unreachable(exc: BaseException) -> StoreProblem:
    return StoreProblem("down", f"the store is unreachable: {one_line(exc)}")


def failed(exc: BaseException) -> StoreProblem:
    """A store that answered the check but failed a read that followed."""
    if isinstance(exc, Unavailable):
        return StoreProblem("down", str(exc))
    return StoreProblem("down", f"the store failed: {one_line(exc)}")


WARMING = "warming: the signal book is being computed from the store"


def readiness_problem(db: Database) -> str | None:
    """None when the store answers, is at the newest migration and the signal book of
    the process serving from ``db`` is warm (see :func:`start_warming`), else the reason."""
    problem = store_problem(db)
    if problem is not None:
        return problem.reason
    with _last_checks_lock:
        warming = db in _warming
    return WARMING if warming else None


# Stores whose serving process is still computing its first signal snapshot: ready
# only once it exists, so that no request waits for a cold render.
_warming: WeakKeyDictionary[Database, bool] = WeakKeyDictionary()


def start_warming(db: Database) -> None:
    with _last_checks_lock:
        _warming[db] = True


def finish_warming(db: Database) -> None:
    with _last_checks_lock:
        _warming.pop(db, None)


def store_problem(db: Database) -> StoreProblem | None:
    """None when the store answers, takes writes and is at the newest migration."""
    path = _sqlite_file(db)
    if path is None:
        try:
            reason = pending_reason(db.engine)
        except (SQLAlchemyError, Unavailable) as exc:
            return unreachable(exc)
        return None if reason is None else StoreProblem("degraded", reason)
    problem, identity = _sqlite_problem(path)
    if problem is MISSING and not _ever_healthy(db):
        # Never created rather than lost: a new store waiting for its first migration.
        problem = StoreProblem("degraded", revision_problem(()) or "")
    _forget_stale_handles(db, identity if problem is None else None)
    return problem


def _sqlite_file(db: Database) -> Path | None:
    if not db.is_sqlite:
        return None
    database = db.engine.url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database).resolve()


def _sqlite_problem(path: Path) -> tuple[StoreProblem | None, tuple[int, int] | None]:
    """The problem with the store file at ``path`` and, when there is none, the file's
    identity (device, inode)."""
    try:
        found = path.stat()
    except FileNotFoundError:
        return MISSING, None
    except OSError as exc:
        return StoreProblem("down", f"the store is unreachable: {exc.strerror}"), None
    # The write bits, not only access(): root may write any file, but a file whose
    # write permission was taken away is meant to be read-only.
    if not found.st_mode & _WRITE_BITS or not os.access(path, os.W_OK):
        return StoreProblem("down", "the store is read-only: its file is not writable"), None
    try:
        connection = sqlite3.connect(
            f"{path.as_uri()}?mode=rw", uri=True, timeout=PROBE_TIMEOUT_SECONDS
        )
        try:
            current = _sqlite_revisions(connection)
        finally:
            connection.close()
    except sqlite3.Error as exc:
        return unreachable(exc), None
    reason = revision_problem(current)
    if reason is not None:
        return StoreProblem("degraded", reason), None
    return None, (found.st_dev, found.st_ino)


def _sqlite_revisions(connection: sqlite3.Connection) -> list[str]:
    tables = connection.execute(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?", (VERSION_TABLE,)
    ).fetchone()[0]
    if not tables:
        return []
    rows = connection.execute(f"SELECT version_num FROM {VERSION_TABLE}").fetchall()
    return [str(row[0]) for row in rows]


@dataclass
class _LastCheck:
    healthy: bool
    identity: tuple[int, int] | None


_last_checks: WeakKeyDictionary[Database, _LastCheck] = WeakKeyDictionary()
_last_checks_lock = threading.Lock()


def _ever_healthy(db: Database) -> bool:
    with _last_checks_lock:
        last = _last_checks.get(db)
    return last is not None and last.identity is not None


def _forget_stale_handles(db: Database, identity: tuple[int, int] | None) -> None:
    """Empty ``db``'s pool when the store is good again after a failed check, or is
    another file than at the last good one: pooled connections may hold the old file."""
    with _last_checks_lock:
        last = _last_checks.get(db)
        if identity is None:
            _last_checks[db] = _LastCheck(False, last.identity if last else None)
            return
        _last_checks[db] = _LastCheck(True, identity)
    if last is not None and (not last.healthy or last.identity != identity):
        db.engine.dispose()
