"""The daily brief is written from what the poll's detection derived.

One long-lived poller (a running scheduler's situation) backfills three real indices,
then polls one new session: the daily path advances the carried state, and the brief's
lines come from it. No panel is loaded for them during that poll (only the indices'
closes, for the brief's Markdown ``text``), and every line equals the signal the book
computes from the whole store.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from typing import Any

import httpx
from sqlalchemy import event, select

from app.db.engine import Database
from app.jobs.poll import Poller, PollReport
from app.market.bars import Bar
from app.market.providers import RetryPolicy, build_chain
from app.market.service import read_csv_file
from app.settings import Settings
from app.signals import service as signal_service
from app.signals.book import SignalBook
from app.signals.models import Event
from tests.conftest import data_file
from tests.support.yahoo import YahooFake, at_new_york

FILES = {"^RUT": "rut_daily.csv", "^GSPC": "gspc_daily.csv", "^IXIC": "ixic_daily.csv"}
MONDAY = date(2026, 8, 24)
BRIEF_FIELDS = (
    "symbol",
    "session",
    "close",
    "regime",
    "gap_pct",
    "trigger_close",
    "drawdown_pct",
    "stale",
    "source",
    "instrument",
)


@contextmanager
def panel_loads(db: Database) -> Iterator[list[list[str]]]:
    """The symbols of each close panel read (``load_panel`` counts each chunk's rows by
    symbol first: one such statement per chunk, over its epoch-day rows)."""
    seen: list[list[str]] = []

    def executed(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if " AS day" in statement and "count(*)" in statement:
            values = parameters.values() if isinstance(parameters, dict) else parameters
            seen.append(sorted(v for v in values if isinstance(v, str)))

    event.listen(db.engine, "before_cursor_execute", executed)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", executed)


async def _no_sleep(_seconds: float) -> None:
    return None


class Clock:
    def __init__(self) -> None:
        self.now = at_new_york(MONDAY, 9, 0)

    def __call__(self) -> Any:
        return self.now


def _brief(db: Database, day: date) -> list[dict[str, Any]]:
    with db.transaction(write=False) as session:
        brief = session.scalars(
            select(Event).where(Event.type == "daily_brief", Event.session == day)
        ).one()
        lines: list[dict[str, Any]] = brief.data["symbols"]
        return lines


def _book_lines(db: Database, clock: Clock) -> list[dict[str, Any]]:
    """The brief's fields of every signal as a fresh signal book computes them."""
    with db.transaction(write=False) as session:
        signals = signal_service.all_signals(SignalBook(), session, clock())
    return [
        {
            name: signal[name].isoformat() if name == "session" else signal[name]
            for name in BRIEF_FIELDS
        }
        for signal in signals
    ]


def test_the_daily_brief_reuses_the_polls_analysis_and_reads_no_panel(
    db: Database, settings: Settings
) -> None:
    series = {s: read_csv_file(data_file(name)) for s, name in FILES.items()}
    fake = YahooFake(series={s: list(bars) for s, bars in series.items()})
    clock = Clock()

    async def two_polls() -> tuple[PollReport, PollReport, list[list[str]]]:
        async with httpx.AsyncClient(transport=httpx.MockTransport(fake.handler)) as client:
            chain = build_chain(settings, client, retry=RetryPolicy(retries=1, sleep=_no_sleep))
            poller = Poller(db, settings, chain, clock=clock)
            backfill = await poller.poll(list(FILES), trigger="manual")
            for bars in fake.series.values():
                bars.append(Bar(MONDAY, round(bars[-1].close * 0.97, 2)))
            clock.now = at_new_york(MONDAY, 17, 30)
            with panel_loads(db) as loads:
                daily = await poller.poll(list(FILES), trigger="scheduled")
            return backfill, daily, loads

    backfill, daily, loads = asyncio.run(two_polls())
    assert backfill.status == daily.status == "ok"
    assert [(o.symbol, o.added) for o in daily.outcomes] == [(s, 1) for s in FILES]
    # Detection and the brief's lines read no close panel; its text reads the indices'
    # (all three symbols here: tests/signals/test_brief_event.py has other symbols).
    assert loads == [sorted(FILES)], "the daily poll read the indices' panel only"
    lines = _brief(db, MONDAY)
    assert [{name: line[name] for name in BRIEF_FIELDS} for line in lines] == _book_lines(db, clock)
    assert [line["session"] for line in lines] == [MONDAY.isoformat()] * len(FILES)
    assert all(line["source"] == "yahoo" for line in lines)


def test_a_brief_for_symbols_the_poller_holds_no_state_for_loads_only_those(
    db: Database, settings: Settings
) -> None:
    """A symbol the poller did not write (polled by another process, or failed) is
    loaded for the brief; the ones it carries are not."""
    series = {s: read_csv_file(data_file(name)) for s, name in FILES.items()}
    fake = YahooFake(series={s: list(bars) for s, bars in series.items()})
    clock = Clock()

    async def go() -> list[list[str]]:
        async with httpx.AsyncClient(transport=httpx.MockTransport(fake.handler)) as client:
            chain = build_chain(settings, client, retry=RetryPolicy(retries=1, sleep=_no_sleep))
            other = Poller(db, settings, chain, clock=clock)
            await other.poll(["^RUT"], trigger="manual")
            poller = Poller(db, settings, chain, clock=clock)
            await poller.poll(["^GSPC", "^IXIC"], trigger="manual")
            for bars in fake.series.values():
                bars.append(Bar(MONDAY, round(bars[-1].close * 1.01, 2)))
            clock.now = at_new_york(MONDAY, 17, 30)
            with panel_loads(db) as loads:
                await poller.poll(["^GSPC", "^IXIC"], trigger="scheduled")
            return loads

    loads = asyncio.run(go())
    assert loads[0] == ["^RUT"], "only the symbol without a carried state is loaded"
    assert loads[1:] == [sorted(FILES)], "then the indices, for the brief's text"
    lines = _brief(db, MONDAY)
    assert [line["symbol"] for line in lines] == sorted(FILES)
    assert {line["symbol"]: line["session"] for line in lines} == {
        "^GSPC": MONDAY.isoformat(),
        "^IXIC": MONDAY.isoformat(),
        "^RUT": series["^RUT"][-1].session.isoformat(),
    }
    assert [{name: line[name] for name in BRIEF_FIELDS} for line in lines] == _book_lines(db, clock)
