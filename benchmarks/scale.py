"""Scale benchmark: 5,000 synthetic symbols x 10 years, on SQLite and PostgreSQL.

For each store it times, through the real ingest code (``app.jobs.ingest.store_many``,
the function the poller stores its batches with):

- **backfill**: every symbol's 2,520 sessions bulk-upserted in batches, with detection
  of all the historical events (the full path, which also seeds the daily path's
  carried state);
- **daily**: one new session for every symbol, in the poller's batches
  (``BATCH_SYMBOLS`` per transaction), events and their outbox rows written; the state
  is the one the backfill carried, as in the scheduler's long-running process;
- **daily, cold** (``--cold``): the same cycle in a process that carries no state (the
  first poll after a restart takes the full path for every symbol).

Then, on the SQLite store, it starts ``crosswatch serve --no-scheduler --no-worker``
and measures ``GET /v1/signals`` for the 5,000 symbols (first request: computes;
later requests: served from memory) and the server's resident memory (VmRSS from
/proc/PID/status).

Usage (from the repository root)::

    createdb -h 127.0.0.1 -U postgres crosswatch_scale
    .venv/bin/python benchmarks/scale.py \\
        --pg postgresql+psycopg://postgres@127.0.0.1:5432/crosswatch_scale

The PostgreSQL database is emptied first (its tables are dropped and migrated again):
give it a database of its own. Without ``--pg`` (or ``CROSSWATCH_TEST_DATABASE_URL``)
only SQLite runs. The last line is
``daily/backfill=R sqlite_daily_s=... pg_daily_s=... signals_5000_ms=... rss_mb=...``
(R: the larger of the two stores' ratios).
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import httpx
import numpy as np
from sqlalchemy import func, select, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.db.engine import Database  # noqa: E402
from app.db.migrate import upgrade  # noqa: E402
from app.jobs import ingest  # noqa: E402
from app.jobs.poll import BATCH_SYMBOLS  # noqa: E402
from app.market import calendar, repository  # noqa: E402
from app.market.bars import Bar  # noqa: E402
from app.metadata import metadata  # noqa: E402
from app.signals.events import CarriedStates  # noqa: E402
from app.signals.models import Event  # noqa: E402

NOW = datetime(2026, 8, 24, 23, 0, tzinfo=UTC)
BACKFILL_BATCH = 250


def universe(symbols: int, sessions: int, seed: int) -> tuple[list[str], list[date], np.ndarray]:
    """Seeded geometric random walks on the XNYS sessions ending 2026-08-24 (the last
    one is the daily cycle's new session), closes rounded to cents."""
    days = calendar.sessions_between(date(2010, 1, 4), date(2026, 8, 24))[-(sessions + 1) :]
    rng = np.random.default_rng(seed)
    returns = rng.normal(0.0003, 0.013, size=(symbols, sessions + 1))
    closes = np.round(100.0 * np.exp(np.cumsum(returns, axis=1)), 2)
    names = [f"SYN{i:05d}" for i in range(symbols)]
    return names, days, closes


@dataclass
class Figures:
    backfill_s: float
    backfill_events: int
    daily_s: float
    daily_events: int
    cold_s: float | None


def _clock() -> datetime:
    return NOW


def _store(
    db: Database,
    names: list[str],
    bars: list[list[Bar]],
    batch: int,
    carried: CarriedStates,
) -> int:
    events = 0
    for start in range(0, len(names), batch):
        writes = [
            repository.BarWrite(name, bars[i], "csv", name)
            for i, name in enumerate(names[start : start + batch], start)
        ]
        with db.transaction() as session:
            stored = ingest.store_many(session, writes, clock=_clock, carried=carried)
        events += sum(len(s.events) for s in stored.values())
    return events


def run_store(
    label: str, url: str, names: list[str], days: list[date], closes: np.ndarray, cold: bool
) -> Figures:
    db = Database(url)
    upgrade(db.engine)
    carried = CarriedStates()
    history_days, new_day = days[:-1], days[-1]
    print(f"== {label}: {len(names)} symbols x {len(history_days)} sessions", flush=True)
    started = time.perf_counter()
    backfill_events = 0
    for begin in range(0, len(names), BACKFILL_BATCH):
        chunk = names[begin : begin + BACKFILL_BATCH]
        bars = [
            [Bar(d, c) for d, c in zip(history_days, closes[i, :-1].tolist(), strict=True)]
            for i in range(begin, begin + len(chunk))
        ]
        backfill_events += _store(db, chunk, bars, BACKFILL_BATCH, carried)
    backfill = time.perf_counter() - started
    print(f"  backfill            {backfill:9.2f} s  {backfill_events} events", flush=True)

    today = [[Bar(new_day, float(closes[i, -1]))] for i in range(len(names))]
    started = time.perf_counter()
    daily_events = _store(db, names, today, BATCH_SYMBOLS, carried)
    daily = time.perf_counter() - started
    with db.transaction(write=False) as session:
        live = session.scalar(select(func.count()).select_from(Event).where(Event.live))
    print(
        f"  daily (1 session)   {daily:9.2f} s  {daily_events} events ({live} live)"
        f"  = {daily / backfill:.4f} of the backfill",
        flush=True,
    )
    cold_s = None
    if cold:
        # The same cycle with no carried state: take the new session off and add it again.
        with db.transaction() as session:
            session.execute(text("DELETE FROM events WHERE live"))
            session.execute(text("DELETE FROM daily_bars WHERE session = :day"), {"day": new_day})
        started = time.perf_counter()
        _store(db, names, today, BATCH_SYMBOLS, CarriedStates())
        cold_s = time.perf_counter() - started
        print(f"  daily, cold         {cold_s:9.2f} s  (no carried state: full path)")
    db.dispose()
    return Figures(backfill, backfill_events, daily, daily_events, cold_s)


def reset_postgres(url: str) -> None:
    db = Database(url)
    with db.engine.begin() as connection:
        metadata.drop_all(connection)
        connection.execute(text("DROP TABLE IF EXISTS alembic_version"))
    db.dispose()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _rss_mb(pid: int) -> tuple[float, float]:
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def serve_figures(url: str, symbols: int) -> tuple[float, float, float, float, float]:
    """First and repeated ``GET /v1/signals`` latency (ms), bytes, RSS and peak RSS (MB)."""
    port = _free_port()
    env = {
        **os.environ,
        "CROSSWATCH_DATABASE_URL": url,
        "CROSSWATCH_SEED": "false",
        "CROSSWATCH_LOG_LEVEL": "WARNING",
    }
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "app",
            "serve",
            "--no-scheduler",
            "--no-worker",
            "--port",
            str(port),
        ],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError("crosswatch serve did not start")
            time.sleep(0.1)
        idle, _ = _rss_mb(server.pid)
        with httpx.Client(base_url=base, timeout=300) as client:
            started = time.perf_counter()
            first = client.get("/v1/signals")
            first_ms = (time.perf_counter() - started) * 1000
            first.raise_for_status()
            count = len(first.json()["signals"])
            if count != symbols:
                raise RuntimeError(f"/v1/signals returned {count} signals, not {symbols}")
            later = []
            for _ in range(20):
                started = time.perf_counter()
                response = client.get("/v1/signals")
                later.append((time.perf_counter() - started) * 1000)
                if response.content != first.content:
                    raise RuntimeError("a repeated /v1/signals differed with no data change")
        rss, peak = _rss_mb(server.pid)
        print(f"== serve (SQLite store): idle RSS {idle:.0f} MB")
        print(f"  GET /v1/signals first   {first_ms:9.1f} ms  ({len(first.content) / 1e6:.1f} MB)")
        print(f"  GET /v1/signals again   {statistics.median(later):9.1f} ms  (median of 20)")
        print(f"  RSS after               {rss:9.0f} MB  (peak {peak:.0f} MB)")
        return first_ms, statistics.median(later), len(first.content), rss, peak
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--symbols", type=int, default=5000)
    parser.add_argument("--sessions", type=int, default=2520)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--pg", default=os.environ.get("CROSSWATCH_TEST_DATABASE_URL"))
    parser.add_argument("--cold", action="store_true", help="also time a cold daily cycle")
    args = parser.parse_args()
    names, days, closes = universe(args.symbols, args.sessions, args.seed)
    print(f"universe: {len(names)} symbols, {len(days) - 1} sessions {days[0]} .. {days[-2]}")
    with tempfile.TemporaryDirectory() as folder:
        sqlite_url = f"sqlite:///{folder}/scale.db"
        sqlite = run_store("SQLite", sqlite_url, names, days, closes, args.cold)
        pg = None
        if args.pg:
            reset_postgres(args.pg)
            pg = run_store("PostgreSQL", args.pg, names, days, closes, args.cold)
        _, again_ms, _, rss, _ = serve_figures(sqlite_url, args.symbols)
    ratios = [sqlite.daily_s / sqlite.backfill_s]
    if pg is not None:
        ratios.append(pg.daily_s / pg.backfill_s)
    pg_daily = f"{pg.daily_s:.2f}" if pg is not None else "n/a"
    print(
        f"daily/backfill={max(ratios):.4f} sqlite_daily_s={sqlite.daily_s:.2f} "
        f"pg_daily_s={pg_daily} signals_5000_ms={again_ms:.1f} rss_mb={rss:.0f}"
    )


if __name__ == "__main__":
    main()
