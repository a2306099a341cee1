"""Leadership: one scheduler at a time across processes sharing a PostgreSQL store.

PostgreSQL: a session-level advisory lock held on a dedicated connection for as long
as the process leads; it is released by the server if the process dies, and lost if
the server drops the connection (a restart, ``pg_terminate_backend``). So leadership
is not a fact acquired once: :func:`while_leading` asks the server again every few
seconds and before each poll, and steps down (stops its role, waits to lead again
like any standby) the moment the lock is gone. SQLite: the store belongs to one
process, which is always the leader.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Awaitable, Callable
from typing import Protocol

from sqlalchemy import Connection, text
from sqlalchemy.exc import SQLAlchemyError

from app.db.engine import Database

log = logging.getLogger("crosswatch.leader")

# Any constant shared by all Crosswatch processes ("CWSCHED" in ASCII).
SCHEDULER_LOCK_KEY = 0x435753434845_44
#: Seconds between checks: how long a standby waits to retry, and how long a leader
#: that lost its lock may take to notice between polls.
CHECK_INTERVAL_SECONDS = 2.0

# A bigint advisory key is stored as classid (high 32 bits), objid (low 32), objsubid 1.
_HELD = text(
    "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory'"
    " AND pid = pg_backend_pid() AND granted AND objsubid = 1"
    " AND ((classid::bigint << 32) | objid::bigint) = :k)"
)


class Lock(Protocol):
    """What the step-down logic needs of a leader lock."""

    def try_acquire(self) -> bool:
        """Take the lock if it is free; True if this process holds it now."""

    def holds(self) -> bool:
        """Whether this process still holds the lock (asks the server; never raises)."""

    def release(self) -> None:
        """Give the lock up (idempotent)."""


class Leadership:
    """The scheduler's advisory lock on PostgreSQL; always held on SQLite.

    Thread-safe: the lock's connection is used by one thread at a time.
    """

    def __init__(self, db: Database, key: int = SCHEDULER_LOCK_KEY) -> None:
        self.db = db
        self.key = key
        self._connection: Connection | None = None
        self._mutex = threading.Lock()

    @property
    def backend_pid(self) -> int | None:
        """The PostgreSQL backend holding the lock, or None (not leading, or SQLite)."""
        with self._mutex:
            if self._connection is None:
                return None
            pid = self._connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
            self._connection.commit()
            return int(pid)

    def try_acquire(self) -> bool:
        if self.db.is_sqlite:
            return True
        if self.holds():
            return True
        with self._mutex:
            connection = self.db.engine.connect()
            try:
                acquired = bool(
                    connection.execute(
                        text("SELECT pg_try_advisory_lock(:k)"), {"k": self.key}
                    ).scalar()
                )
                connection.commit()
            except BaseException:
                connection.close()
                raise
            if acquired:
                self._connection = connection
            else:
                connection.close()
            return acquired

    def holds(self) -> bool:
        if self.db.is_sqlite:
            return True
        with self._mutex:
            if self._connection is None:
                return False
            try:
                held = bool(self._connection.execute(_HELD, {"k": self.key}).scalar())
                self._connection.commit()
            except SQLAlchemyError as exc:
                reason = (str(getattr(exc, "orig", None) or exc).strip().splitlines() or ["?"])[0]
                log.warning("the scheduler lock's connection failed: %s", reason)
                held = False
            if not held:
                self._drop()
            return held

    def release(self) -> None:
        with self._mutex:
            if self._connection is None:
                return
            try:
                self._connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
                self._connection.commit()
            except SQLAlchemyError:
                log.warning("could not unlock the scheduler lock; its connection is closed")
            finally:
                self._drop()

    def _drop(self) -> None:
        """Close the lock's connection (the server frees the lock with it), never raising."""
        connection, self._connection = self._connection, None
        if connection is None:
            return
        with contextlib.suppress(SQLAlchemyError):
            connection.invalidate()
        with contextlib.suppress(SQLAlchemyError):
            connection.close()


async def wait_to_lead(
    lock: Lock, stop: asyncio.Event, interval: float = CHECK_INTERVAL_SECONDS
) -> bool:
    """Block until this process leads (True) or ``stop`` is set (False).

    A store that cannot be reached (PostgreSQL restarting) is retried, not fatal.
    """
    announced = False
    while not stop.is_set():
        try:
            if await asyncio.to_thread(lock.try_acquire):
                log.info("this process leads the scheduler")
                return True
            if not announced:
                log.info("another scheduler leads; waiting to take over")
                announced = True
        except SQLAlchemyError as exc:
            reason = (str(getattr(exc, "orig", None) or exc).strip().splitlines() or ["?"])[0]
            log.warning("cannot reach the store to lead the scheduler: %s", reason)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval)
    return False


class Tenure:
    """One spell of leadership: ``ended`` is set when it is over (stop, or lock lost)."""

    def __init__(self, lock: Lock) -> None:
        self.lock = lock
        self.ended = asyncio.Event()

    async def confirm(self) -> bool:
        """Ask the lock again (before a poll); a lost lock ends the tenure."""
        if self.ended.is_set():
            return False
        if await asyncio.to_thread(self.lock.holds):
            return True
        self.ended.set()
        return False


async def while_leading(
    lock: Lock,
    stop: asyncio.Event,
    role: Callable[[Tenure], Awaitable[None]],
    *,
    interval: float = CHECK_INTERVAL_SECONDS,
) -> None:
    """Run ``role(tenure)`` whenever this process leads, until ``stop`` is set.

    While the role runs the lock is re-checked every ``interval`` seconds; when it is
    gone, ``tenure.ended`` is set, the role must return, and this process goes back to
    waiting to lead. The role also ends its tenure itself when
    :meth:`Tenure.confirm` finds the lock lost. The lock is released on the way out.
    """
    try:
        while await wait_to_lead(lock, stop, interval):
            tenure = Tenure(lock)
            watch = asyncio.create_task(_watch(tenure, stop, interval))
            try:
                await role(tenure)
            finally:
                watch.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watch
            if stop.is_set() or not tenure.ended.is_set():
                return
            log.warning("this process no longer leads the scheduler; stepping down")
    finally:
        await asyncio.to_thread(lock.release)


async def _watch(tenure: Tenure, stop: asyncio.Event, interval: float) -> None:
    """End ``tenure`` when ``stop`` is set or the lock is found lost."""
    while not tenure.ended.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval)
        if stop.is_set():
            tenure.ended.set()
        else:
            await tenure.confirm()
