"""The poll's ``daily_brief`` event carries the brief's Markdown as ``text``: the same
Markdown ``GET /v1/brief`` serves for that session, without the universe sections, read
from the indices' closes only (not from the other symbols')."""

from __future__ import annotations

import asyncio
from datetime import date
from typing import Any

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.api.app import create_app
from app.db.engine import Database
from app.jobs.poll import Poller
from app.market.bars import Bar
from app.market.providers import RetryPolicy, build_chain
from app.market.service import bundled_bars
from app.settings import Settings
from app.signals.event_schemas import EventPage
from app.signals.models import Event
from tests.jobs.test_daily_brief import panel_loads
from tests.support.yahoo import YahooFake, at_new_york

INDICES = ("^GSPC", "^IXIC", "^RUT")
DAY = date(2025, 8, 1)


async def _no_sleep(_seconds: float) -> None:
    return None


class Clock:
    def __init__(self) -> None:
        self.now = at_new_york(date(2025, 7, 31), 18, 0)

    def __call__(self) -> Any:
        return self.now


def _series() -> dict[str, list[Bar]]:
    """The real indices up to :data:`DAY` and a small cap that is not an index."""
    series = {s: [b for b in bundled_bars(s) if b.session <= DAY] for s in INDICES}
    series["SMALL"] = [Bar(b.session, round(b.close / 40, 2)) for b in series["^RUT"][-400:]]
    return series


def test_the_daily_brief_carries_the_briefs_markdown(db: Database, settings: Settings) -> None:
    series = _series()
    fake = YahooFake(series={s: bars[:-1] for s, bars in series.items()})
    clock = Clock()

    async def two_polls() -> list[list[str]]:
        async with httpx.AsyncClient(transport=httpx.MockTransport(fake.handler)) as client:
            chain = build_chain(settings, client, retry=RetryPolicy(retries=1, sleep=_no_sleep))
            poller = Poller(db, settings, chain, clock=clock)
            await poller.poll(list(series), trigger="manual")
            for symbol, bars in fake.series.items():
                bars.append(series[symbol][-1])
            clock.now = at_new_york(DAY, 17, 30)
            with panel_loads(db) as loads:
                await poller.poll(list(series), trigger="scheduled")
            return loads

    loads = asyncio.run(two_polls())
    assert loads == [list(INDICES)], "the text reads the indices' closes, nothing else"
    with db.transaction(write=False) as session:
        brief = session.scalars(
            select(Event).where(Event.type == "daily_brief", Event.session == DAY)
        ).one()
        text: str = brief.data["text"]
        assert len(brief.data["symbols"]) == 4  # the lines are kept as they were
    with TestClient(create_app(settings, db=db, clock=clock)) as client:
        served = client.get(
            "/v1/brief", params={"session": DAY.isoformat()}, headers={"Accept": "text/markdown"}
        ).text
        page = EventPage.model_validate(client.get("/v1/events?type=daily_brief").json())
    assert text.startswith("# Crosswatch brief, 2025-08-01\n")
    assert "| ^RUT | 2,166.78 |" in text and "SMALL" not in text
    # The API's brief is the same Markdown followed by the universe sections.
    assert served.startswith(text.removesuffix("\n") + "\n\n## All tracked symbols\n")
    assert [e.data.model_dump().get("text") for e in page.events if e.session == DAY] == [text]
