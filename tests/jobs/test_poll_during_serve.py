"""A large poll inside ``crosswatch serve``: while its start-up poll of hundreds of
symbols runs (fetching concurrently, storing batches in a worker thread), the API
answers ``/v1/signals`` and ``/v1/symbols``, and ``/v1/status`` and the status page
show the poll in progress as "n of N".

The Yahoo double is a real local server that answers the first ``ANSWERED_FIRST``
requests and holds the rest until the test releases them, so the poll is certainly
part-way when the test looks; everything waits on conditions with deadlines.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from app.market.bars import Bar
from app.market.service import read_csv_file
from tests.conftest import data_file
from tests.faults.support import crosswatch_env, serving
from tests.support.wait import wait_until
from tests.support.yahoo import YahooFake

SYMBOLS = [f"U{n:04d}" for n in range(400)]
ANSWERED_FIRST = 150
SESSIONS = 250


@dataclass
class HeldYahoo(YahooFake):
    """Answers the first ``ANSWERED_FIRST`` requests, then waits for ``release``."""

    answered: int = 0
    release: threading.Event = field(default_factory=threading.Event)
    counting: threading.Lock = field(default_factory=threading.Lock)

    def respond(self, path: str, query: dict[str, list[str]]) -> tuple[int, bytes]:
        with self.counting:
            self.answered += 1
            held = self.answered > ANSWERED_FIRST
        if held:
            self.release.wait(120)
        return super().respond(path, query)


@pytest.fixture
def held_yahoo() -> Iterator[tuple[HeldYahoo, str]]:
    bars: list[Bar] = read_csv_file(data_file("rut_daily.csv"))[-SESSIONS:]
    fake = HeldYahoo(series=dict.fromkeys(SYMBOLS, bars))
    with fake.serve() as url:
        try:
            yield fake, url
        finally:
            fake.release.set()


def _status(base: str) -> dict[str, Any]:
    response = httpx.get(f"{base}/v1/status", timeout=30)
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def _scheduler(status: dict[str, Any]) -> dict[str, Any]:
    part: dict[str, Any] = next(c for c in status["components"] if c["kind"] == "scheduler")
    return part


def _part_way(base: str) -> bool:
    progress = _scheduler(_status(base))["details"].get("in_progress")
    return progress is not None and 0 < progress["done"] < progress["total"]


def _finished(base: str) -> dict[str, Any] | None:
    polls: list[dict[str, Any]] = _status(base)["polls"]
    done = [poll for poll in polls if poll["finished_at"] is not None]
    return done[0] if done else None


def _answers(base: str, path: str) -> int:
    return httpx.get(f"{base}{path}", timeout=30).status_code


def test_the_api_answers_and_status_counts_while_a_large_poll_runs(
    database_url: str, held_yahoo: tuple[HeldYahoo, str]
) -> None:
    fake, yahoo_url = held_yahoo
    env = crosswatch_env(
        database_url,
        symbols=",".join(SYMBOLS),
        yahoo_base_url=yahoo_url,
        provider_concurrency="4",
        provider_rate="yahoo=500",
    )
    with serving(env, "--no-worker") as (server, base):
        wait_until(lambda: _part_way(base), 120, "the start-up poll to be part-way")
        scheduler = _scheduler(_status(base))
        progress = scheduler["details"]["in_progress"]
        assert progress["total"] == len(SYMBOLS)
        assert 0 < progress["done"] < len(SYMBOLS)
        assert f"{progress['done']} of {len(SYMBOLS)} symbols" in scheduler["reason"]
        page = httpx.get(f"{base}/status", timeout=30)
        assert page.status_code == 200
        assert f'max="{len(SYMBOLS)}"' in page.text and 'id="poll-progress"' in page.text
        assert _answers(base, "/v1/signals") == 200
        assert _answers(base, "/v1/symbols") == 200

        # Released, the poll stores hundreds of backfills; the API answers throughout.
        fake.release.set()
        answered = 0
        deadline = time.monotonic() + 300
        while _finished(base) is None:
            assert time.monotonic() < deadline, "the poll did not finish within 300 s"
            assert _answers(base, "/v1/signals") == 200
            assert _answers(base, "/v1/symbols") == 200
            answered += 2
            assert server.popen.poll() is None, server.output()[-4000:]
        assert answered >= 2

        poll = _finished(base)
        assert poll is not None
        assert poll["status"] == "ok", poll["errors"][:3]
        assert poll["added"] == len(SYMBOLS) * SESSIONS
        assert "in_progress" not in _scheduler(_status(base))["details"]
        symbols = httpx.get(f"{base}/v1/symbols", timeout=30).json()
        assert len(symbols["symbols"]) >= len(SYMBOLS)
