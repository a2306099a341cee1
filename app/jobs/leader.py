"""Leadership: one scheduler at a time across processes sharing a PostgreSQL store.

PostgreSQL: a session-level advisory lock held on a dedicated connection for as long
as the process leads; it is released by the server if the process dies. SQLite: the
store belongs to one process, which is always the leader.
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import Connection, text

from app.db.engine import Database

log = logging.getLogger("crosswatch.leader")

# Any constant shared by all Crosswatch processes ("CWSCHED" in ASCII).
SCHEDULER_LOCK_KEY = 0x435753434845_44


class Leadership:
    def __init__(self, db: Database, key: int = SCHEDULER_LOCK_KEY) -> None:
        self.db = db
        self.key = key
        self._connection: Connection | None = None

    def try_acquire(self) -> bool:
        if self.db.is_sqlite:
            return True
        if self._connection is not None:
            return True
        connection = self.db.engine.connect()
        acquired = bool(
            connection.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": self.key}).scalar()
        )
        connection.commit()
        if acquired:
            self._connection = connection
        else:
            connection.close()
        return acquired

    async def wait(self, stop: asyncio.Event, interval: float = 2.0) -> bool:
        """Block until this process leads (True) or ``stop`` is set (False)."""
        announced = False
        while not stop.is_set():
            if await asyncio.to_thread(self.try_acquire):
                log.info("this process leads the scheduler")
                return True
            if not announced:
                log.info("another scheduler leads; waiting to take over")
                announced = True
            try:
                await asyncio.wait_for(stop.wait(), timeout=interval)
            except TimeoutError:
                continue
        return False

    def release(self) -> None:
        if self._connection is not None:
            try:
                self._connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
                self._connection.commit()
            finally:
                self._connection.close()
                self._connection = None
