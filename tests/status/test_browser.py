"""A real browser loads ``/status`` from a real server over a seeded store.

Headless Chromium renders the page served by uvicorn (its own thread, 127.0.0.1, a
free port) for a store seeded with the bundled history, after a poll that failed for
every symbol (Stooq alone, no API key) and a real poll in which Stooq failed and Yahoo
(its local double) answered. The DOM Chromium dumps is read as a person would;
screenshots go to ``test-output/status.png`` (desktop) and ``status-390.png`` (phone).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
import uvicorn

from app.db.engine import Database
from app.jobs.watch.check import Finding, WatchReport, record_for_status
from app.jobs.watch.watchlist import Candidate
from app.market.bars import Bar
from app.market.providers.yahoo import LiveQuote
from app.signals.analysis import DEFAULT_RULE
from app.signals.models import Event
from tests.conftest import FIXED_NOW, ROOT
from tests.status.cdp import chromium
from tests.status.conftest import SYMBOLS, build_app, poll_settings, run_poll
from tests.status.dom import parse
from tests.support.stores import seed

CHROMIUM = os.environ.get("CROSSWATCH_CHROMIUM", "/usr/bin/chromium")
SCREENSHOT = ROOT / "test-output" / "status.png"
PHONE_SCREENSHOT = ROOT / "test-output" / "status-390.png"
PHONE = 390
# Evaluated in the laid-out page: where each non-empty Errors cell (the polls table's last
# column) lies against the viewport, whether its text is cut, how wide the page scrolls, and
# how much of each table hides beyond its scrolling box.
MEASURE = """(() => {
  const cells = [...document.querySelectorAll("#polls tbody td:last-child")]
    .filter(td => td.textContent.trim());
  return {
    viewport: document.documentElement.clientWidth,
    scroll: document.documentElement.scrollWidth,
    hidden: [...document.querySelectorAll(".table")].map(box => box.scrollWidth - box.clientWidth),
    cells: cells.map(td => {
      const box = td.getBoundingClientRect();
      return {left: box.left, right: box.right, cut: td.scrollWidth > td.clientWidth + 1};
    }),
  };
})()"""
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
    seed(db, SYMBOLS, now=FIXED_NOW)
    run_poll(db, poll_settings(database_url, ["stooq"]), real_series)  # errors for the table
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
        assert svg.by_id(f"slow-ma-{name}").attrs["stroke-dasharray"]  # dashed, not only coloured
        assert "stroke-dasharray" not in svg.by_id(f"fast-ma-{name}").attrs
        markers = svg.find_all("polygon", "cross")
        assert markers, f"no cross marker in {symbol}'s two years"
        assert all("golden" in m.classes or "death" in m.classes for m in markers)
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


def _watch_check(db: Database) -> None:
    """A watch-list check of the served store, as the scheduler records it: one row
    crossed with its event, one whose quote failed with a long reason (the status page
    lists it as a seven-column table)."""
    at = datetime(2025, 8, 6, 15, 0, tzinfo=ZoneInfo("America/New_York"))
    rule = DEFAULT_RULE
    crossed = Candidate("^RUT", rule, date(2025, 8, 6), trigger_close=2130.03)
    failed = Candidate("^GSPC", rule, date(2025, 8, 6), trigger_close=6300.0)
    quote = LiveQuote("^RUT", 2140.0, at, date(2025, 8, 6))
    event = Event(id="evt_watch_phone", type="cross_watch", symbol="^RUT")
    findings = [
        Finding(crossed, quote=quote, distance_pct=-0.47, event=event, written=True),
        Finding(failed, error="Yahoo answered 503 Service Unavailable three times in a row"),
    ]
    record_for_status(db, WatchReport(at, date(2025, 8, 6), findings))


def test_on_a_phone_the_poll_errors_wrap_on_screen_and_refresh_can_be_paused(
    server: str, db: Database, tmp_path: Path
) -> None:
    binary = _chromium()
    _watch_check(db)
    paused = parse(
        _browse(binary, tmp_path / "profile-dom", "--dump-dom", f"{server}/status?refresh=off")
    )
    assert not [m for m in paused.find_all("meta") if m.attrs.get("http-equiv") == "refresh"]
    assert "Auto-refresh paused" in paused.by_id("refresh").text()
    live = parse(_browse(binary, tmp_path / "profile-live", "--dump-dom", f"{server}/status"))
    (pause,) = [a for a in live.find_all("a") if a.attrs.get("href") == "/status?refresh=off"]
    assert pause.text() == "Pause auto-refresh"
    assert [
        m.attrs["content"] for m in live.find_all("meta") if m.attrs.get("http-equiv") == "refresh"
    ] == ["60"]

    # A phone's viewport, as DevTools' device mode sets it (a window cannot be that narrow).
    PHONE_SCREENSHOT.parent.mkdir(exist_ok=True)
    PHONE_SCREENSHOT.unlink(missing_ok=True)
    with chromium(binary, tmp_path / "profile-phone") as tab:
        tab.open(f"{server}/status?refresh=off", PHONE, 844)
        layout = tab.evaluate(MEASURE)
        tab.screenshot(PHONE_SCREENSHOT)
    assert layout["viewport"] == PHONE
    assert layout["scroll"] <= PHONE  # nothing pushes the page sideways
    # events, watch list, polls: each stacks into labelled rows, nothing hidden
    assert len(layout["hidden"]) == 3 and set(layout["hidden"]) == {0}
    assert len(layout["cells"]) == 1  # the failed poll's errors, one per symbol, in one cell
    for cell in layout["cells"]:
        assert cell["left"] >= 0 and cell["right"] <= PHONE, cell
        assert not cell["cut"], cell
    assert PHONE_SCREENSHOT.stat().st_size > 50_000
