"""`crosswatch import` and `export` as a user runs them: real subprocesses against a real,
migrated store."""

from __future__ import annotations

import csv
import io
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import select

from app.db.engine import Database
from app.jobs import ingest
from app.market import repository
from app.market.csvfile import format_bars
from app.market.service import read_csv_file
from app.signals.models import Event
from app.webhooks.models import Delivery, Subscription
from tests.conftest import FIXED_NOW, ROOT, data_file, fixed_clock, run_cli

ALL_FILES = {
    "^RUT": "rut_daily.csv",
    "^GSPC": "gspc_daily.csv",
    "^IXIC": "ixic_daily.csv",
    "IWM": "iwm_daily.csv",
    "QQQ": "qqq_daily.csv",
    "SPY": "spy_daily.csv",
}


def _values(text: str) -> list[tuple[str, ...]]:
    """Rows as numbers, so ``17.50`` and ``17.5`` compare equal."""
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["date", "close", "open", "high", "low", "volume"]
    return [(row[0], *(repr(float(cell)) if cell else "" for cell in row[1:])) for row in rows[1:]]


@pytest.mark.parametrize("symbol", sorted(ALL_FILES))
def test_import_then_export_round_trips_every_real_file(database_url: str, symbol: str) -> None:
    path = data_file(ALL_FILES[symbol])
    imported = run_cli("import", symbol, str(path), database_url=database_url)
    assert imported.returncode == 0, imported.stderr
    rows = len(path.read_text().splitlines()) - 1
    assert f"imported {symbol}: {rows} sessions ({rows} added" in imported.stdout
    exported = run_cli("export", symbol, database_url=database_url)
    assert exported.returncode == 0, exported.stderr
    assert _values(exported.stdout) == _values(path.read_text())


BAD_FILES = {
    "empty": ("", "the file is empty"),
    "no_header": ("2024-01-02,10\n", "line 1: missing header column 'date'"),
    "bad_date": ("date,close\n2024-01-02,10\n2024-02-30,11\n", "line 3: date '2024-02-30'"),
    "non_numeric": ("date,close\n2024-01-02,ten\n", "line 2: close 'ten' is not a number"),
    "nan": ("date,close\n2024-01-02,10\n2024-01-03,NaN\n", "line 3: close is NaN"),
    "zero": ("date,close\n2024-01-02,0\n", "line 2: close 0 is not positive"),
    "negative": ("date,close\n2024-01-02,-1\n", "line 2: close -1 is not positive"),
    "duplicate": ("date,close\n2024-01-02,1\n2024-01-02,2\n", "line 3: duplicate date"),
    "unordered": ("date,close\n2024-01-03,1\n2024-01-02,2\n", "line 3: out-of-order date"),
    # What no provider may give is no more welcome from a file (issue 12 item 6).
    "saturday": (
        "date,close\n2024-12-27,10\n2024-12-28,11\n",
        "2024-12-28 is not an XNYS session (weekend or holiday)",
    ),
    "christmas": (
        "date,close\n2024-12-24,10\n2024-12-25,11\n2024-12-26,12\n",
        "2024-12-25 is not an XNYS session (weekend or holiday)",
    ),
    "year_one": (
        "date,close\n0001-01-01,10\n2024-12-26,12\n",
        "0001-01-01 is before the first NYSE session (1792-05-17)",
    ),
    "year_9999": (
        "date,close\n2024-12-26,12\n9999-12-31,10\n",
        "session 9999-12-31 is in the future",
    ),
    "several": (
        "date,close\n2024-12-25,10\n2024-12-28,11\n",
        "2024-12-25 is not an XNYS session (weekend or holiday) (and 1 more row refused)",
    ),
    "ten_megabyte_field": (
        "date,close\n2024-01-02," + "9" * 10_000_000 + "\n",
        "line 2: unreadable CSV row: field larger than field limit (131072)",
    ),
    "long_date": (
        "date,close\n" + "2" * 100_000 + ",1\n",
        "line 2: date '" + "2" * 40 + "'... (100,000 characters) is not YYYY-MM-DD",
    ),
}


def _snapshot(db: Database, symbol: str) -> list[tuple[object, ...]]:
    with db.transaction(write=False) as session:
        return [
            (b.session, b.close, b.open, b.high, b.low, b.volume, b.source, b.fetched_at)
            for b in repository.read_bars(session, symbol)
        ]


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_file_is_refused_whole_and_store_is_unchanged(
    database_url: str, db: Database, tmp_path: Path, case: str
) -> None:
    bars = read_csv_file(data_file("rut_daily.csv"))
    with db.transaction() as session:
        write = repository.BarWrite("^RUT", bars, "import", "^RUT")
        ingest.store_many(session, [write], clock=fixed_clock)
    before = _snapshot(db, "^RUT")
    content, message = BAD_FILES[case]
    bad = tmp_path / f"{case}.csv"
    bad.write_text(content)
    for symbol in ("^RUT", "NEW"):
        result = run_cli("import", symbol, str(bad), database_url=database_url)
        assert result.returncode == 1
        store, error = result.stderr.strip().splitlines()
        assert store == f"store: {database_url}"
        assert error.startswith(f"error: {message}"), result.stderr
        assert len(error) < 300
    assert _snapshot(db, "^RUT") == before
    assert len(before) == len(bars)
    assert _snapshot(db, "NEW") == []


def test_import_that_revises_closes_writes_the_retraction_and_its_delivery(
    database_url: str, db: Database, tmp_path: Path
) -> None:
    path = data_file("rut_daily.csv")
    first = run_cli("import", "^RUT", str(path), database_url=database_url)
    assert first.returncode == 0, first.stderr
    with db.transaction(write=False) as session:
        crosses = list(
            session.scalars(
                select(Event).where(Event.symbol == "^RUT", Event.type == "golden_cross")
            )
        )
    assert crosses, "an import records the events its history implies"
    assert not any(event.live for event in crosses), "an imported history is never live"
    cross = max(crosses, key=lambda event: event.session)
    with db.transaction() as session:
        session.add(
            Subscription(
                url="https://hooks.example.test/x",
                event_types=["retracted"],
                enabled=True,
                secret="whsec_" + "A" * 32,
                created_at=FIXED_NOW,
                updated_at=FIXED_NOW,
            )
        )

    # Closes 10% lower from 30 sessions before the cross to 5 after: the fast average
    # no longer rises above the slow one that day, so the cross did not happen.
    bars = read_csv_file(path)
    at = next(i for i, bar in enumerate(bars) if bar.session == cross.session)
    revised = tmp_path / "revised.csv"
    changed = [
        replace(bar, close=round(bar.close * 0.9, 2)) if i <= at + 5 else bar
        for i, bar in enumerate(bars[at - 30 :], start=at - 30)
    ]
    revised.write_text("".join(format_bars(changed)))
    second = run_cli("import", "^RUT", str(revised), database_url=database_url)
    assert second.returncode == 0, second.stderr
    assert "36 revised" in second.stdout
    with db.transaction(write=False) as session:
        retractions = list(
            session.scalars(select(Event).where(Event.symbol == "^RUT", Event.type == "retracted"))
        )
        by_original = {event.data["original_id"]: event for event in retractions}
        assert cross.id in by_original
        retraction = by_original[cross.id]
        assert retraction.live
        assert session.get(Event, cross.id).retracted_by == retraction.id  # type: ignore[union-attr]
        deliveries = list(
            session.scalars(select(Delivery.event_id).where(Delivery.event_id == retraction.id))
        )
    assert deliveries == [retraction.id], "the import enqueued the retraction like a poll"


def test_export_of_an_unknown_symbol_fails_cleanly(database_url: str) -> None:
    missing = run_cli("export", "NEW", database_url=database_url)
    assert missing.returncode == 1
    assert missing.stderr == f"store: {database_url}\nerror: no stored bars for symbol 'NEW'\n"


def _synthetic_csv(path: Path) -> int:
    """Weekdays from 1800 (sessions, before the calendar's holiday tables), then the
    real S&P 500 sessions to 2024, with a sawtooth close: many rows that still pass
    the import's checks."""
    import datetime as dt

    real = [bar.session for bar in read_csv_file(data_file("gspc_daily.csv"))]
    start = dt.date(1800, 1, 1)
    days = [
        day
        for offset in range((real[0] - start).days)
        if (day := start + dt.timedelta(days=offset)).weekday() < 5
    ]
    days += [day for day in real if day.year <= 2024]
    with path.open("w") as handle:
        handle.write("date,close\n")
        handle.writelines(f"{day},{100 + (i % 97) * 0.5}\n" for i, day in enumerate(days))
    return len(days)


def test_sigkill_during_import_leaves_all_or_nothing(database_url: str, tmp_path: Path) -> None:
    big = tmp_path / "big.csv"
    rows = _synthetic_csv(big)
    assert rows > 55_000
    env = {**os.environ, "CROSSWATCH_DATABASE_URL": database_url, "CROSSWATCH_SEED": "false"}
    db = Database(database_url)
    killed_while_running = 0
    try:
        for delay in (0.4, 0.8, 1.2, 1.6, 2.0):
            process = subprocess.Popen(
                [sys.executable, "-m", "app", "import", "BIG", str(big)],
                env=env,
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            deadline = time.monotonic() + delay
            while time.monotonic() < deadline and process.poll() is None:
                time.sleep(0.02)
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
                killed_while_running += 1
            process.wait(timeout=60)
            with db.transaction(write=False) as session:
                count = repository.bar_count(session, "BIG")
            assert count in (0, rows)
            if count == rows:
                break
    finally:
        db.dispose()
    assert killed_while_running >= 1


def test_a_closed_pipe_ends_export_quietly_with_status_0(database_url: str) -> None:
    imported = run_cli("import", "^RUT", str(data_file("rut_daily.csv")), database_url=database_url)
    assert imported.returncode == 0, imported.stderr
    env = {**os.environ, "CROSSWATCH_DATABASE_URL": database_url, "CROSSWATCH_SEED": "false"}
    # ``crosswatch export ^RUT | head -1``: 9,811 rows are far more than a pipe buffers.
    export = subprocess.Popen(
        [sys.executable, "-m", "app", "export", "^RUT"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert export.stdout is not None and export.stderr is not None
    assert export.stdout.readline() == b"date,close,open,high,low,volume\n"
    export.stdout.close()
    assert export.wait(timeout=60) == 0
    assert export.stderr.read().decode() == f"store: {database_url}\n"


def test_counts_agree_with_their_nouns(database_url: str, tmp_path: Path) -> None:
    one = tmp_path / "one.csv"
    one.write_text("date,close\n2024-01-02,10\n")
    result = run_cli("import", "NEW", str(one), database_url=database_url)
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        "imported NEW: 1 session (1 added, 0 revised, 0 unchanged, 0 events)\n"
    )


def test_export_writes_whole_numbers_without_a_decimal_point(
    database_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "prices.csv"
    path.write_text("date,close,open,high,low,volume\n2024-01-02,10,10.0,12.50,9.25,1000\n")
    assert run_cli("import", "NEW", str(path), database_url=database_url).returncode == 0
    exported = run_cli("export", "NEW", database_url=database_url)
    assert exported.stdout.splitlines()[1] == "2024-01-02,10,10,12.5,9.25,1000"
