"""A real browser loads ``/status`` from a real server over a seeded store.

Headless Chromium renders the page served by uvicorn (its own thread, 127.0.0.1, a
free port) for a store seeded with the bundled history, after a real poll in which
Stooq (no API key) failed and Yahoo (its local double) answered. The DOM Chromium
dumps is read as a person would; a screenshot goes to ``test-output/status.png``.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from app.db.engine import Database
from app.jobs import ingest
from app.market.bars import Bar
from tests.conftest import ROOT, fixed_clock
from tests.status.conftest import SYMBOLS, build_app, poll_settings, run_poll
from tests.status.dom import parse

CHROMIUM = os.environ.get("CROSSWATCH_CHROMIUM", "/usr/bin/chromium")
SCREENSHOT = ROOT / "test-output" / "status.png"
NAMES = {"^RUT": "rut", "^GSPC": "gspc", "^IXIC": "ixic"}


def _chromium() -> str:
    if Path(CHROMIUM).exists():
        return CHROMIUM
    if os.environ.get("CI"):
        pytest.fail(f"{CHROMIUM} is missing: CI must install chromium (apt-get install chromium)")
    pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium); CI runs this test")


def _browse(binary: str, profile: Path, *args: str) -> str:
    result = subprocess.run(
        [
            binary,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


@pytest.fixture
def server(db: Database, database_url: str, real_series: dict[str, list[Bar]]) -> Iterator[str]:
    ingest.seed(db, SYMBOLS, clock=fixed_clock)
    settings = poll_settings(database_url, ["stooq", "yahoo"])
    run_poll(db, settings, real_series)
    app = build_app(settings, db)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    uvicorn_server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=uvicorn_server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:  # wait for the server to answer, not for a fixed time
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "the server did not start within 30 s"
        time.sleep(0.05)
    try:
        yield base
    finally:
        uvicorn_server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def test_chromium_renders_the_status_page(server: str, tmp_path: Path) -> None:
    binary = _chromium()
    url = f"{server}/status"
    dom = parse(_browse(binary, tmp_path / "profile-dom", "--dump-dom", url))
    text = dom.text()

    assert "Crosswatch status" in text
    stooq = dom.by_id("component-stooq").text()
    assert "down" in stooq
    assert "Stooq needs an API key: set CROSSWATCH_STOOQ_API_KEY" in stooq
    assert "Stooq has no known symbol for ^RUT" in stooq
    assert "operational" in dom.by_id("component-yahoo").text()
    for symbol, name in NAMES.items():
        card = dom.by_id(f"symbol-{name}")
        card_text = card.text()
        assert symbol in card_text
        assert "golden regime" in card_text  # all three in a golden regime on 2026-08-21
        assert "fresh" in card_text
        (svg,) = card.find_all("svg", "chart")
        paths = {path.attrs["class"]: path.attrs["d"] for path in svg.find_all("path")}
        assert set(paths) == {"price", "fast-ma", "slow-ma"}
        assert paths["price"].startswith("M") and paths["price"].count("L") == 503
        assert paths["fast-ma"].count("L") == 503  # the averages span the whole window
        assert paths["slow-ma"].count("L") == 503
        assert svg.find_all("circle", "cross"), f"no cross marker in {symbol}'s two years"
    assert "Recent events" in text and "Recent polls" in text
    assert "manual" in dom.by_id("polls").text()

    SCREENSHOT.parent.mkdir(exist_ok=True)
    SCREENSHOT.unlink(missing_ok=True)
    _browse(
        binary,
        tmp_path / "profile-shot",
        f"--screenshot={SCREENSHOT}",
        "--window-size=1280,2400",
        url,
    )
    assert SCREENSHOT.stat().st_size > 50_000
    assert shutil.which(binary) or Path(binary).exists()
