"""`crosswatch serve` from an empty store, as the README runs it: seeded, ready, exportable."""

from __future__ import annotations

import csv
import io
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.conftest import ROOT, data_file, run_cli
from tests.faults.support import crosswatch_env, serving


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _finished_polls(port: int) -> list[dict[str, object]]:
    status = httpx.get(f"http://127.0.0.1:{port}/v1/status", timeout=30).json()
    return [run for run in status.get("polls", []) if run.get("finished_at")]


def test_serve_seeds_an_empty_store_and_becomes_ready(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/fresh.db"
    port = _free_port()
    env = {
        **os.environ,
        "CROSSWATCH_DATABASE_URL": url,
        "CROSSWATCH_SEED": "true",
        # Offline: the start-up poll must fail fast and harmlessly, never reach the internet.
        "CROSSWATCH_YAHOO_BASE_URL": "http://127.0.0.1:9",
        "CROSSWATCH_PROVIDER_RETRIES": "0",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "app", "serve", "--port", str(port)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        ready = None
        while time.monotonic() < deadline and process.poll() is None:
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
            except httpx.TransportError:
                ready = None
            if ready is not None and ready.status_code == 200:
                break
            time.sleep(0.2)  # not listening yet, or warming (a 503 until the book is warm)
        assert ready is not None and ready.status_code == 200, "serve never became ready"
        signals = httpx.get(f"http://127.0.0.1:{port}/v1/signals", timeout=30).json()
        assert {s["symbol"] for s in signals["signals"]} == {"^RUT", "^GSPC", "^IXIC"}
        assert httpx.get(f"http://127.0.0.1:{port}/status", timeout=30).status_code == 200
        # One process, one scheduler: exactly one start-up poll (it fails: offline).
        runs: list[dict[str, object]] = []
        while time.monotonic() < deadline and not runs:
            runs = _finished_polls(port)
            time.sleep(0.2)
        assert len(runs) == 1
        assert runs[0]["trigger"] == "startup"
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    # uvicorn shuts down gracefully, then re-raises the SIGTERM it caught.
    assert process.returncode in (0, -signal.SIGTERM)

    exported = run_cli("export", "^RUT", database_url=url)
    assert exported.returncode == 0, exported.stderr
    rows = list(csv.reader(io.StringIO(exported.stdout)))[1:]
    expected = list(csv.reader(data_file("rut_daily.csv").open()))[1:]
    assert len(rows) == 9811
    assert [(r[0], float(r[1])) for r in rows] == [(e[0], float(e[1])) for e in expected]


def test_serve_on_an_empty_store_says_little_before_it_is_ready(tmp_path: Path) -> None:
    env = crosswatch_env(
        f"sqlite:///{tmp_path}/fresh.db",
        seed="true",
        yahoo_base_url="http://127.0.0.1:9",
        provider_retries="0",
    )
    with serving(env) as (process, _url):
        lines = process.output().splitlines()
    ready = next(i for i, line in enumerate(lines) if "Uvicorn running on" in line)
    before = lines[: ready + 1]
    assert len(before) < 40, "\n".join(before)
    assert before[0] == f"store: sqlite:///{tmp_path}/fresh.db"
    seeded = [line for line in before if " INFO crosswatch.ingest: seeded " in line]
    assert [line.split("seeded ")[1].split()[0] for line in seeded] == [
        "symbol=^RUT",
        "symbol=^GSPC",
        "symbol=^IXIC",
    ]
    assert not any(" event id=" in line for line in before), "history events are DEBUG"
    assert not any("\x1b" in line or "color_message" in line for line in before)
    assert not any("apscheduler" in line for line in before)
