"""A burst of ordinary requests against a real server (uvicorn on a free port): every
answer is prompt, a 2xx or a 503 problem+json with ``Retry-After``, never a 500 or a
30 s hang (issue 12). Runs on SQLite, and on PostgreSQL when the suite does."""

from __future__ import annotations

import asyncio
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass

import anyio
import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy import text

from app.api.app import create_app
from app.auth.service import create_key
from app.db.engine import Database, StoreBusy
from app.settings import Settings, load_settings
from app.web.deps import StoreGate, Turns
from tests.conftest import FIXED_NOW, fixed_clock
from tests.support.burst import PUBLIC_READ, Answer, burst, summarise
from tests.support.stores import seed

PROMPT_SECONDS = 5.0


@dataclass(frozen=True)
class Server:
    base_url: str
    key: str
    subscription: int


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    """``app`` served by uvicorn on a free port, in a thread of this process."""
    port = _free_port()
    # No log_level and no log_config: either would change the process's logging for the
    # tests that follow.
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level=None, log_config=None, loop="asyncio"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def _settings(database_url: str, **overrides: object) -> Settings:
    return load_settings(
        database_url=database_url,
        seed=False,
        webhook_allow_private=True,
        _env_file=None,
        **overrides,
    )


@contextmanager
def running(db: Database, settings: Settings) -> Iterator[Server]:
    with db.transaction() as session:
        _row, key = create_key(session, "burst")
    with serving(create_app(settings, db=db, clock=fixed_clock)) as base_url:
        created = httpx.post(
            f"{base_url}/v1/webhooks",
            json={"url": "http://127.0.0.1:9/hook", "event_types": ["golden_cross"]},
            headers={"Authorization": f"Bearer {key}"},
            timeout=30,
        )
        assert created.status_code == 201, created.text
        yield Server(base_url, key, created.json()["id"])


def _fire(server: Server, n: int, **kwargs: object) -> list[Answer]:
    return asyncio.run(
        burst(
            server.base_url,
            n,
            key=server.key,
            subscription=server.subscription,
            timeout=3 * PROMPT_SECONDS,
            **kwargs,  # type: ignore[arg-type]
        )
    )


def _assert_prompt_and_well_formed(answers: list[Answer]) -> None:
    errors = [answer for answer in answers if answer.error]
    assert not errors, f"{len(errors)} answers neither 2xx nor shed, e.g. {errors[:3]}"
    slow = [answer for answer in answers if answer.seconds > PROMPT_SECONDS]
    assert not slow, f"{len(slow)} answers took over {PROMPT_SECONDS} s, e.g. {slow[:3]}"


def test_sixty_public_reads_at_once_are_all_answered_promptly(
    database_url: str, db: Database
) -> None:
    """The reported stall: 60 x ``GET /v1/symbols`` gave 20 answers, then 40 x 500 after
    30 s (the 40 pool threads waited for connections held by requests waiting for one)."""
    with running(db, _settings(database_url)) as server:
        answers = _fire(server, 60, kinds=[PUBLIC_READ])
    _assert_prompt_and_well_formed(answers)
    assert summarise(answers).ok > 0


def test_two_hundred_mixed_requests_at_once(database_url: str, db: Database) -> None:
    seed(db, ["^RUT"], now=FIXED_NOW)
    with running(db, _settings(database_url)) as server:
        answers = _fire(server, 200)
    _assert_prompt_and_well_formed(answers)
    summary = summarise(answers)
    assert summary.ok > 0, summary
    assert {answer.kind for answer in answers if answer.ok} >= {"GET /v1/symbols"}


def test_a_full_gate_sheds_at_once() -> None:
    gate = StoreGate(concurrency=1, wait_seconds=0.05, single_writer=False)

    async def second_while_first_holds() -> float:
        async with gate.turn(write=False):
            began = time.perf_counter()
            with pytest.raises(StoreBusy, match=r"no turn at the store within 0\.05 s"):
                async with gate.turn(write=True):
                    pass
            return time.perf_counter() - began

    assert asyncio.run(second_while_first_holds()) < 1.0

    async def after_release() -> None:
        async with gate.turn(write=True):
            pass

    asyncio.run(after_release())  # the failed wait left the turn free


def test_a_turn_given_back_goes_first_to_a_request_part_way_through() -> None:
    """A keyed request takes a turn for its key check, then one for its endpoint: the
    second goes ahead of requests still waiting for their first, or under a burst none
    of them would ever finish."""
    turns = Turns(1)
    served: list[str] = []

    async def waiter(name: str, *, first: bool) -> None:
        await turns.acquire(first=first)
        served.append(name)
        turns.release()

    async def scenario() -> None:
        await turns.acquire()
        async with anyio.create_task_group() as group:
            group.start_soon(lambda: waiter("new", first=False))
            group.start_soon(lambda: waiter("newer", first=False))
            group.start_soon(lambda: waiter("part-way", first=True))
            await anyio.wait_all_tasks_blocked()
            turns.release()

    asyncio.run(scenario())
    assert served == ["part-way", "new", "newer"]


def test_sqlite_writers_beyond_half_the_turns_wait_without_taking_the_readers_turns() -> None:
    gate = StoreGate(concurrency=2, wait_seconds=0.05, single_writer=True)

    async def reader_while_a_writer_holds() -> None:
        async with gate.turn(write=True):
            with pytest.raises(StoreBusy):
                async with gate.turn(write=True):
                    pass
            async with gate.turn(write=False):
                pass

    asyncio.run(reader_while_a_writer_holds())


def test_a_request_with_no_turn_in_time_is_a_503_with_retry_after(database_url: str) -> None:
    """One turn; a request holding it waits at the pool (its one connection held here),
    so another gets no turn within the queue's 0.2 s and is told to come back."""
    tiny = Database(database_url, pool_size=1, max_overflow=0, pool_timeout=30)
    settings = _settings(database_url, db_concurrency=1, db_queue_seconds=0.2)
    try:
        with running(tiny, settings) as server, ThreadPoolExecutor(2) as pool:
            url = f"{server.base_url}/v1/symbols"
            with tiny.engine.connect():
                sent = [pool.submit(httpx.get, url, timeout=30) for _ in range(2)]
                done, waiting = wait(sent, timeout=30, return_when=FIRST_COMPLETED)
                shed = done.pop().result()
            served = waiting.pop().result()
    finally:
        tiny.dispose()
    assert shed.status_code == 503, shed.text
    assert shed.headers["content-type"] == "application/problem+json"
    assert shed.headers["retry-after"] == "1"
    assert shed.json()["detail"] == "the service is busy: no turn at the store within 0.2 s"
    assert served.status_code == 200


def test_an_exhausted_pool_is_a_prompt_503_with_retry_after(database_url: str) -> None:
    tiny = Database(database_url, pool_size=1, max_overflow=0, pool_timeout=0.2)
    try:
        with running(tiny, _settings(database_url)) as server:
            with tiny.engine.connect():  # the pool's only connection, held elsewhere
                began = time.perf_counter()
                answer = httpx.get(f"{server.base_url}/v1/symbols", timeout=30)
                took = time.perf_counter() - began
            assert httpx.get(f"{server.base_url}/v1/symbols", timeout=30).status_code == 200
    finally:
        tiny.dispose()
    assert answer.status_code == 503
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.headers["retry-after"] == "1"
    assert answer.json()["detail"] == "the store is busy: every connection is in use"
    assert took < PROMPT_SECONDS


def test_a_write_while_another_process_holds_sqlite_is_a_prompt_503(
    database_url: str, db: Database
) -> None:
    if not database_url.startswith("sqlite"):
        pytest.skip("SQLite's file lock")
    settings = _settings(database_url, db_queue_seconds=0.3)
    with running(db, settings) as server:
        holder = sqlite3.connect(database_url.removeprefix("sqlite:///"), isolation_level=None)
        try:
            holder.execute("BEGIN IMMEDIATE")
            began = time.perf_counter()
            answer = httpx.post(
                f"{server.base_url}/v1/symbols",
                json={"symbol": "IWM"},
                headers={"Authorization": f"Bearer {server.key}"},
                timeout=30,
            )
            took = time.perf_counter() - began
            reads = httpx.get(f"{server.base_url}/v1/symbols", timeout=30)
        finally:
            holder.rollback()
            holder.close()
        again = httpx.post(
            f"{server.base_url}/v1/symbols",
            json={"symbol": "IWM"},
            headers={"Authorization": f"Bearer {server.key}"},
            timeout=30,
        )
    assert (answer.status_code, answer.headers.get("retry-after")) == (503, "1"), answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert took < PROMPT_SECONDS
    assert reads.status_code == 200, "readers are not held up by a writer"
    assert again.status_code == 201, "the write goes through once the lock is free"


def test_a_sqlite_writer_waits_for_its_write_turn_no_longer_than_it_was_given(
    db: Database,
) -> None:
    if not db.is_sqlite:
        pytest.skip("the write turn is SQLite's")
    with db.write_turn:  # another request's write is under way
        began = time.perf_counter()
        with (
            pytest.raises(StoreBusy, match="other writes are ahead"),
            db.transaction(lock_wait_seconds=0.1) as session,
        ):
            session.execute(text("SELECT 1"))
        assert time.perf_counter() - began < PROMPT_SECONDS
    with db.transaction(lock_wait_seconds=0.1) as session:
        session.execute(text("SELECT 1"))
    with db.engine.connect() as connection:
        # The short wait was this transaction's only: the pool's connections have 30 s.
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30_000
