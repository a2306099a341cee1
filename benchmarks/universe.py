"""Universe benchmark: thousands of symbols as a new user would run them (issue 11).

A folder of CSV files (``--symbols`` synthetic geometric random walks, ``--sessions``
XNYS sessions each, ending two sessions before the last closed one, with volumes) is
served by the ``csv`` provider to a fresh SQLite store, and the script times:

- **raw**: a plain ``sqlite3`` ``executemany`` of the same rows (every column the poll
  writes) into a migrated store of its own, one transaction: the floor;
- **backfill**: ``crosswatch poll`` of every symbol (a process of its own), from process
  start to exit; ``backfill/raw`` is the ratio of the two;
- **serve**: ``crosswatch serve --no-scheduler --no-worker`` from process start until the
  first ``GET /v1/signals`` body (the request is retried while the port is closed);
  then the p50 of 20 ``GET /v1/scan`` and ``GET /v1/screen``, one ``GET /v1/breadth``
  over all sessions, and the server's peak RSS (VmHWM);
- **daily**: the poller a running scheduler builds (``app.jobs.runtime.poller``, one
  process, state carried between polls) polls once for the next session (a cold
  process: the full path, which seeds the carried state), then the CSV files gain one
  more session and it polls again: that poll, brief included, is ``daily_poll_s``. For
  the daily polls each file holds only its newest sessions, like a vendor's daily drop.

Usage (from the repository root; the full run takes several minutes)::

    .venv/bin/python benchmarks/universe.py                      # 5,000 x 2,520
    .venv/bin/python benchmarks/universe.py --symbols 500        # a quick iteration

The last line is ``universe: symbols=N backfill/raw=R start_to_signals_s=N
scan_p50_ms=N screen_p50_ms=N breadth_ms=N daily_poll_s=N peak_rss_mb=N`` (``n/a``
for a route this build does not serve).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.clock import system_clock  # noqa: E402
from app.db.engine import Database  # noqa: E402
from app.db.migrate import upgrade  # noqa: E402
from app.jobs.runtime import SerialPolls, poller  # noqa: E402
from app.market import calendar  # noqa: E402
from app.settings import Settings  # noqa: E402

# Rows of each CSV file in the daily polls: more than the poll's overlap (5 sessions).
DAILY_FILE_ROWS = 10


def sessions_for(count: int) -> list[date]:
    """The ``count`` newest closed XNYS sessions at the time of the run."""
    last = calendar.last_closed_session(datetime.now(UTC))
    start = last - timedelta(days=count * 7 // 4 + 30)
    days = calendar.sessions_between(start, last)
    return days[-count:]


def universe(
    symbols: int, sessions: int, seed: int
) -> tuple[list[str], list[date], np.ndarray, np.ndarray]:
    """Names, sessions, closes in cents and volumes: ``sessions + 2`` columns, the last
    two for the daily polls."""
    days = sessions_for(sessions + 2)
    rng = np.random.default_rng(seed)
    returns = rng.normal(0.0003, 0.013, size=(symbols, len(days)))
    closes = np.round(100.0 * np.exp(np.cumsum(returns, axis=1)), 2)
    volumes = rng.integers(10_000, 5_000_000, size=(symbols, len(days)))
    names = [f"SYN{i:05d}" for i in range(symbols)]
    return names, days, closes, volumes


def write_csvs(
    folder: Path,
    names: list[str],
    days: list[date],
    closes: np.ndarray,
    volumes: np.ndarray,
    columns: slice,
) -> None:
    iso = [day.isoformat() for day in days[columns]]
    for row, name in enumerate(names):
        lines = [
            f"{d},{c!r},{v}"
            for d, c, v in zip(
                iso, closes[row, columns].tolist(), volumes[row, columns].tolist(), strict=True
            )
        ]
        (folder / f"{name}.csv").write_text("date,close,volume\n" + "\n".join(lines) + "\n")


def raw_insert(
    path: Path, names: list[str], days: list[date], closes: np.ndarray, vols: np.ndarray
) -> float:
    """Seconds for one ``sqlite3`` executemany of every bar row (all the columns the
    poll writes) into a freshly migrated store, in one transaction."""
    db = Database(f"sqlite:///{path}")
    upgrade(db.engine)
    db.dispose()
    fetched = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    iso = [day.isoformat() for day in days]
    connection = sqlite3.connect(path)
    try:
        started = time.perf_counter()
        connection.executemany(
            "INSERT INTO symbols (symbol, created_at, active, data_version) VALUES (?, ?, 1, 1)",
            [(name, fetched) for name in names],
        )
        for row, name in enumerate(names):
            connection.executemany(
                "INSERT INTO daily_bars (symbol, session, close, open, high, low, volume, "
                "source, instrument, fetched_at) VALUES (?, ?, ?, NULL, NULL, NULL, ?, ?, ?, ?)",
                [
                    (name, d, c, v, "csv", name, fetched)
                    for d, c, v in zip(iso, closes[row].tolist(), vols[row].tolist(), strict=True)
                ],
            )
        connection.commit()
        return time.perf_counter() - started
    finally:
        connection.close()


def _env(url: str, folder: Path, names: list[str]) -> dict[str, str]:
    return {
        **os.environ,
        "CROSSWATCH_DATABASE_URL": url,
        "CROSSWATCH_PROVIDERS": "csv",
        "CROSSWATCH_CSV_DIR": str(folder),
        "CROSSWATCH_SYMBOLS": ",".join(names),
        "CROSSWATCH_SEED": "false",
        "CROSSWATCH_LOG_LEVEL": "WARNING",
    }


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")


def backfill(env: dict[str, str]) -> tuple[float, float]:
    """Seconds of ``crosswatch poll`` (start to exit) and its peak RSS in MB."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "app", "poll"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"crosswatch poll failed: {done.stderr[-2000:]}")
    import resource

    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return seconds, peak


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _p50_ms(client: httpx.Client, path: str, times: int) -> float | None:
    """Median latency of ``times`` GETs of ``path``; None if the route is not served."""
    samples = []
    for _ in range(times):
        started = time.perf_counter()
        response = client.get(path)
        samples.append((time.perf_counter() - started) * 1000)
        if response.status_code == 404 and not samples[1:]:
            return None  # the route does not exist in this build
        response.raise_for_status()
    return statistics.median(samples)


def serve(env: dict[str, str], symbols: int) -> dict[str, float | None]:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    started = time.perf_counter()
    server = subprocess.Popen(
        [sys.executable, "-m", "app", "serve", "--no-scheduler", "--no-worker", f"--port={port}"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        with httpx.Client(base_url=base, timeout=600) as client:
            while True:
                try:
                    first = client.get("/v1/signals")
                    break
                except httpx.TransportError:
                    if server.poll() is not None:
                        raise RuntimeError("crosswatch serve exited") from None
                    time.sleep(0.05)
            first.raise_for_status()
            start_to_signals = time.perf_counter() - started
            count = len(first.json()["signals"])
            if count != symbols:
                raise RuntimeError(f"/v1/signals returned {count} signals, not {symbols}")
            print(
                f"  start to first /v1/signals  {start_to_signals:8.2f} s "
                f"({len(first.content) / 1e6:.1f} MB)",
                flush=True,
            )
            print(f"  serve peak RSS by then      {_peak_rss_mb(server.pid):8.0f} MB", flush=True)
            figures: dict[str, float | None] = {"start_to_signals_s": start_to_signals}
            figures["scan_p50_ms"] = _p50_ms(client, "/v1/scan?event=golden_cross&within=5", 20)
            figures["screen_p50_ms"] = _p50_ms(client, "/v1/screen", 20)
            figures["breadth_ms"] = _p50_ms(client, "/v1/breadth", 1)
            for name in ("scan_p50_ms", "screen_p50_ms", "breadth_ms"):
                value = figures[name]
                shown = "n/a (route not served)" if value is None else f"{value:8.1f} ms"
                print(f"  {name:<27} {shown}", flush=True)
        figures["peak_rss_mb"] = _peak_rss_mb(server.pid)
        print(f"  serve peak RSS at the end   {figures['peak_rss_mb']:8.0f} MB", flush=True)
        return figures
    finally:
        server.terminate()
        server.wait(timeout=60)


def daily(
    url: str,
    folder: Path,
    names: list[str],
    days: list[date],
    closes: np.ndarray,
    volumes: np.ndarray,
) -> float:
    """Seconds of the second of two polls by one long-lived poller: one new session for
    every symbol on carried state, the daily brief included."""
    settings = Settings(
        database_url=url,
        providers=["csv"],
        csv_dir=folder,
        symbols=names[:1],
        seed=False,
        log_level="WARNING",
    )
    db = Database(url)
    width = len(days)

    def drop(end: int) -> None:
        write_csvs(folder, names, days, closes, volumes, slice(end - DAILY_FILE_ROWS, end))

    async def run(timed: Callable[[str], None]) -> float:
        from app.jobs.subscribers import custom_rules, enqueuer

        async with poller(
            db, settings, clock=system_clock, enqueue=enqueuer(system_clock), rules=custom_rules
        ) as target:
            polls = SerialPolls(target)
            drop(width - 1)
            started = time.perf_counter()
            await polls("startup")
            timed(f"  first poll of a new process {time.perf_counter() - started:8.2f} s (cold)")
            drop(width)
            started = time.perf_counter()
            report = await polls("scheduled")
            seconds = time.perf_counter() - started
            if report is None or report.added != len(names):
                raise RuntimeError("the daily poll did not add one session per symbol")
            return seconds

    try:
        return asyncio.run(run(lambda line: print(line, flush=True)))
    finally:
        db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--symbols", type=int, default=5000)
    parser.add_argument("--sessions", type=int, default=2520)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    names, days, closes, volumes = universe(args.symbols, args.sessions, args.seed)
    history = slice(0, args.sessions)
    print(
        f"universe: {len(names)} symbols x {args.sessions} sessions "
        f"{days[0]} .. {days[args.sessions - 1]} (+2 for the daily polls)",
        flush=True,
    )
    with tempfile.TemporaryDirectory() as work:
        folder = Path(work) / "csv"
        folder.mkdir()
        write_csvs(folder, names, days, closes, volumes, history)
        raw = raw_insert(
            Path(work) / "raw.db", names, days[history], closes[:, history], volumes[:, history]
        )
        print(f"  raw sqlite3 executemany     {raw:8.2f} s", flush=True)
        url = f"sqlite:///{work}/universe.db"
        env = _env(url, folder, names)
        poll_s, poll_rss = backfill(env)
        print(
            f"  crosswatch poll (backfill)  {poll_s:8.2f} s  = {poll_s / raw:.2f} x raw "
            f"(peak RSS {poll_rss:.0f} MB)",
            flush=True,
        )
        served = serve(env, len(names))
        daily_s = daily(url, folder, names, days, closes, volumes)
        print(f"  daily poll (carried state)  {daily_s:8.2f} s", flush=True)

    def shown(value: float | None, digits: int) -> str:
        return "n/a" if value is None else f"{value:.{digits}f}"

    print(
        f"universe: symbols={len(names)} backfill/raw={poll_s / raw:.2f} "
        f"start_to_signals_s={shown(served['start_to_signals_s'], 2)} "
        f"scan_p50_ms={shown(served['scan_p50_ms'], 1)} "
        f"screen_p50_ms={shown(served['screen_p50_ms'], 1)} "
        f"breadth_ms={shown(served['breadth_ms'], 1)} daily_poll_s={daily_s:.2f} "
        f"peak_rss_mb={shown(served['peak_rss_mb'], 0)}"
    )


if __name__ == "__main__":
    main()
