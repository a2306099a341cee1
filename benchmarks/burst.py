"""Burst benchmark: 1,000 ordinary requests sent at once to ``crosswatch serve`` (issue 12).

``crosswatch serve --no-scheduler --no-worker`` (one process, one uvicorn worker) on a
fresh store seeded with the bundled history; this process sends the burst with aiohttp,
one connection per request, all released at once: public reads (``GET /v1/symbols``,
``/v1/events``, ``/v1/signals/%5ERUT``), a key-checked read (``GET /v1/webhooks``)
and writes (``POST /v1/symbols``, ``POST /v1/webhooks/{id}/test``), round-robin (the
mix of ``tests/support/burst.py``, which the test suite sends 200 of). Every answer
must be a 2xx or a 503 problem+json with ``Retry-After`` (shed); anything else, or no
answer within ``--timeout``, is an error. A burst of ``GET /healthz`` (no store) of the
same size, sent first, is the floor: what the server and this client take for the
connections alone.

SQLite in a temporary folder by default; ``--pg URL`` runs on that PostgreSQL database
instead (it is wiped). Prints a line per kind of request; the last line is
``burst: n=N ok=N shed=N errors=N p99_ms=N``.

Usage (from the repository root)::

    .venv/bin/python benchmarks/burst.py [--requests 1000] [--pg postgresql+psycopg://…]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from sqlalchemy import text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.auth.service import create_key  # noqa: E402
from app.db.engine import Database  # noqa: E402
from app.db.migrate import upgrade  # noqa: E402
from app.metadata import metadata  # noqa: E402
from tests.support.burst import MIX, Kind, burst, by_kind, summarise  # noqa: E402

HEALTH = Kind("GET /healthz (floor)", "GET", "/healthz")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _prepare(url: str) -> str:
    """An empty, migrated store with one API key; returns the key."""
    db = Database(url)
    try:
        upgrade(db.engine)
        if not db.is_sqlite:
            names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
            with db.engine.begin() as connection:
                connection.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        with db.transaction() as session:
            _row, key = create_key(session, "burst benchmark")
        return key
    finally:
        db.dispose()


def _wait_ready(base: str, server: subprocess.Popen[bytes], seconds: float = 300) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"crosswatch serve exited with {server.returncode}")
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{base} was not ready within {seconds} s")


def run(url: str, n: int, timeout: float) -> None:
    key = _prepare(url)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "CROSSWATCH_DATABASE_URL": url,
        "CROSSWATCH_SEED": "true",
        "CROSSWATCH_WEBHOOK_ALLOW_PRIVATE": "true",
        "CROSSWATCH_LOG_LEVEL": "ERROR",
    }
    server = subprocess.Popen(
        [
            *(sys.executable, "-m", "app", "serve", "--no-scheduler", "--no-worker"),
            *("--host", "127.0.0.1", "--port", str(port)),
        ],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_ready(base, server)
        headers = {"Authorization": f"Bearer {key}"}
        created = httpx.post(
            f"{base}/v1/webhooks",
            json={"url": "http://127.0.0.1:9/hook", "event_types": ["golden_cross"]},
            headers=headers,
            timeout=30,
        )
        created.raise_for_status()
        subscription = int(created.json()["id"])
        # Warm-up: each kind once, so first-use costs (imports, the signal book's first
        # load) are not what is measured.
        for kind in MIX:
            path = kind.path.format(subscription=subscription)
            body = {"symbol": "W" + secrets.token_hex(3).upper()} if kind.body else None
            httpx.request(kind.method, base + path, headers=headers, json=body, timeout=120)

        floor = asyncio.run(
            burst(base, n, key=key, subscription=subscription, kinds=[HEALTH], timeout=timeout)
        )
        answers = asyncio.run(burst(base, n, key=key, subscription=subscription, timeout=timeout))
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:  # stuck requests (as before issue 12's fix)
            server.kill()
            server.wait()

    store = "SQLite" if url.startswith("sqlite") else "PostgreSQL"
    print(f"{store}: {n} requests at once, one connection each")
    print(
        f"  {'kind':32s} {'n':>5s} {'ok':>5s} {'shed':>5s} {'errors':>6s} {'p50 ms':>7s} "
        f"{'p99 ms':>7s} {'max ms':>7s}"
    )
    rows = [("GET /healthz (floor, sent first)", summarise(floor))]
    rows += sorted(by_kind(answers).items())
    rows.append(("all (mixed burst)", summarise(answers)))
    for name, s in rows:
        print(
            f"  {name:32s} {s.n:5d} {s.ok:5d} {s.shed:5d} {s.errors:6d} {s.p50_ms:7d} "
            f"{s.p99_ms:7d} {s.max_ms:7d}"
        )
    errors = [answer for answer in answers if answer.error]
    for answer in errors[:5]:
        print(f"  error: {answer.kind}: {answer.status} {answer.detail[:120]}")
    print(summarise(answers).line())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--pg", metavar="URL", help="run on this PostgreSQL database (wiped)")
    parser.add_argument(
        "--timeout", type=float, default=60.0, help="seconds before an answer counts as none"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        run(args.pg or f"sqlite:///{folder}/crosswatch.db", args.requests, args.timeout)


if __name__ == "__main__":
    main()
