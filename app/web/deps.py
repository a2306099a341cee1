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
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Annotated, Protocol, TypeVar, TypeVarTuple

import anyio
from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session

from app.clock import Clock, system_clock
from app.db.engine import Database, StoreBusy
from app.settings import Settings

T = TypeVar("T")
Args = TypeVarTuple("Args")


class Turns:
    """A counting semaphore for the event loop whose ``first`` waiters go ahead of the
    others (first come, first served within each kind). A turn given back goes straight
    to the next waiter."""

    def __init__(self, count: int) -> None:
        self._free = count
        self._first: deque[anyio.Event] = deque()
        self._others: deque[anyio.Event] = deque()

    async def acquire(self, *, first: bool = False) -> None:
        if self._free > 0 and not self._first and not self._others:
            self._free -= 1
            return
        handed = anyio.Event()
        line = self._first if first else self._others
        line.append(handed)
        try:
            await handed.wait()
        except BaseException:
            if handed.is_set():
                self.release()  # given the turn just as the wait ended: pass it on
            else:
                line.remove(handed)
            raise

    def release(self) -> None:
        line = self._first or self._others
        if line:
            line.popleft().set()
        else:
            self._free += 1


@dataclass
class StoreWait:
    """One request's wait for the store: a deadline (monotonic) for all its turns, and
    how many it has had; a request's later turns (its endpoint's after its key check)
    go ahead of first turns, so that a request part-way through is finished first."""

    until: float
    turns: int = 0

    def seconds_left(self) -> float:
        return max(0.0, self.until - time.monotonic())


class Turn:
    """A turn held at the ``StoreGate``; given back once."""

    def __init__(
        self, taken: list[Turns], loop: asyncio.AbstractEventLoop, wait: StoreWait
    ) -> None:
        self._taken = taken
        self._loop = loop
        self.wait = wait

    def give_back(self) -> None:
        """On the event loop; again is nothing."""
        while self._taken:
            self._taken.pop().release()

    def give_back_soon(self) -> None:
        """From any thread (a worker thread when its unit ends)."""
        if not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self.give_back)


class StoreGate:
    """Turns at the store for requests: ``concurrency`` at once, each request waiting at
    most ``wait_seconds`` in all; with ``single_writer`` (SQLite) at most half of them
    writers. Work whose result serves every request (the signal book's refresh) has one
    more turn of its own, so that it never queues behind single requests."""

    def __init__(self, *, concurrency: int, wait_seconds: float, single_writer: bool) -> None:
        self.wait_seconds = wait_seconds
        self._turns = Turns(concurrency)
        self._writers = Turns(max(1, concurrency // 2)) if single_writer else None
        self._shared = Turns(1)

    @classmethod
    def for_store(cls, settings: Settings, db: Database) -> StoreGate:
        return cls(
            concurrency=settings.db_concurrency,
            wait_seconds=settings.db_queue_seconds,
            single_writer=db.is_sqlite,
        )

    def start_wait(self) -> StoreWait:
        """A request's wait for the store, starting now."""
        return StoreWait(time.monotonic() + self.wait_seconds)

    @contextmanager
    def _until(self, wait: StoreWait) -> Iterator[None]:
        try:
            with anyio.fail_after(wait.seconds_left()):
                yield
        except TimeoutError:
            raise StoreBusy(
                f"the service is busy: no turn at the store within {self.wait_seconds:g} s"
            ) from None

    @asynccontextmanager
    async def turn(
        self, *, write: bool, wait: StoreWait | None = None, shared: bool = False
    ) -> AsyncIterator[Turn]:
        """A turn for the block at the latest, within ``wait`` (default: one starting
        now). A writer on SQLite first takes a writer's place, so that queued writers
        hold no turn; ``shared`` work (a read) takes the turn of its own."""
        wait = self.start_wait() if wait is None else wait
        wanted = [self._shared if shared else self._turns]
        if write and self._writers is not None:
            wanted.insert(0, self._writers)
        taken: list[Turns] = []
        try:
            with self._until(wait):
                for turns in wanted:
                    await turns.acquire(first=wait.turns > 0)
                    taken.append(turns)
        except BaseException:
            while taken:
                taken.pop().release()
            raise
        wait.turns += 1
        turn = Turn(taken, asyncio.get_running_loop(), wait)
        try:
            yield turn
        finally:
            turn.give_back()

    async def wait_for(self, event: anyio.Event, *, wait: StoreWait) -> None:
        """Wait for ``event`` (another request's work) as for a turn, holding none."""
        with self._until(wait):
            await event.wait()

    async def run(
        self,
        function: Callable[[*Args], T],
        *args: *Args,
        write: bool = False,
        wait: StoreWait | None = None,
        shared: bool = False,
    ) -> T:
        """``function(*args)`` in the thread pool, in a turn; it opens its own transaction."""
        async with self.turn(write=write, wait=wait, shared=shared) as turn:

            def unit() -> T:
                try:
                    return function(*args)
                finally:
                    turn.give_back_soon()

            return await run_in_threadpool(unit)


class DeliveryNotifier(Protocol):
    """The in-process delivery worker as the app's parts see it: woken when rows are due."""

    def notify(self) -> None: ...


@dataclass
class Services:
    """What the app's lifespan builds once and every request shares."""

    settings: Settings
    db: Database
    gate: StoreGate
    clock: Clock = field(default=system_clock)
    # The in-process delivery worker, when this process runs one (woken on new rows).
    delivery: DeliveryNotifier | None = None


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
                lock_wait_seconds=self._turn.wait.seconds_left() if self._write else None,
            ) as session:
                yield session
        finally:
            self._turn.give_back_soon()


async def get_services(request: Request) -> Services:
    # Async (as every dependency here): a sync one costs a hop to the thread pool.
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


async def store_wait(services: ServicesDep) -> StoreWait:
    """The request's wait for the store, shared by all its turns (the key check's and
    the endpoint's): FastAPI resolves a dependency once per request."""
    return services.gate.start_wait()


StoreWaitDep = Annotated[StoreWait, Depends(store_wait)]


async def read_unit(services: ServicesDep, wait: StoreWaitDep) -> AsyncIterator[UnitOfWork]:
    async with services.gate.turn(write=False, wait=wait) as turn:
        yield UnitOfWork(services.db, turn, write=False)


async def write_unit(services: ServicesDep, wait: StoreWaitDep) -> AsyncIterator[UnitOfWork]:
    async with services.gate.turn(write=True, wait=wait) as turn:
        yield UnitOfWork(services.db, turn, write=True)


ReadUnit = Annotated[UnitOfWork, Depends(read_unit)]
WriteUnit = Annotated[UnitOfWork, Depends(write_unit)]
