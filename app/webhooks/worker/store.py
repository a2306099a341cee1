"""The delivery worker's own store writes: claims, outcomes, releases, one at a time."""

from __future__ import annotations

import threading
from datetime import timedelta

from app.clock import Clock
from app.db.engine import Database
from app.webhooks import delivery_queue
from app.webhooks.delivery_queue import Job, Outcome


class WorkerStore:
    """Each call is one transaction, run in a thread by the worker's tasks.

    The calls take turns: on SQLite they would otherwise meet in its busy handler, which
    sleeps up to 100 ms a turn and stalled claims behind outcome writes.
    """

    def __init__(
        self,
        db: Database,
        clock: Clock,
        *,
        worker_id: str,
        lease: timedelta,
        per_endpoint: int,
    ) -> None:
        self.db = db
        self.clock = clock
        self.worker_id = worker_id
        self.lease = lease
        self.per_endpoint = per_endpoint
        self._turn = threading.Lock()

    def claim(self, limit: int, held: dict[int, int]) -> tuple[list[Job], bool]:
        """Up to ``limit`` due rows, none past ``per_endpoint`` a subscription counting
        the ``held`` rows; and whether more were due."""
        with self._turn, self.db.transaction() as session:
            return delivery_queue.claim(
                session,
                worker_id=self.worker_id,
                now=self.clock(),
                lease=self.lease,
                limit=limit,
                per_subscription=self.per_endpoint,
                held=held,
            )

    def record(self, outcomes: list[Outcome]) -> None:
        if outcomes:
            with self._turn, self.db.transaction() as session:
                delivery_queue.record(session, outcomes, worker_id=self.worker_id)

    def release(self, delivery_ids: list[int]) -> None:
        """Give claimed rows back unsent: due again at once, for any worker."""
        with self._turn, self.db.transaction() as session:
            delivery_queue.release(session, delivery_ids, self.worker_id)
