"""Polls end to end: real providers code over a Yahoo-format double, a real store."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, date, datetime

import httpx
import pytest
from sqlalchemy import select

from app.db.engine import Database
from app.jobs.poll import Poller, PollReport
from app.market import repository
from app.market.bars import Bar
from app.market.models import PollResult, PollRun
from app.market.providers import RetryPolicy, build_chain
from app.market.service import read_csv_file
from app.settings import Settings
from app.signals.models import Event
from tests.conftest import data_file, run_cli
from tests.support.yahoo import LiveBar, YahooFake, at_new_york

FILES = {"^RUT": "rut_daily.csv", "^GSPC": "gspc_daily.csv", "^IXIC": "ixic_daily.csv"}
MONDAY = date(2026, 8, 24)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


async def _no_sleep(_seconds: float) -> None:
    return None


def run_poll(
    db: Database,
    settings: Settings,
    fake: YahooFake,
    clock: Clock,
    symbols: list[str] | None = None,
) -> PollReport:
    async def go() -> PollReport:
        async with httpx.AsyncClient(transport=httpx.MockTransport(fake.handler)) as client:
            chain = build_chain(settings, client, retry=RetryPolicy(retries=1, sleep=_no_sleep))
            poller = Poller(db, settings, chain, clock=clock)
            return await poller.poll(symbols, trigger="manual")

    return asyncio.run(go())


@pytest.fixture(scope="module")
def real_series() -> dict[str, list[Bar]]:
    return {symbol: read_csv_file(data_file(name)) for symbol, name in FILES.items()}


def _snapshot(db: Database) -> list[tuple[object, ...]]:
    with db.transaction(write=False) as session:
        return [
            (b.symbol, b.session, b.close, b.source)
            for symbol in FILES
            for b in repository.read_bars(session, symbol)
        ]


def test_backfill_then_increment_stores_exactly_the_new_session(
    db: Database, settings: Settings, real_series: dict[str, list[Bar]]
) -> None:
    fake = YahooFake(series={s: list(bars) for s, bars in real_series.items()})
    clock = Clock(at_new_york(MONDAY, 9, 0))
    first = run_poll(db, settings, fake, clock, list(FILES))
    assert first.status == "ok", [o.error for o in first.outcomes]
    for outcome in first.outcomes:
        assert outcome.added == len(real_series[outcome.symbol])
        assert outcome.rejected == []
        assert (outcome.source, outcome.instrument) == ("yahoo", outcome.symbol)
    with db.transaction(write=False) as session:
        events = list(session.scalars(select(Event)))
    assert events, "a backfill stores the history's events"
    assert not any(event.live for event in events), "backfilled events are never live"
    assert [e.type for e in events if e.session == date(2026, 8, 21)] == ["daily_brief"]

    for bars in fake.series.values():
        bars.append(Bar(MONDAY, round(bars[-1].close * 1.002, 2)))
    clock.now = at_new_york(MONDAY, 17, 30)
    second = run_poll(db, settings, fake, clock, list(FILES))
    assert second.status == "ok"
    assert [(o.symbol, o.added, o.revised) for o in second.outcomes] == [(s, 1, 0) for s in FILES]
    with db.transaction(write=False) as session:
        assert repository.last_sessions(session, list(FILES)) == dict.fromkeys(FILES, MONDAY)
        assert repository.bar_count(session, "^RUT") == len(real_series["^RUT"]) + 1
        runs = list(session.scalars(select(PollRun).order_by(PollRun.id)))
        briefs = list(
            session.scalars(
                select(Event).where(Event.type == "daily_brief", Event.session == MONDAY)
            )
        )
    assert [run.status for run in runs] == ["ok", "ok"]
    assert len(briefs) == 1
    assert briefs[0].live and briefs[0].session == MONDAY
    assert [line["symbol"] for line in briefs[0].data["symbols"]] == sorted(FILES)
    assert briefs[0].data["symbols"][0]["line"].startswith("^GSPC ")


def test_live_bar_is_not_stored_until_the_session_has_closed(
    db: Database, settings: Settings, real_series: dict[str, list[Bar]]
) -> None:
    history = real_series["^RUT"]
    fake = YahooFake(series={"^RUT": list(history)})
    clock = Clock(at_new_york(MONDAY, 8, 0))
    assert run_poll(db, settings, fake, clock, ["^RUT"]).status == "ok"

    intraday = Bar(MONDAY, 3050.0, 3017.0, 3055.0, 3010.0)
    clock.now = at_new_york(MONDAY, 14, 5)
    fake.live["^RUT"] = LiveBar(intraday, clock.now)
    during = run_poll(db, settings, fake, clock, ["^RUT"])
    assert during.outcomes[0].added == 0
    with db.transaction(write=False) as session:
        assert repository.last_sessions(session, ["^RUT"])["^RUT"] == history[-1].session

    final = replace(intraday, close=3061.25)
    del fake.live["^RUT"]
    fake.series["^RUT"].append(final)
    clock.now = at_new_york(MONDAY, 17, 20)
    after = run_poll(db, settings, fake, clock, ["^RUT"])
    assert (after.outcomes[0].added, after.outcomes[0].revised) == (1, 0)
    with db.transaction(write=False) as session:
        stored = repository.read_bars(session, "^RUT", MONDAY, MONDAY)
    assert [(b.session, b.close) for b in stored] == [(MONDAY, 3061.25)]


@pytest.mark.parametrize(
    ("body", "content_type", "reason"),
    [
        (b"<html><body>Will be right back</body></html>", "text/html", "HTML page"),
        (b"", "application/json", "empty body"),
        (b"Edge: Too Many Requests", "text/plain", "HTTP 429"),
    ],
)
def test_failed_poll_changes_nothing_and_says_why(
    db: Database,
    settings: Settings,
    real_series: dict[str, list[Bar]],
    body: bytes,
    content_type: str,
    reason: str,
) -> None:
    fake = YahooFake(series={"^RUT": list(real_series["^RUT"][:-5])})
    clock = Clock(at_new_york(MONDAY, 9, 0))
    run_poll(db, settings, fake, clock, ["^RUT"])
    before = _snapshot(db)

    status = 429 if "429" in reason else 200

    def broken(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=body, headers={"content-type": content_type})

    fake.handler = broken  # type: ignore[method-assign]
    report = run_poll(db, settings, fake, clock, ["^RUT"])
    assert report.status == "failed"
    assert reason in (report.outcomes[0].error or "")
    assert _snapshot(db) == before
    with db.transaction(write=False) as session:
        result = session.scalars(
            select(PollResult).where(PollResult.poll_run_id == report.run_id)
        ).one()
    assert result.error is not None and reason in result.error


def test_bad_rows_are_rejected_with_reasons_and_good_rows_stored(
    db: Database, settings: Settings, real_series: dict[str, list[Bar]]
) -> None:
    history = list(real_series["^RUT"][:-10])
    fake = YahooFake(series={"^RUT": history})
    clock = Clock(at_new_york(MONDAY, 9, 0))
    run_poll(db, settings, fake, clock, ["^RUT"])
    tail = real_series["^RUT"][-10:]
    spiked = [*tail[:4], replace(tail[4], close=tail[4].close * 1.6), *tail[5:]]
    fake.series["^RUT"] = history + spiked
    report = run_poll(db, settings, fake, clock, ["^RUT"])
    outcome = report.outcomes[0]
    assert outcome.added == 9
    assert [day for day, _ in outcome.rejected] == [tail[4].session]
    assert "bad tick" in outcome.rejected[0][1] or "jump" in outcome.rejected[0][1]


def test_poll_command_against_a_local_yahoo_server(
    database_url: str, real_series: dict[str, list[Bar]]
) -> None:
    fake = YahooFake(series={s: list(bars) for s, bars in real_series.items()})
    with fake.serve() as base_url:
        env = {"CROSSWATCH_YAHOO_BASE_URL": base_url, "CROSSWATCH_SYMBOLS": ",".join(FILES)}
        first = run_cli("poll", database_url=database_url, env=env)
        assert first.returncode == 0, first.stderr
        for symbol, bars in real_series.items():
            assert f"{symbol}: {len(bars)} added, 0 revised, 0 rejected" in first.stdout
        for bars in fake.series.values():
            bars.append(Bar(MONDAY, round(bars[-1].close * 0.999, 2)))
        second = run_cli("poll", database_url=database_url, env=env)
        assert second.returncode == 0, second.stderr
        for symbol in FILES:
            assert f"{symbol}: 1 added, 0 revised, 0 rejected" in second.stdout
        fake.series.pop("^RUT")
        third = run_cli("poll", "^RUT", database_url=database_url, env=env)
    assert third.returncode == 1
    assert "^RUT: failed: no provider could fetch ^RUT: yahoo (^RUT): " in third.stderr


def test_a_proxy_is_backfilled_from_its_own_window_not_the_index(
    db: Database, settings: Settings, real_series: dict[str, list[Bar]]
) -> None:
    settings = settings.model_copy(update={"proxies": {"^RUT": "IWM"}})
    iwm = read_csv_file(data_file("iwm_daily.csv"))
    fake = YahooFake(series={"^RUT": list(real_series["^RUT"][:-5])})
    clock = Clock(at_new_york(MONDAY, 9, 0))
    assert run_poll(db, settings, fake, clock, ["^RUT"]).status == "ok"

    # Yahoo loses ^RUT: the chain falls back to IWM, which nothing has stored yet.
    fake.series = {"IWM": list(iwm)}
    report = run_poll(db, settings, fake, clock, ["^RUT"])
    assert report.status == "failed"
    assert "proxy IWM was fetched" in (report.outcomes[0].error or "")
    with db.transaction(write=False) as session:
        assert repository.bar_count(session, "IWM") == len(iwm)
        assert repository.bar_count(session, "^RUT") == len(real_series["^RUT"]) - 5
        stored = repository.read_bars(session, "IWM")
    assert (stored[0].session, stored[-1].session) == (iwm[0].session, iwm[-1].session)

    # Next time IWM's own newest session sets its window: only the overlap is asked.
    fake.series["IWM"].append(Bar(MONDAY, round(iwm[-1].close * 1.01, 2)))
    clock.now = at_new_york(MONDAY, 17, 30)
    periods: list[tuple[str, int]] = []
    handler = fake.handler

    def recording(request: httpx.Request) -> httpx.Response:
        periods.append((request.url.path, int(request.url.params["period1"])))
        return handler(request)

    fake.handler = recording  # type: ignore[method-assign]
    run_poll(db, settings, fake, clock, ["^RUT"])
    iwm_start = [p for path, p in periods if path.endswith("/IWM")]
    assert iwm_start, periods
    assert all(datetime.fromtimestamp(p, UTC).date() == iwm[-6].session for p in iwm_start)
    with db.transaction(write=False) as session:
        assert repository.bar_count(session, "IWM") == len(iwm) + 1
