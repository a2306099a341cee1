"""Request dependencies: the app's shared parts, turns at the store, a unit of work per request.

A request's database work runs inside one thread-pool call: the endpoint's (sync) body
opens its transaction with ``unit.begin()``, uses it and commits before it returns. So
no thread ever holds a connection while it waits for another thread, and the commit
happens before the response is sent. (A ``yield`` dependency that opened the
transaction in one thread-pool call for the endpoint to use in another froze the API
under a burst: the pool's threads all waited for connections held by requests that
were waiting for a thread; issue 12.)

Before that, a request waits for a turn at the ``StoreGate`` on the event loop, holding
no thread and no connection: at most ``CROSSWATCH_DB_CONCURRENCY`` units run at once.
On SQLite at most half of them are writers, which then meet on ``Database.write_turn``
for the one write lock; the other writers queue here, so readers always have turns
left. A request waits at most ``CROSSWATCH_DB_QUEUE_SECONDS`` in all (for its turn,
then, if it writes to SQLite, for the write lock); then it is shed with ``StoreBusy``
(or SQLite's "database is locked"): a 503 with ``Retry-After``. The turn is given back
by the worker thread as soon as the unit ends, not once the response has been sent:
under a burst the event loop is slow to come back to a request, and the next one need
not wait for that.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any, TypeVar

import anyio
from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session

from app.clock import Clock, system_clock
from app.db.engine import Database, StoreBusy
from app.settings import Settings

T = TypeVar("T")


class Turn:
    """A turn held at the ``StoreGate``; given back once. ``deadline`` (monotonic) ends
    the request's wait for the store, in the queue and then for a lock."""

    def __init__(
        self, taken: list[anyio.Semaphore], loop: asyncio.AbstractEventLoop, deadline: float
    ) -> None:
        self._taken = taken
        self._loop = loop
        self.deadline = deadline

    def seconds_left(self) -> float:
        return max(0.0, self.deadline - time.monotonic())

    def give_back(self) -> None:
        """On the event loop; again is nothing."""
        while self._taken:
            self._taken.pop().release()

    def give_back_soon(self) -> None:
        """From any thread (a worker thread when its unit ends)."""
        if not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self.give_back)


class StoreGate:
    """Turns at the store for requests: ``concurrency`` at once, each waited for at most
    ``wait_seconds``; with ``single_writer`` (SQLite) at most half of them writers. Work
    whose result serves every request (the signal book's refresh) has one more turn of
    its own, so that it never queues behind single requests."""

    def __init__(self, *, concurrency: int, wait_seconds: float, single_writer: bool) -> None:
        self.wait_seconds = wait_seconds
        self._turns = anyio.Semaphore(concurrency)
        self._writers = anyio.Semaphore(max(1, concurrency // 2)) if single_writer else None
        self._shared = anyio.Semaphore(1)

    @classmethod
    def for_store(cls, settings: Settings, db: Database) -> StoreGate:
        return cls(
            concurrency=settings.db_concurrency,
            wait_seconds=settings.db_queue_seconds,
            single_writer=db.is_sqlite,
        )

    def deadline(self) -> float:
        """The end of a request's wait for the store that starts now (monotonic)."""
        return time.monotonic() + self.wait_seconds

    async def _take(self, wanted: list[anyio.Semaphore], until: float) -> list[anyio.Semaphore]:
        taken: list[anyio.Semaphore] = []
        try:
            with self._until(until):
                for semaphore in wanted:
                    await semaphore.acquire()
                    taken.append(semaphore)
        except BaseException:
            while taken:
                taken.pop().release()
            raise
        return taken

    @contextmanager
    def _until(self, until: float) -> Iterator[None]:
        try:
            with anyio.fail_after(max(0.0, until - time.monotonic())):
                yield
        except TimeoutError:
            raise StoreBusy(
                f"the service is busy: no turn at the store within {self.wait_seconds:g} s"
            ) from None

    async def wait(self, event: anyio.Event, *, until: float) -> None:
        """Wait for ``event`` (another request's work) as for a turn, holding none."""
        with self._until(until):
            await event.wait()

    @asynccontextmanager
    async def turn(
        self, *, write: bool, until: float | None = None, shared: bool = False
    ) -> AsyncIterator[Turn]:
        """A turn for the block at the latest, waited for until ``until`` (default: the
        gate's wait from now). A writer on SQLite first takes a writer's place, so that
        queued writers hold no turn; ``shared`` work (a read) takes the turn of its own."""
        until = self.deadline() if until is None else until
        wanted = [self._shared if shared else self._turns]
        if write and self._writers is not None:
            wanted.insert(0, self._writers)
        turn = Turn(await self._take(wanted, until), asyncio.get_running_loop(), until)
        try:
            yield turn
        finally:
            turn.give_back()

    async def run(
        self,
        function: Callable[..., T],
        *args: Any,
        write: bool = False,
        until: float | None = None,
        shared: bool = False,
    ) -> T:
        """``function(*args)`` in the thread pool, in a turn; it opens its own transaction."""
        async with self.turn(write=write, until=until, shared=shared) as turn:

            def unit() -> T:
                try:
                    return function(*args)
                finally:
                    turn.give_back_soon()

            return await run_in_threadpool(unit)


@dataclass
class Services:
    """What the app's lifespan builds once and every request shares."""

    settings: Settings
    db: Database
    gate: StoreGate
    clock: Clock = field(default=system_clock)
    # The in-process delivery worker, when this process runs one (woken on new rows).
    delivery: Any = None


class UnitOfWork:
    """A request's one transaction, begun in the thread that does the work, in a turn."""

    def __init__(self, db: Database, turn: Turn, *, write: bool) -> None:
        self._db = db
        self._turn = turn
        self._write = write
        self._begun = False

    @contextmanager
    def begin(self) -> Iterator[Session]:
        """The transaction: committed when the block ends, rolled back on an error, and
        the turn given back. Use it once, in the endpoint's body (which runs in one
        worker thread)."""
        if self._begun:
            raise RuntimeError("a request has one unit of work: its turn is given back")
        self._begun = True
        try:
            with self._db.transaction(
                write=self._write,
                # What is left of the request's wait, for SQLite's write lock.
                lock_wait_seconds=self._turn.seconds_left() if self._write else None,
            ) as session:
                yield session
        finally:
            self._turn.give_back_soon()


async def get_services(request: Request) -> Services:
    # Async (as every dependency here): a sync one costs a hop to the thread pool.
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


async def read_unit(services: ServicesDep) -> AsyncIterator[UnitOfWork]:
    async with services.gate.turn(write=False) as turn:
        yield UnitOfWork(services.db, turn, write=False)


async def write_unit(services: ServicesDep) -> AsyncIterator[UnitOfWork]:
    async with services.gate.turn(write=True) as turn:
        yield UnitOfWork(services.db, turn, write=True)


ReadUnit = Annotated[UnitOfWork, Depends(read_unit)]
WriteUnit = Annotated[UnitOfWork, Depends(write_unit)]
