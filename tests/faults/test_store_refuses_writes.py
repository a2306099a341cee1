"""The store refuses writes during a poll (disk full, read-only): the poll fails with a
clear one-line reason and the stored bars, events and outbox are exactly as before.

Disk full is SQLite's own ``SQLITE_FULL``, raised in a real ``crosswatch poll`` process
whose connections are capped with ``PRAGMA max_page_count`` at the store's current
size: the error a full file system gives, without mounting one (CI runs as root, where
file permissions would not stop a write either). Read-only is the store opened
read-only: SQLite's ``mode=ro`` URI, PostgreSQL's ``default_transaction_read_only``.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError

from app.db.engine import Database
from app.errors import Unavailable
from app.market.models import PollRun, Symbol
from app.market.service import read_csv_file
from tests.conftest import ROOT, data_file, run_cli
from tests.faults.support import crosswatch_env, dump
from tests.support.yahoo import YahooFake
from tests.webhooks.conftest import MovableClock, subscribe

#: ^RUT sessions stored before the poll, and the newer ones the provider then offers.
STORED, OFFERED = 600, 60

DISK_FULL = """
import sys
from sqlalchemy import event
from sqlalchemy.engine import Engine

@event.listens_for(Engine, "connect")
def _disk_full(dbapi_connection, _record):
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA max_page_count = 1")  # clamped to the current size
    cursor.close()

sys.argv = ["crosswatch", *sys.argv[1:]]
from app.cli import main
main()
"""


@pytest.fixture
def yahoo_url(database_url: str, db: Database, tmp_path: Path) -> Iterator[str]:
    """A store holding older ^RUT history and a subscription (so new events would write
    outbox rows), and a Yahoo double offering the sessions after that history."""
    bars = read_csv_file(data_file("rut_daily.csv"))[-(STORED + OFFERED) :]
    history = tmp_path / "rut.csv"
    history.write_text(
        "date,close\n" + "".join(f"{b.session},{b.close!r}\n" for b in bars[:STORED])
    )
    imported = run_cli("import", "^RUT", str(history), database_url=database_url)
    assert imported.returncode == 0, imported.stderr
    subscribe(db, "http://127.0.0.1:9/hook", now=MovableClock()())
    with YahooFake(series={"^RUT": bars}).serve() as url:
        yield url


def _runs(db: Database) -> list[PollRun]:
    with db.transaction(write=False) as session:
        return list(session.scalars(select(PollRun).order_by(PollRun.id)))


def _poll(
    database_url: str, yahoo_url: str, *, prelude: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = crosswatch_env(database_url, yahoo_base_url=yahoo_url, provider_retries="0")
    command = (
        [sys.executable, "-c", prelude, "poll", "^RUT"]
        if prelude
        else [sys.executable, "-m", "app", "poll", "^RUT"]
    )
    return subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)


def _then_a_working_poll_adds_the_offered_sessions(database_url: str, yahoo_url: str) -> None:
    """The control: the refused poll changed nothing although there was data to add."""
    done = _poll(database_url, yahoo_url)
    assert done.returncode == 0, done.stderr
    assert f"^RUT: {OFFERED} added" in done.stdout


def test_disk_full_during_a_poll_changes_nothing_and_says_why(
    db: Database, database_url: str, yahoo_url: str
) -> None:
    if not db.is_sqlite:
        pytest.skip("a full disk is simulated with SQLite's page cap")
    with db.engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    before = dump(db)

    done = _poll(database_url, yahoo_url, prelude=DISK_FULL)

    assert done.returncode == 1
    assert "^RUT: failed: store failed" in done.stderr
    assert "database or disk is full" in done.stderr
    assert dump(db) == before, "the failed poll left rows behind"
    runs = _runs(db)
    assert [run.status for run in runs] == ["failed"], "the failure is not on record"
    error = runs[0].error or ""
    assert "database or disk is full" in error
    assert "[SQL:" not in error and len(error) < 200, f"the recorded reason is unreadable: {error}"
    _then_a_working_poll_adds_the_offered_sessions(database_url, yahoo_url)


def _read_only(database_url: str) -> str:
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        return f"sqlite:///file:{url.database}?mode=ro&uri=true"
    read_only = url.update_query_dict({"options": "-c default_transaction_read_only=on"})
    return read_only.render_as_string(hide_password=False)


def test_read_only_store_fails_the_poll_with_one_line_and_changes_nothing(
    db: Database, database_url: str, yahoo_url: str
) -> None:
    before = dump(db)

    done = _poll(_read_only(database_url), yahoo_url)

    assert done.returncode == 1
    assert "Traceback" not in done.stderr, done.stderr
    assert done.stderr.splitlines()[-1].startswith("error: the store failed: "), done.stderr
    assert "read-only" in done.stderr or "readonly" in done.stderr
    assert dump(db) == before
    assert _runs(db) == []
    _then_a_working_poll_adds_the_offered_sessions(database_url, yahoo_url)


def test_a_refusing_store_raises_unavailable_with_the_drivers_one_line_reason(
    db: Database, database_url: str
) -> None:
    """Regression: a refused write used to surface as a SQLAlchemy error whose text holds
    the SQL and every bound parameter (a traceback from the CLI, kilobytes in the poll
    record). Ordinary statement errors are not translated."""
    now = MovableClock()()
    read_only = Database(_read_only(database_url))
    try:
        with pytest.raises(Unavailable) as refused, read_only.transaction() as session:
            session.add(Symbol(symbol="^RUT", active=True, created_at=now))
            session.flush()
    finally:
        read_only.dispose()
    assert refused.value.status == 503
    assert refused.value.detail.startswith("the store failed: ")
    assert "\n" not in refused.value.detail and "[SQL:" not in refused.value.detail

    with db.transaction() as session:
        session.add(Symbol(symbol="^RUT", active=True, created_at=now))
    with pytest.raises(IntegrityError), db.transaction() as session:
        session.add(Symbol(symbol="^RUT", active=True, created_at=now))
        session.flush()
