"""The dispatcher: starts claimed rows as sends finish, within the worker's limits."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque

from app.webhooks.delivery_queue import Job, Outcome
from app.webhooks.worker.flusher import Flusher
from app.webhooks.worker.sender import Sender

log = logging.getLogger(__name__)


class Dispatcher:
    """Claimed rows wait in ``ready`` (with the monotonic time after which they may no
    longer start: their lease must outlast a send) and start as sends finish.

    At most ``concurrency`` sends run, and ``held`` counts each subscription's rows
    (waiting or sending) so a claim never gives one endpoint more than its limit. Rows
    that waited too long go back (``take_expired``) and set ``wake``. ``room`` is set
    when the rows waiting fall to half a batch, ``idle`` when nothing waits or runs.
    """

    def __init__(
        self,
        sender: Sender,
        flusher: Flusher,
        *,
        concurrency: int,
        batch_size: int,
        start_by: float,
        wake: asyncio.Event,
    ) -> None:
        self.sender = sender
        self.flusher = flusher
        self.concurrency = concurrency
        self.batch_size = batch_size
        #: Seconds after its claim within which a row must start.
        self.start_by = start_by
        self.wake = wake
        self.ready: deque[tuple[Job, float]] = deque()
        self.running: dict[asyncio.Task[Outcome], Job] = {}
        self.held: dict[int, int] = {}
        self.room = asyncio.Event()
        self.idle = asyncio.Event()
        self._expired: list[int] = []

    def dispatch(self, jobs: list[Job]) -> None:
        start_by = time.monotonic() + self.start_by
        for job in jobs:
            self.held[job.subscription_id] = self.held.get(job.subscription_id, 0) + 1
            self.ready.append((job, start_by))
        self._start_ready()

    def take_expired(self) -> list[int]:
        """The rows that waited too long since the last call, to release."""
        expired, self._expired = self._expired, []
        return expired

    async def stop(self, grace_seconds: float) -> list[int]:
        """Stop starting rows, give sends ``grace_seconds``, cancel the rest; returns the
        rows never sent (waiting, expired, or cut off), to release."""
        unsent = [job.delivery_id for job, _ in self.ready] + self.take_expired()
        self.ready.clear()
        if self.running:
            await asyncio.wait(list(self.running), timeout=grace_seconds)
        unsent += [job.delivery_id for task, job in self.running.items() if not task.done()]
        for task in list(self.running):
            task.cancel()
        await asyncio.gather(*self.running, return_exceptions=True)
        return unsent

    def _start_ready(self) -> None:
        now = time.monotonic()
        while self.ready and len(self.running) < self.concurrency:
            job, start_by = self.ready.popleft()
            if now > start_by:
                self._let_go(job)
                self._expired.append(job.delivery_id)
                self.wake.set()
                continue
            task = asyncio.create_task(self.sender.attempt(job))
            self.running[task] = job
            task.add_done_callback(self._finished)
        if not self.ready and not self.running:
            self.idle.set()
        else:
            self.idle.clear()

    def _let_go(self, job: Job) -> None:
        held = self.held.pop(job.subscription_id, 1) - 1
        if held:
            self.held[job.subscription_id] = held

    def _finished(self, task: asyncio.Task[Outcome]) -> None:
        job = self.running.pop(task)
        self._let_go(job)
        if not task.cancelled():
            if task.exception() is None:
                self.flusher.add(task.result())
            else:
                log.error("delivery task failed", exc_info=task.exception())
        self._start_ready()
        self.flusher.sends_finished(in_flight=len(self.running))
        if len(self.ready) <= self.batch_size // 2:
            self.room.set()
