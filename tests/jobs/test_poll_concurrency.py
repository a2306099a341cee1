"""Polls at universe scale against a real local HTTP server in the Yahoo chart format:
fetches run concurrently up to ``PROVIDER_CONCURRENCY`` and never beyond, and one 429
with ``Retry-After`` holds back every request to the provider until it has passed, for
every symbol, and lowers the provider's rate for the rest of the poll.

The server counts what it sees; its handlers wait on conditions with deadlines (a
broken limit fails an assertion, it does not hang the test). Nothing here sleeps.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

import httpx
import pytest

from app.db.engine import Database
from app.jobs.poll import Poller, PollReport
from app.market.bars import Bar
from app.market.progress import PollProgress
from app.market.providers import ProviderChain, RetryPolicy, build_chain
from app.market.service import read_csv_file
from app.settings import Settings, load_settings
from tests.conftest import data_file
from tests.support.yahoo import YahooFake, at_new_york

MONDAY = date(2026, 8, 24)
#: How long a handler waits for the condition it needs before answering anyway.
DEADLINE = 20.0
Answer = tuple[int, bytes, dict[str, str]]


class Clock:
    def __init__(self) -> None:
        self.now = at_new_york(MONDAY, 9, 0)

    def __call__(self) -> datetime:
        return self.now


async def _no_sleep(_seconds: float) -> None:
    return None


@contextmanager
def serving(answer: Callable[[str, dict[str, list[str]]], Answer]) -> Iterator[str]:
    """A real HTTP server on 127.0.0.1, one thread per request, answering ``answer``."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parsed = urlparse(self.path)
            status, body, headers = answer(parsed.path, parse_qs(parsed.query))
            self.send_response(status)
            for name, value in {"content-type": "application/json", **headers}.items():
                self.send_header(name, value)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class CountingYahoo(YahooFake):
    """Counts requests in flight; holds each one until ``limit`` have been in flight at
    once (or the deadline), so that a working limit is reached and a broken one shows."""

    limit: int = 1
    in_flight: int = 0
    most_in_flight: int = 0
    changed: threading.Condition = field(default_factory=threading.Condition)

    def answer(self, path: str, query: dict[str, list[str]]) -> Answer:
        with self.changed:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            self.changed.notify_all()
            self.changed.wait_for(lambda: self.most_in_flight >= self.limit, DEADLINE)
        try:
            status, body = self.respond(path, query)
        finally:
            with self.changed:
                self.in_flight -= 1
        return status, body, {}


@dataclass
class RateLimitedYahoo(YahooFake):
    """Answers 429 with ``Retry-After`` to the first request for ``refused`` once the
    client has every slot at the server (no request can be on its way), holds the
    others until the client has backed off, then records every request that arrives
    before ``Retry-After`` has passed."""

    refused: str = ""
    slots: int = 1
    retry_after: float = 1.0
    backed_off: Callable[[], bool] = lambda: False
    in_flight: int = 0
    refused_at: float | None = None
    released: bool = False
    early: list[str] = field(default_factory=list)
    arrived_after: list[str] = field(default_factory=list)
    changed: threading.Condition = field(default_factory=threading.Condition)

    def answer(self, path: str, query: dict[str, list[str]]) -> Answer:
        symbol = unquote(path.rsplit("/", 1)[-1])
        arrived = time.monotonic()
        with self.changed:
            if self.refused_at is not None:
                if arrived < self.refused_at + self.retry_after:
                    self.early.append(symbol)
                self.arrived_after.append(symbol)
            elif symbol == self.refused:
                # Refuse only with every slot taken here: no request can be on its way.
                self.in_flight += 1
                self.changed.notify_all()
                self.changed.wait_for(lambda: self.in_flight >= self.slots, DEADLINE)
                self.in_flight -= 1
                self.refused_at = time.monotonic()
                self.changed.notify_all()
                return 429, b'{"finance":{"error":"Too Many Requests"}}', {"Retry-After": "1"}
            else:
                # Arrived before the 429: held until the client has backed off, so that
                # its answer cannot start a request the client sends unaware.
                self.in_flight += 1
                self.changed.notify_all()
                deadline = time.monotonic() + DEADLINE
                while not (self.refused_at is not None and self.backed_off()):
                    if time.monotonic() >= deadline:
                        break
                    self.changed.wait(0.01)
                self.in_flight -= 1
        status, body = self.respond(path, query)
        return status, body, {}


@pytest.fixture(scope="module")
def bars() -> list[Bar]:
    return read_csv_file(data_file("rut_daily.csv"))[-260:]


def _symbols(count: int) -> list[str]:
    return [f"T{n:03d}" for n in range(count)]


def _settings(database_url: str, url: str, **limits: str) -> Settings:
    return load_settings(
        database_url=database_url, seed=False, yahoo_base_url=url, _env_file=None, **limits
    )


def _poll(
    db: Database,
    settings: Settings,
    symbols: list[str],
    on_progress: Callable[[PollProgress], None] | None = None,
    chain_ready: Callable[[ProviderChain], None] | None = None,
) -> tuple[PollReport, ProviderChain]:
    """A poll through the real providers code and a real HTTP client."""

    async def go() -> tuple[PollReport, ProviderChain]:
        async with httpx.AsyncClient() as client:
            chain = build_chain(settings, client, retry=RetryPolicy(retries=2, sleep=_no_sleep))
            if chain_ready is not None:
                chain_ready(chain)
            poller = Poller(db, settings, chain, clock=Clock())
            report = await poller.poll(symbols, trigger="manual", on_progress=on_progress)
            return report, chain

    return asyncio.run(go())


def test_fetches_run_concurrently_up_to_the_limit_and_never_beyond(
    db: Database, database_url: str, bars: list[Bar], tmp_path: Path
) -> None:
    symbols = _symbols(12)
    fake = CountingYahoo(series=dict.fromkeys(symbols, bars), limit=3)
    seen: list[PollProgress] = []
    with serving(fake.answer) as url:
        # An empty csv folder first, taking 8 at once: 8 symbols are fetched at a time
        # and each falls back to Yahoo, whose own limit must hold them to 3.
        settings = _settings(
            database_url,
            url,
            providers="csv,yahoo",
            csv_dir=str(tmp_path),
            provider_concurrency="yahoo=3,csv=8",
            provider_rate="yahoo=1000",
        )
        report, chain = _poll(db, settings, symbols, on_progress=seen.append)

    assert chain.concurrency == 8
    assert fake.most_in_flight == 3
    assert report.status == "ok", [o.error for o in report.outcomes]
    assert [o.symbol for o in report.outcomes] == symbols, "outcomes in the order asked"
    assert all(o.added == len(bars) and o.source == "yahoo" for o in report.outcomes)
    assert len(fake.requests) == 12
    # The progress callback still counts every symbol once, in order, with the totals.
    assert [p.done for p in seen] == list(range(1, 13))
    assert {p.total for p in seen} == {12}
    assert seen[-1].added <= report.added and seen[-1].failed == 0


def test_a_429_holds_back_every_request_to_the_provider_and_lowers_its_rate(
    db: Database, database_url: str, bars: list[Bar]
) -> None:
    symbols = _symbols(16)
    chains: list[ProviderChain] = []
    fake = RateLimitedYahoo(
        series=dict.fromkeys(symbols, bars),
        refused=symbols[0],
        slots=4,
        backed_off=lambda: bool(chains) and chains[0].limits["yahoo"].back_offs >= 1,
    )
    with serving(fake.answer) as url:
        settings = _settings(
            database_url, url, provider_concurrency="yahoo=4", provider_rate="yahoo=100"
        )
        report, chain = _poll(db, settings, symbols, chain_ready=chains.append)

    assert fake.refused_at is not None, "the server never refused"
    assert fake.early == [], "requests reached the server before Retry-After had passed"
    # Requests for other symbols, and the refused one's retry, all came after the pause.
    assert symbols[0] in fake.arrived_after
    assert set(fake.arrived_after) >= set(symbols[4:])
    assert report.status == "ok", [o.error for o in report.outcomes]
    limit = chain.limits["yahoo"]
    assert limit.back_offs == 1
    assert limit.rate == 50.0, "the rate is halved for the rest of the poll"


def test_each_poll_starts_at_the_configured_rate(
    db: Database, database_url: str, bars: list[Bar]
) -> None:
    symbols = _symbols(2)
    fake = CountingYahoo(series=dict.fromkeys(symbols, bars), limit=1)
    with serving(fake.answer) as url:
        settings = _settings(database_url, url, provider_rate="yahoo=100")

        async def go() -> tuple[float | None, float | None]:
            async with httpx.AsyncClient() as client:
                chain = build_chain(settings, client)
                limit = chain.limits["yahoo"]
                limit.back_off(0.0, ticket=0)
                lowered = limit.rate
                await Poller(db, settings, chain, clock=Clock()).poll(symbols, trigger="manual")
                return lowered, limit.rate

        lowered, after = asyncio.run(go())
    assert (lowered, after) == (50.0, 100.0)
