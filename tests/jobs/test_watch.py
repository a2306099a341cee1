"""The intraday cross watch (issue 15 item 1): ^RUT on 2025-08-06, when the golden cross
was pending (trigger close 2,130.03, 4.3 % below the 2025-08-05 close), against a local
Yahoo-format HTTP server answering a live in-session quote."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text

from app.db.engine import Database
from app.jobs.runtime import LeadingWatch, poller, run_scheduler
from app.jobs.subscribers import custom_rules, enqueuer
from app.jobs.watch import check, timing
from app.market.bars import Bar
from app.market.providers import NoData
from app.market.providers.yahoo import parse_live_quote
from app.market.service import read_csv_file
from app.settings import Settings, load_settings
from app.signals.models import Event, event_id
from app.signals.repository import insert_new
from app.webhooks.models import Delivery
from tests.conftest import PG_URL, data_file, run_cli
from tests.support.wait import wait_until
from tests.support.yahoo import NEW_YORK, LiveBar, YahooFake, at_new_york
from tests.webhooks.conftest import subscribe

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "providers"
DAY = date(2025, 8, 6)
BEFORE = date(2025, 8, 5)
TRIGGER = 2130.03
AT = at_new_york(DAY, 15)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Scene:
    db: Database
    settings: Settings
    fake: YahooFake
    clock: Clock
    url: str

    def live(self, price: float, at: datetime = AT) -> None:
        self.fake.live["^RUT"] = LiveBar(Bar(DAY, price, price, price, price, 1.0), at)

    def check(self, **kwargs: Any) -> check.WatchReport:
        async def go() -> check.WatchReport:
            async with check.watcher(
                self.db,
                self.settings,
                clock=self.clock,
                enqueue=enqueuer(self.clock),
                rules=custom_rules,
            ) as watcher:
                return await watcher.check(**kwargs)

        return asyncio.run(go())

    def close_session(self, close: float) -> None:
        """The poll after the 2025-08-06 close, storing ``close``."""
        self.fake.live.clear()
        self.fake.series["^RUT"].append(Bar(DAY, close))
        self.clock.now = at_new_york(DAY, 17, 30)
        self.poll()

    def poll(self) -> None:
        async def go() -> None:
            async with poller(
                self.db,
                self.settings,
                clock=self.clock,
                enqueue=enqueuer(self.clock),
                rules=custom_rules,
            ) as target:
                report = await target.poll(["^RUT"], trigger="manual")
                assert report.status == "ok"

        asyncio.run(go())

    def events(self, *types: str) -> list[Event]:
        with self.db.transaction(write=False) as session:
            query = select(Event).where(Event.symbol == "^RUT", Event.session == DAY)
            if types:
                query = query.where(Event.type.in_(types))
            return list(session.scalars(query.order_by(Event.type)))


def rut_until(day: date) -> list[Bar]:
    return [bar for bar in read_csv_file(data_file("rut_daily.csv")) if bar.session <= day]


@pytest.fixture
def scene(db: Database, database_url: str) -> Iterator[Scene]:
    """^RUT stored up to 2025-08-05 by a poll through the local server."""
    fake = YahooFake(series={"^RUT": rut_until(BEFORE)})
    with fake.serve() as url:
        settings = load_settings(
            database_url=database_url,
            seed=False,
            yahoo_base_url=url,
            provider_retries=0,
            webhook_allow_private=True,
            _env_file=None,
        )
        clock = Clock(at_new_york(BEFORE, 18))
        scene = Scene(db, settings, fake, clock, url)
        scene.poll()
        clock.now = AT
        yield scene


def test_a_live_price_beyond_the_trigger_writes_one_golden_cross_watch(scene: Scene) -> None:
    hook, _ = subscribe(scene.db, "http://127.0.0.1:9/hook", now=scene.clock.now)
    scene.live(2140.0)
    report = scene.check(at=AT)
    assert report.session == DAY
    [finding] = report.findings
    assert finding.candidate.trigger_close == pytest.approx(TRIGGER, abs=0.005)
    assert finding.candidate.needed_pct == pytest.approx(-4.3, abs=0.01)
    [event] = report.written
    assert event.id == event_id("^RUT", "sma:50:200", "cross_watch", DAY)
    assert event.live
    assert event.data == {
        "direction": "golden",
        "live_price": 2140.0,
        "trigger_close": pytest.approx(TRIGGER, abs=0.005),
        "distance_pct": pytest.approx((TRIGGER - 2140.0) / 2140.0 * 100, abs=1e-3),
        "as_of": "2025-08-06T15:00:00-04:00",
        "session": "2025-08-06",
        "rule": {"fast": 50, "slow": 200, "type": "sma"},
        "provisional": True,
    }
    # A second check (the price still beyond) adds nothing: no event, no delivery.
    again = scene.check(at=AT + timedelta(minutes=15))
    assert again.written == []
    assert again.findings[0].event is not None and again.findings[0].crossed
    assert [e.type for e in scene.events()] == ["cross_watch"]
    with scene.db.transaction(write=False) as session:
        deliveries = list(session.scalars(select(Delivery)))
    assert [(d.event_id, d.subscription_id) for d in deliveries] == [(event.id, hook)]
    # The close crosses: the closing poll writes the golden cross, and no miss.
    scene.close_session(2221.29)
    assert [e.type for e in scene.events()] == ["cross_watch", "golden_cross"]


def test_a_live_price_short_of_the_trigger_writes_nothing(scene: Scene) -> None:
    scene.live(2120.0)
    report = scene.check(at=AT)
    [finding] = report.findings
    assert not finding.crossed and finding.event is None
    assert finding.distance_pct == pytest.approx((TRIGGER - 2120.0) / 2120.0 * 100, abs=1e-3)
    assert scene.events() == []


def test_a_close_short_of_the_trigger_settles_the_watch_as_missed(scene: Scene) -> None:
    scene.live(2140.0)
    [watched] = scene.check(at=AT).written
    scene.close_session(2100.0)
    [missed] = scene.events("cross_watch_missed")
    assert missed.id == event_id("^RUT", "sma:50:200", "cross_watch_missed", DAY)
    assert missed.live
    assert missed.data["close"] == 2100.0
    assert missed.data["trigger_close"] == watched.data["trigger_close"]
    assert missed.data["direction"] == "golden"
    assert missed.data["watch_id"] == watched.id
    assert scene.events("golden_cross") == []
    # A later poll settles nothing again.
    scene.clock.now = at_new_york(date(2025, 8, 7), 17, 30)
    scene.fake.series["^RUT"].append(Bar(date(2025, 8, 7), 2101.0))
    scene.poll()
    assert len(scene.events("cross_watch_missed")) == 1


def test_outside_a_session_nothing_is_checked(scene: Scene) -> None:
    scene.live(2140.0)
    report = scene.check(at=at_new_york(DAY, 16, 30))
    assert report.session is None and report.findings == []
    assert report.outside is not None
    assert "next opens at 2025-08-07T09:30:00-04:00" in report.outside


def test_a_quote_outside_yahoos_session_is_no_live_price(scene: Scene) -> None:
    """No live bar: Yahoo's last trade is the previous close, not in this session."""
    report = scene.check(at=AT)
    [finding] = report.findings
    assert finding.error is not None and "outside the regular session" in finding.error
    assert scene.events() == []


def test_the_cli_checks_as_if_at_a_time_and_prints_each_finding(scene: Scene) -> None:
    scene.live(2140.0)
    env = {"CROSSWATCH_YAHOO_BASE_URL": scene.url, "CROSSWATCH_PROVIDER_RETRIES": "0"}
    args = ("watch", "^RUT", "--at", "2025-08-06T15:00-04:00")
    first = run_cli(*args, database_url=scene.settings.database_url, env=env)
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith(
        "^RUT sma:50:200 golden watch: live 2,140.00 at 2025-08-06T15:00:00-04:00, "
        "trigger 2,130.03, distance -0.47%: cross_watch written (evt_"
    )
    second = run_cli(*args, database_url=scene.settings.database_url, env=env)
    assert second.returncode == 0, second.stderr
    assert "cross_watch already written" in second.stdout
    assert len(scene.events("cross_watch")) == 1
    outside = run_cli(
        "watch", "--at", "2025-08-09T12:00-04:00", database_url=scene.settings.database_url, env=env
    )
    assert outside.returncode == 1
    assert outside.stderr.splitlines()[-1].startswith("error: outside an XNYS session")
    naive = run_cli("watch", "--at", "2025-08-06T15:00", database_url=scene.settings.database_url)
    assert naive.returncode == 1
    assert "needs a UTC offset" in naive.stderr


def test_two_processes_checking_at_once_write_one_event(scene: Scene) -> None:
    """Two ``crosswatch watch`` processes (the store's own locking, on PostgreSQL
    when ``CROSSWATCH_TEST_DATABASE_URL`` is set) write one event and one delivery."""
    import subprocess
    import sys

    from tests.conftest import ROOT

    hook, _ = subscribe(scene.db, "http://127.0.0.1:9/hook", now=scene.clock.now)
    scene.live(2140.0)
    env = {
        **__import__("os").environ,
        "CROSSWATCH_DATABASE_URL": scene.settings.database_url,
        "CROSSWATCH_SEED": "false",
        "CROSSWATCH_YAHOO_BASE_URL": scene.url,
    }
    args = [sys.executable, "-m", "app", "watch", "^RUT", "--at", "2025-08-06T15:00-04:00"]
    runs = [
        subprocess.Popen(args, env=env, cwd=ROOT, stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [run.communicate(timeout=120)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0]
    assert sum("cross_watch written" in out for out in outputs) == 1
    assert sum("cross_watch already written" in out for out in outputs) == 1
    [event] = scene.events()
    with scene.db.transaction(write=False) as session:
        deliveries = list(session.scalars(select(Delivery)))
    assert [(d.event_id, d.subscription_id) for d in deliveries] == [(event.id, hook)]


# --- the live quote ------------------------------------------------------------------


def _response(name: str) -> httpx.Response:
    return httpx.Response(200, content=(FIXTURES / name).read_bytes())


def test_the_live_quote_of_a_real_in_session_chart() -> None:
    quote = parse_live_quote(_response("yahoo_chart_live_session_aapl_6mo_1d.json"), "AAPL")
    assert quote.price == 269.22
    assert quote.session == date(2025, 10, 28)
    assert quote.as_of.isoformat() == "2025-10-28T12:48:22-04:00"


def test_the_live_quote_takes_its_session_from_the_trading_period_not_the_bars() -> None:
    """Captured in the 2025-03-24 session for a 2022 range: the quote is of today."""
    body = json.loads(
        (FIXTURES / "yahoo_chart_aapl_1d_captured_in_session_dst_mismatch.json").read_text()
    )
    meta = body["chart"]["result"][0]["meta"]
    quote = parse_live_quote(httpx.Response(200, content=json.dumps(body).encode()), "AAPL")
    assert quote.session == date(2025, 3, 24)
    assert quote.as_of.utcoffset() == timedelta(hours=-4)
    assert quote.price == meta["regularMarketPrice"]


@pytest.mark.parametrize(
    "name",
    [
        "yahoo_chart_after_close_same_evening_aapl_6mo_1d.json",
        "yahoo_chart_premarket_aapl_6mo_1d.json",
    ],
)
def test_a_chart_outside_the_session_has_no_live_quote(name: str) -> None:
    with pytest.raises(NoData, match="outside the regular session"):
        parse_live_quote(_response(name), "AAPL")


# --- when the scheduler checks -----------------------------------------------------------


def _times(start: datetime, until: datetime, interval: timedelta) -> list[str]:
    times, now = [], start
    while (now := timing.next_check_time(now, interval)) < until:
        times.append(now.astimezone(NEW_YORK).strftime("%m-%d %H:%M"))
    return times


def test_checks_start_15_minutes_after_the_open_and_stop_before_the_close() -> None:
    day = [*_times(at_new_york(DAY, 0), at_new_york(DAY, 23), timedelta(minutes=15))]
    assert day[0] == "08-06 09:45" and day[1] == "08-06 10:00"
    assert day[-1] == "08-06 15:45" and len(day) == 25
    hourly = _times(at_new_york(DAY, 0), at_new_york(DAY, 23), timedelta(minutes=60))
    assert hourly == [f"08-06 {h:02d}:45" for h in range(9, 16)]
    # From mid-session, the next on the grid.
    assert timing.next_check_time(at_new_york(DAY, 11, 7), timedelta(minutes=15)) == at_new_york(
        DAY, 11, 15
    )


def test_checks_follow_the_calendar_holidays_and_early_closes() -> None:
    # Thanksgiving 2025 is no session; Black Friday closes at 13:00.
    times = _times(
        at_new_york(date(2025, 11, 26), 16),
        at_new_york(date(2025, 12, 1), 10),
        timedelta(minutes=15),
    )
    friday = [t for t in times if t.startswith("11-28")]
    assert friday[0] == "11-28 09:45" and friday[-1] == "11-28 12:45" and len(friday) == 13
    assert not any(t.startswith("11-27") for t in times)
    assert times[len(friday)] == "12-01 09:45"


def test_the_trigger_fires_at_the_check_times() -> None:
    trigger = timing.WatchTrigger(timedelta(minutes=15))
    fire = trigger.get_next_fire_time(None, at_new_york(date(2025, 8, 9), 12))  # a Saturday
    assert fire == at_new_york(date(2025, 8, 11), 9, 45)
    assert trigger.get_next_fire_time(fire, fire) == at_new_york(date(2025, 8, 11), 10)


def test_the_watch_is_scheduled_unless_turned_off() -> None:
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    settings = load_settings(_env_file=None, seed=False)
    scheduler = AsyncIOScheduler()
    assert timing.unavailable(settings) is None
    timing.schedule(scheduler, lambda: None, settings)
    assert isinstance(scheduler.get_job("watch").trigger, timing.WatchTrigger)
    assert timing.unavailable(load_settings(_env_file=None, watch_interval_minutes=0)) is not None
    assert "yahoo" in str(timing.unavailable(load_settings(_env_file=None, providers="stooq")))


def test_each_subscription_rule_is_watched_and_its_events_go_to_its_subscribers(
    scene: Scene,
) -> None:
    """^RUT under 10/30 SMA was golden on 2025-08-05 with a trigger close of 2,168.81
    (2.6 % below the close, on the watch list): 2,140 is a death cross watch for it and
    a golden one for 50/200."""
    default_hook, _ = subscribe(scene.db, "http://127.0.0.1:9/a", now=scene.clock.now)
    custom_hook, _ = subscribe(
        scene.db,
        "http://127.0.0.1:9/b",
        now=scene.clock.now,
        rule={"fast": 10, "slow": 30, "type": "sma"},
    )
    scene.live(2140.0)
    report = scene.check(at=AT)
    figures = {
        f.candidate.rule.key: (f.candidate.direction, round(f.candidate.trigger_close or 0, 2))
        for f in report.findings
    }
    assert figures == {"sma:50:200": ("golden", 2130.03), "sma:10:30": ("death", 2168.81)}
    written = {event.rule: event for event in report.written}
    assert {rule: event.data["direction"] for rule, event in written.items()} == {
        "sma:50:200": "golden",
        "sma:10:30": "death",
    }
    with scene.db.transaction(write=False) as session:
        deliveries = {(d.event_id, d.subscription_id) for d in session.scalars(select(Delivery))}
    assert deliveries == {
        (written["sma:50:200"].id, default_hook),
        (written["sma:10:30"].id, custom_hook),
    }


@pytest.mark.parametrize("minutes", [15, 0])
def test_the_leading_scheduler_adds_the_watch_job_unless_it_is_off(
    scene: Scene, minutes: int
) -> None:
    settings = scene.settings.model_copy(update={"watch_interval_minutes": minutes})
    jobs: list[Any] = []

    async def lead() -> None:
        stop = asyncio.Event()

        def started(scheduler: Any) -> None:
            jobs.append(scheduler.scheduler.get_job("watch"))
            stop.set()

        await run_scheduler(scene.db, settings, stop, clock=scene.clock, started=started)

    asyncio.run(lead())
    [job] = jobs
    if minutes:
        assert isinstance(job.trigger, timing.WatchTrigger)
        assert job.trigger.interval == timedelta(minutes=15)
        assert isinstance(job.func, LeadingWatch)
    else:
        assert job is None


@pytest.mark.skipif(PG_URL is None, reason="the insert race is PostgreSQL's unique-index wait")
def test_a_concurrent_insert_of_the_same_watch_returns_it_to_one_transaction(
    scene: Scene,
) -> None:
    """Transaction A inserts the event and holds it uncommitted; B's insert of the same
    id waits on the unique index; when A commits, B gets nothing back (so B enqueues
    nothing)."""
    scene.live(2140.0)
    [finding] = scene.check(at=AT, symbols=["^RUT"]).findings
    assert finding.event is not None
    data = {c: getattr(finding.event, c) for c in ("type", "symbol", "session", "rule", "data")}

    def twin() -> Event:
        return Event(id="evt_race", live=True, created_at=scene.clock.now, **data)

    other = Database(scene.settings.database_url)
    answers: list[list[Event]] = []
    try:
        with scene.db.transaction() as first:
            assert [e.id for e in insert_new(first, [twin()])] == ["evt_race"]

            def second() -> None:
                with other.transaction() as session:
                    answers.append(insert_new(session, [twin()]))

            thread = threading.Thread(target=second)
            thread.start()
            wait_until(lambda: _waiting_on_a_lock(scene.db), 30, "the second insert to wait")
        thread.join(30)
    finally:
        other.dispose()
    assert answers == [[]]
    with scene.db.transaction(write=False) as session:
        assert session.scalar(select(func.count()).where(Event.id == "evt_race")) == 1


def _waiting_on_a_lock(db: Database) -> bool:
    with db.engine.connect() as connection:
        waiting = connection.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                " AND datname = current_database() AND pid <> pg_backend_pid()"
            )
        ).scalar()
    return bool(waiting)


def test_the_status_page_shows_the_newest_check_with_live_prices_and_distances(
    scene: Scene,
) -> None:
    from fastapi.testclient import TestClient

    from app.api.app import create_app
    from tests.status.dom import parse

    scene.live(2140.0)
    scene.check(at=AT)  # the watch list, as the scheduler checks it
    with TestClient(create_app(scene.settings, db=scene.db, clock=scene.clock)) as client:
        response = client.get("/status")
    assert response.status_code == 200
    card = parse(response.text).by_id("watch")
    assert "Session 2025-08-06" in card.text()
    [row] = card.by_id("watch-list").find_all("tbody")[0].find_all("tr")
    cells = [cell.text().strip() for cell in row.find_all("td")]
    assert cells == [
        "^RUT",
        "sma:50:200",
        "golden",
        "2,140.00",
        "2,130.03",
        "-0.47%",
        "cross watch",
    ]


def test_a_check_is_shown_only_beside_the_store_handle_that_ran_it(scene: Scene) -> None:
    """Two apps (or two tests) on one store URL each show only their own checks."""
    from app.status import watch as status_watch

    scene.live(2140.0)
    scene.check(at=AT)
    other = Database(scene.settings.database_url)
    try:
        card = status_watch.newest(scene.db)
        assert card is not None and card.session == DAY
        assert status_watch.newest(other) is None
    finally:
        other.dispose()
