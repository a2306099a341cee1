"""Import of 40 years of ^GSPC (24,777 sessions): Crosswatch's validated bulk upsert
against a raw sqlite3 ``executemany`` of the same rows, side by side in one process.

    .venv/bin/python benchmarks/ingest.py [--pg postgresql+psycopg://…]

Last line: ``import/raw=R gspc_import_s=T``.
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.db.engine import Database
from app.db.migrate import upgrade
from app.jobs import ingest
from app.market.service import read_csv_file
from tests.support import realdata

GSPC = realdata.csv_path("gspc_daily.csv")
RUNS = 5


def _now() -> datetime:
    return datetime(2026, 8, 24, tzinfo=UTC)


def crosswatch_import(url: str) -> float:
    """Parse + validate the file, then store and detect it in one transaction (the CLI's
    path: ``ingest.import_bars``)."""
    db = Database(url)
    upgrade(db.engine)
    with db.engine.begin() as connection:
        connection.execute(text("DELETE FROM daily_bars"))
        connection.execute(text("DELETE FROM symbols"))
    started = time.perf_counter()
    bars = read_csv_file(GSPC)
    ingest.import_bars(db, "^GSPC", bars, clock=_now, bad_tick_pct=25.0)
    elapsed = time.perf_counter() - started
    db.dispose()
    return elapsed


def raw_sqlite(path: Path) -> float:
    """The floor: csv split + one executemany into an equivalent table, no checks."""
    path.unlink(missing_ok=True)
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute(
        "CREATE TABLE bars (symbol TEXT, session TEXT, close REAL, open REAL, high REAL, "
        "low REAL, volume INTEGER, PRIMARY KEY (symbol, session))"
    )
    started = time.perf_counter()
    with GSPC.open() as handle:
        next(handle)
        rows = []
        for line in handle:
            day, close, open_, high, low, volume = line.rstrip("\n").split(",")
            rows.append(
                (
                    "^GSPC",
                    day,
                    float(close),
                    float(open_) if open_ else None,
                    float(high) if high else None,
                    float(low) if low else None,
                    int(volume) if volume else None,
                )
            )
    with connection:
        connection.executemany("INSERT INTO bars VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
    elapsed = time.perf_counter() - started
    connection.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pg", help="also time a PostgreSQL store (its tables are cleared)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        ours: list[float] = []
        raw: list[float] = []
        for run in range(RUNS):
            ours.append(crosswatch_import(f"sqlite:///{folder}/cw{run}.db"))
            raw.append(raw_sqlite(Path(folder) / f"raw{run}.db"))
        ours_s, raw_s = statistics.median(ours), statistics.median(raw)
        print(f"sqlite  crosswatch import {ours_s * 1000:8.1f} ms  (median of {RUNS})")
        print(f"sqlite  raw executemany   {raw_s * 1000:8.1f} ms")
        if args.pg:
            pg = statistics.median(crosswatch_import(args.pg) for _ in range(RUNS))
            print(f"pg      crosswatch import {pg * 1000:8.1f} ms")
    print(f"import/raw={ours_s / raw_s:.2f} gspc_import_s={ours_s:.3f}")


if __name__ == "__main__":
    main()
