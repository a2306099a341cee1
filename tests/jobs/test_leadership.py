"""Leadership is re-checked, not assumed: a leader whose lock is gone steps down.

The step-down logic is tested with an in-memory lock (the lock interface is this
module's process edge, like the HTTP transport); the real advisory lock is tested on
the suite's store: on PostgreSQL by terminating the leader's lock backend (what a
server restart does to it), on SQLite by its single-process semantics.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from itertools import pairwise

from sqlalchemy import select, text

from app.db.engine import Database
from app.jobs.leader import Leadership, Tenure, while_leading
from app.jobs.runtime import run_scheduler
from app.jobs.scheduler import PollScheduler
from app.market.models import PollRun
from app.market.service import read_csv_file
from app.settings import load_settings
from tests.conftest import data_file, fixed_clock
from tests.support.wait import until
from tests.support.yahoo import YahooFake

DEADLINE_SECONDS = 30.0


@dataclass
class Server:
    """Stands in for PostgreSQL's lock table: who holds the one lock."""

    owner: str | None = None


@dataclass
class ServerLock:
    server: Server
    name: str

    def try_acquire(self) -> bool:
        if self.server.owner in (None, self.name):
            self.server.owner = self.name
            return True
        return False

    def holds(self) -> bool:
        return self.server.owner == self.name

    def release(self) -> None:
        if self.server.owner == self.name:
            self.server.owner = None


@dataclass
class Node:
    """A scheduler process: its polls, its tenures, and a button for its next poll."""

    name: str
    server: Server
    polls: list[str] = field(default_factory=list)
    tenures: int = 0
    leading: bool = False
    poll_now: asyncio.Event = field(default_factory=asyncio.Event)

    async def role(self, tenure: Tenure) -> None:
        self.tenures += 1
        self.leading = True
        try:
            if await tenure.confirm():
                self.polls.append(f"{self.name} start-up")
            while not tenure.ended.is_set():
                ended = asyncio.create_task(tenure.ended.wait())
                pressed = asyncio.create_task(self.poll_now.wait())
                await asyncio.wait({ended, pressed}, return_when=asyncio.FIRST_COMPLETED)
                ended.cancel()
                pressed.cancel()
                if self.poll_now.is_set():
                    self.poll_now.clear()
                    if await tenure.confirm():
                        self.polls.append(f"{self.name} scheduled")
        finally:
            self.leading = False

    def run(self, stop: asyncio.Event, interval: float) -> asyncio.Task[None]:
        lock = ServerLock(self.server, self.name)
        return asyncio.create_task(while_leading(lock, stop, self.role, interval=interval))


def test_a_leader_checks_its_lock_before_polling_and_steps_down_to_the_standby() -> None:
    async def scenario() -> None:
        server = Server()
        stop = asyncio.Event()
        # The old leader checks only before a poll (its periodic check is an hour away).
        old, standby = Node("old", server), Node("standby", server)
        old_task = old.run(stop, interval=3600)
        await until(
            lambda: old.polls == ["old start-up"],
            DEADLINE_SECONDS,
            "the leader's start-up poll",
            every=0.01,
        )
        standby_task = standby.run(stop, interval=0.01)
        server.owner = None  # the server dropped the old leader's lock
        await until(
            lambda: standby.polls == ["standby start-up"],
            DEADLINE_SECONDS,
            "the standby to take over",
            every=0.01,
        )
        old.poll_now.set()  # the old leader's next session close
        await until(
            lambda: not old.leading, DEADLINE_SECONDS, "the old leader to step down", every=0.01
        )
        assert old.polls == ["old start-up"], "a leader polled without its lock"
        assert server.owner == "standby" and standby.leading
        stop.set()
        await asyncio.gather(old_task, standby_task)
        assert server.owner is None, "the lock was not released at stop"

    asyncio.run(scenario())


def test_a_lone_leader_notices_a_lost_lock_between_polls_and_leads_again() -> None:
    async def scenario() -> None:
        server = Server()
        stop = asyncio.Event()
        node = Node("only", server)
        task = node.run(stop, interval=0.01)
        await until(
            lambda: node.polls == ["only start-up"],
            DEADLINE_SECONDS,
            "the start-up poll",
            every=0.01,
        )
        server.owner = None  # e.g. PostgreSQL restarted; nobody else is waiting
        await until(lambda: node.tenures == 2, DEADLINE_SECONDS, "a new tenure", every=0.01)
        await until(lambda: len(node.polls) == 2, DEADLINE_SECONDS, "its catch-up poll", every=0.01)
        assert node.polls == ["only start-up", "only start-up"]
        assert server.owner == "only"
        stop.set()
        await task
        assert node.tenures == 2 and server.owner is None

    asyncio.run(scenario())


def _poll_runs(db: Database) -> list[PollRun]:
    with db.transaction(write=False) as session:
        return list(session.scalars(select(PollRun).order_by(PollRun.id)))


def _terminate(db: Database, pid: int) -> None:
    with db.engine.begin() as connection:
        assert connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar()


def test_leadership_on_the_suites_store(db: Database, database_url: str) -> None:
    """PostgreSQL: terminating the leader's lock backend hands the scheduler to the
    standby, and the old leader's next poll is skipped. SQLite: one process owns the
    store, so it always leads (there is no lock to lose)."""
    if db.is_sqlite:
        first, second = Leadership(db), Leadership(db)
        assert first.try_acquire() and second.try_acquire()
        assert first.holds() and second.holds()
        assert first.backend_pid is None
        first.release()
        assert first.holds()
        return

    bars = read_csv_file(data_file("rut_daily.csv"))[-400:]
    fake = YahooFake(series={"^RUT": bars})

    async def scenario(base_url: str) -> None:
        settings = load_settings(
            database_url=database_url,
            seed=False,
            symbols="^RUT",
            yahoo_base_url=base_url,
            provider_retries=0,
            _env_file=None,
        )
        stop = asyncio.Event()
        old_lock, standby_lock = Leadership(db), Leadership(db)
        schedulers: dict[str, PollScheduler] = {}

        def start(name: str, lock: Leadership, check_interval: float) -> asyncio.Task[None]:
            return asyncio.create_task(
                run_scheduler(
                    db,
                    settings,
                    stop,
                    clock=fixed_clock,
                    started=lambda s: schedulers.__setitem__(name, s),
                    leadership=lock,
                    check_interval=check_interval,
                )
            )

        def finished_runs() -> int:
            return sum(run.finished_at is not None for run in _poll_runs(db))

        async def backend(lock: Leadership) -> int:
            pid = await asyncio.to_thread(lambda: lock.backend_pid)
            assert pid is not None
            return pid

        # The old leader's periodic check is an hour away: only the check before its
        # next poll can notice the loss, so the standby surely takes over first.
        old = start("old", old_lock, 3600)
        await until(
            lambda: finished_runs() == 1, DEADLINE_SECONDS, "the leader's start-up poll", every=0.01
        )
        standby = start("standby", standby_lock, 0.05)
        await asyncio.to_thread(_terminate, db, await backend(old_lock))
        await until(
            lambda: finished_runs() == 2,
            DEADLINE_SECONDS,
            "the standby's start-up poll",
            every=0.01,
        )
        await backend(standby_lock)

        await schedulers["old"]._scheduled()  # the old leader's next session close
        assert len(_poll_runs(db)) == 2, "the old leader polled without its lock"
        await until(
            lambda: not schedulers["old"].scheduler.running,
            DEADLINE_SECONDS,
            "the old leader to stop",
            every=0.01,
        )
        assert old_lock.backend_pid is None

        # A leader notices a dead lock connection between polls too, and leads again
        # (with a catch-up poll) when nobody else took over.
        schedulers.pop("standby")
        await asyncio.to_thread(_terminate, db, await backend(standby_lock))
        await until(
            lambda: "standby" in schedulers,
            DEADLINE_SECONDS,
            "the standby to lead again",
            every=0.01,
        )
        await until(lambda: finished_runs() == 3, DEADLINE_SECONDS, "its catch-up poll", every=0.01)
        assert old_lock.backend_pid is None
        stop.set()
        await asyncio.gather(old, standby)

    with fake.serve() as base_url:
        asyncio.run(scenario(base_url))
    runs = _poll_runs(db)
    for earlier, later in pairwise(runs):
        assert earlier.finished_at is not None and later.started_at >= earlier.finished_at
    probe = Leadership(db)
    assert probe.try_acquire(), "a stopped scheduler kept the lock"
    probe.release()
