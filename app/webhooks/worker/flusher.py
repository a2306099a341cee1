"""The flusher: writes the sends' outcomes in batches, off the sending path."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta

from app.clock import Clock
from app.webhooks.delivery_queue import Outcome
from app.webhooks.worker.store import WorkerStore

log = logging.getLogger(__name__)
#: Pause after a failed write of outcomes before trying again (the store is down).
RECORD_RETRY_SECONDS = 0.5
#: Outcomes are written at least this often, and as soon as FLUSH_ROWS are waiting.
FLUSH_SECONDS = 0.2
FLUSH_ROWS = 500


class Flusher:
    """Holds finished sends' outcomes until :meth:`run` (or the worker) records them."""

    def __init__(self, store: WorkerStore, clock: Clock, lease: timedelta) -> None:
        self.store = store
        self.clock = clock
        self.lease = lease
        self._outcomes: list[Outcome] = []
        self._due = asyncio.Event()

    def add(self, outcome: Outcome) -> None:
        self._outcomes.append(outcome)

    def sends_finished(self, *, in_flight: int) -> None:
        """A send ended: write now when enough are waiting, or nothing is in flight."""
        if len(self._outcomes) >= FLUSH_ROWS or not in_flight:
            self._due.set()

    def take(self) -> list[Outcome]:
        outcomes, self._outcomes = self._outcomes, []
        return outcomes

    async def record_all(self) -> None:
        """Write every outcome waiting now (once; a failure propagates)."""
        await asyncio.to_thread(self.store.record, self.take())

    async def run(self) -> None:
        """Write outcomes every FLUSH_SECONDS, or sooner once FLUSH_ROWS are waiting: few,
        large transactions (each has a fixed cost), until cancelled."""
        while True:
            # (asyncio.timeout, not wait_for: on 3.11 wait_for can swallow the
            # cancellation that stops the flusher if the event is set meanwhile.)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(FLUSH_SECONDS):
                    await self._due.wait()
            self._due.clear()
            batch = self.take()
            if batch:
                try:
                    await asyncio.to_thread(self.store.record, batch)
                except Exception:
                    # The attempts happened: keep their outcomes and record them when the
                    # store answers again (a dropped connection, a restart). Dropping them
                    # would send every acknowledged delivery again once its lease ends.
                    # Past the lease the row is due again anyway, so give up on those.
                    now = self.clock()
                    kept = [o for o in batch if now - o.attempted_at < self.lease]
                    log.exception(
                        "recording %d outcomes failed; %d kept to retry", len(batch), len(kept)
                    )
                    self._outcomes[:0] = kept
                    await asyncio.sleep(RECORD_RETRY_SECONDS)
