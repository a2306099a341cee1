"""The scheduler: when it fires, and that only one leads across processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from datetime import time as clock_time

import pytest
from sqlalchemy import select

from app.db.engine import Database
from app.jobs.scheduler import SessionCloseTrigger
from app.market.calendar import close_delay
from app.market.models import PollRun
from app.market.service import read_csv_file
from tests.conftest import PG_URL, ROOT, data_file
from tests.support.wait import wait_until
from tests.support.yahoo import YahooFake, at_new_york


def test_poll_time_is_a_delay_after_each_close_including_early_closes() -> None:
    trigger = SessionCloseTrigger(close_delay(clock_time(17, 15)))
    assert close_delay(clock_time(17, 15)) == timedelta(hours=1, minutes=15)
    # Wednesday before Thanksgiving 2025: a normal close.
    assert trigger.get_next_fire_time(None, at_new_york(date(2025, 11, 26), 12)) == at_new_york(
        date(2025, 11, 26), 17, 15
    )
    # Thanksgiving is not a session; Black Friday closes at 13:00, so 14:15.
    assert trigger.get_next_fire_time(None, at_new_york(date(2025, 11, 26), 18)) == at_new_york(
        date(2025, 11, 28), 14, 15
    )
    # After Friday's poll, the next is Monday's.
    assert trigger.get_next_fire_time(None, at_new_york(date(2025, 11, 28), 15)) == at_new_york(
        date(2025, 12, 1), 17, 15
    )
    with pytest.raises(ValueError, match="at or after the 16:00 close"):
        close_delay(clock_time(15, 0))


class Output:
    """Collects a process's output lines in a thread, so tests can wait for a line."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        assert process.stdout is not None
        stream = process.stdout
        self.thread = threading.Thread(
            target=lambda: self.lines.extend(iter(stream.readline, "")), daemon=True
        )
        self.thread.start()

    def has(self, text: str) -> bool:
        return any(text in line for line in list(self.lines))

    def tail(self) -> str:
        return "".join(self.lines[-40:])


@contextmanager
def _process(args: list[str], env: dict[str, str]) -> Iterator[subprocess.Popen[str]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "app", *args],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _runs(db: Database) -> list[PollRun]:
    with db.transaction(write=False) as session:
        return list(session.scalars(select(PollRun).order_by(PollRun.id)))


@pytest.mark.skipif(PG_URL is None, reason="leadership across processes needs PostgreSQL")
def test_two_schedulers_on_postgresql_never_poll_at_once(database_url: str, db: Database) -> None:
    bars = read_csv_file(data_file("rut_daily.csv"))[-400:]
    fake = YahooFake(series={"^RUT": bars})
    with fake.serve() as base_url:
        env = {
            **os.environ,
            "CROSSWATCH_DATABASE_URL": database_url,
            "CROSSWATCH_SEED": "false",
            "CROSSWATCH_SYMBOLS": "^RUT",
            "CROSSWATCH_YAHOO_BASE_URL": base_url,
        }
        with _process(["serve", "--port", "0", "--no-worker"], env) as first:
            leader = Output(first)
            wait_until(
                lambda: [r.status for r in _runs(db)] == ["ok"],
                60,
                "the first poll",
                every=0.1,
                detail=leader.tail,
            )
            with _process(["scheduler"], env) as second:
                output = Output(second)
                wait_until(
                    lambda: output.has("another scheduler leads"), 60, "it to wait", every=0.1
                )
                assert len(_runs(db)) == 1, "a second scheduler polled while another led"
                first.send_signal(signal.SIGTERM)
                first.wait(timeout=30)
                wait_until(
                    lambda: len(_runs(db)) == 2, 60, "the successor's start-up poll", every=0.1
                )
                wait_until(
                    lambda: _runs(db)[-1].finished_at is not None, 60, "it to finish", every=0.1
                )
                assert second.poll() is None
    runs = _runs(db)
    assert [r.status for r in runs] == ["ok", "ok"]
    first_run, second_run = runs
    assert first_run.finished_at is not None
    assert second_run.started_at >= first_run.finished_at
