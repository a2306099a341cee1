"""Status tests: real closes in a real store, a real poll through the real providers
(Stooq without a key fails with its own reason; Yahoo answers from a local double of
its chart API), and the app with a fixed clock."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.api.app import create_app
from app.db.engine import Database
from app.jobs import ingest
from app.jobs.poll import Poller, PollReport
from app.market.bars import Bar
from app.market.providers import RetryPolicy, build_chain
from app.market.service import read_csv_file
from app.settings import Settings, load_settings
from tests.conftest import FIXED_NOW, data_file, fixed_clock
from tests.support.yahoo import YahooFake

FILES = {"^RUT": "rut_daily.csv", "^GSPC": "gspc_daily.csv", "^IXIC": "ixic_daily.csv"}
SYMBOLS = list(FILES)
LAST_SESSION = date(2026, 8, 21)  # the newest close in the shared data; FIXED_NOW is Monday
CHART_TAIL = 800  # enough for the 200-session average over a two-year chart


@pytest.fixture(scope="session")
def real_series() -> dict[str, list[Bar]]:
    return {symbol: read_csv_file(data_file(name)) for symbol, name in FILES.items()}


def store_real(
    db: Database,
    series: dict[str, list[Bar]],
    *,
    until: dict[str, date] | None = None,
    tail: int = CHART_TAIL,
) -> None:
    """Store the newest ``tail`` real sessions of each symbol (up to ``until[symbol]``)
    with the events they imply, through the same path as an import."""
    for symbol, bars in series.items():
        end = (until or {}).get(symbol, LAST_SESSION)
        chosen = [bar for bar in bars if bar.session <= end][-tail:]
        with db.transaction() as session:
            ingest.store_and_detect(session, symbol, chosen, source="import", clock=fixed_clock)


def poll_settings(database_url: str, providers: list[str]) -> Settings:
    return load_settings(
        database_url=database_url,
        seed=False,
        providers=providers,
        stooq_api_key=None,
        _env_file=None,
    )


async def _no_sleep(_seconds: float) -> None:
    return None


def run_poll(
    db: Database, settings: Settings, series: dict[str, list[Bar]], *, now: datetime = FIXED_NOW
) -> PollReport:
    """One real poll of every tracked symbol; Yahoo answers from its double."""
    fake = YahooFake(series={symbol: list(bars) for symbol, bars in series.items()})

    async def go() -> PollReport:
        transport = httpx.MockTransport(fake.handler)
        async with httpx.AsyncClient(transport=transport) as client:
            chain = build_chain(settings, client, retry=RetryPolicy(retries=0, sleep=_no_sleep))
            poller = Poller(db, settings, chain, clock=lambda: now)
            return await poller.poll(SYMBOLS, trigger="manual")

    return asyncio.run(go())


def build_app(settings: Settings, db: Database, now: datetime = FIXED_NOW) -> FastAPI:
    return create_app(settings, db=db, clock=lambda: now)


@pytest.fixture
def client_for() -> Iterator[Any]:
    """``client_for(settings, db)`` → a started TestClient (closed after the test)."""
    clients: list[TestClient] = []

    def make(settings: Settings, db: Database, now: datetime = FIXED_NOW) -> TestClient:
        client = TestClient(build_app(settings, db, now))
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


def at(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)
