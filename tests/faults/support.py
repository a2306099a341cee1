"""Real processes for the fault tests: ``crosswatch`` subprocesses whose output is
collected in a thread, a ``serve`` that reports the port it bound, deadlines instead
of sleeps, and a dump of the tables a failed write must leave untouched."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import text

from app.db.engine import Database
from tests.conftest import ROOT

#: Tables whose rows a failed poll must leave exactly as they were.
DATA_TABLES = ("symbols", "daily_bars", "events", "deliveries")


class Process:
    """A subprocess with stdout and stderr merged and read line by line in a thread."""

    def __init__(self, args: Sequence[str], env: dict[str, str]) -> None:
        self.popen = subprocess.Popen(
            list(args),
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in iter(self.popen.stdout.readline, ""):
            with self._changed:
                self.lines.append(line)
                self._changed.notify_all()

    @property
    def pid(self) -> int:
        return self.popen.pid

    def output(self) -> str:
        with self._changed:
            return "".join(self.lines)

    def wait_for_line(self, pattern: str, timeout: float) -> re.Match[str]:
        """The first output line matching ``pattern``; fails at the deadline."""
        compiled = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for line in self.lines:
                    found = compiled.search(line)
                    if found:
                        return found
                left = deadline - time.monotonic()
                if left <= 0 or (self.popen.poll() is not None and not self._reader.is_alive()):
                    tail = "".join(self.lines[-40:])
                    raise AssertionError(f"no line matching {pattern!r}:\n{tail}")
                self._changed.wait(min(left, 0.5))

    def wait(self, timeout: float) -> int:
        code = self.popen.wait(timeout)
        self._reader.join(5)
        return code

    def stop(self, timeout: float = 20) -> int | None:
        """SIGTERM, then SIGKILL past ``timeout``; returns the exit code."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        self._reader.join(5)
        return self.popen.returncode


def crosswatch_env(database_url: str, **settings: str) -> dict[str, str]:
    """The environment of a ``crosswatch`` subprocess: this store, no seeding."""
    env = {**os.environ, "CROSSWATCH_DATABASE_URL": database_url, "CROSSWATCH_SEED": "false"}
    env.update({f"CROSSWATCH_{name.upper()}": value for name, value in settings.items()})
    return env


def crosswatch(*args: str) -> list[str]:
    return [sys.executable, "-m", "app", *args]


@contextmanager
def running(args: Sequence[str], env: dict[str, str]) -> Iterator[Process]:
    process = Process(args, env)
    try:
        yield process
    finally:
        process.stop()


@contextmanager
def serving(env: dict[str, str], *options: str) -> Iterator[tuple[Process, str]]:
    """``crosswatch serve --port 0 OPTIONS``; yields the process and its base URL once
    it listens."""
    with running(crosswatch("serve", "--port", "0", *options), env) as process:
        found = process.wait_for_line(r"Uvicorn running on (http://127\.0\.0\.1:\d+)", 60)
        yield process, found.group(1)


def dump(db: Database, tables: Sequence[str] = DATA_TABLES) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of ``tables``, in a stable order."""
    with db.engine.connect() as connection:
        return {
            table: sorted(
                (tuple(row) for row in connection.execute(text(f"SELECT * FROM {table}"))),
                key=repr,
            )
            for table in tables
        }
