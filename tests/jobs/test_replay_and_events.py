"""Events on ingest: deterministic ids, live only for new sessions, retractions, replay."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, date, datetime

from sqlalchemy import select

from app.db.engine import Database
from app.jobs import ingest
from app.market.service import read_csv_file
from app.signals.models import Event
from tests.conftest import data_file, fixed_clock, run_cli

GOLDEN_2025 = date(2025, 8, 6)


def _events(db: Database) -> list[Event]:
    with db.transaction(write=False) as session:
        return list(session.scalars(select(Event).order_by(Event.session, Event.type)))


def _replay(db: Database, start: date, end: date) -> list[Event]:
    bars = read_csv_file(data_file("rut_daily.csv"))
    return asyncio.run(
        ingest.replay(db, "^RUT", bars, start=start, end=end, interval=0, clock=fixed_clock)
    )


def test_replay_finds_the_2025_golden_cross_once_and_rerun_adds_nothing(db: Database) -> None:
    live = _replay(db, date(2025, 7, 1), date(2025, 8, 29))
    crosses = [(e.type, e.session) for e in live if e.type.endswith("_cross")]
    assert crosses == [("golden_cross", GOLDEN_2025)]
    assert ("cross_approaching", date(2025, 7, 25)) in [(e.type, e.session) for e in live]
    stored = _events(db)
    assert [e.live for e in stored if e.session < date(2025, 7, 1)] == [False] * len(
        [e for e in stored if e.session < date(2025, 7, 1)]
    )
    golden = next(e for e in stored if e.type == "golden_cross" and e.session == GOLDEN_2025)
    assert golden.live is True
    assert golden.data["close"] == 2221.29
    assert golden.data["rule"] == {"fast": 50, "slow": 200, "type": "sma"}
    assert golden.data["source"] == "replay"
    assert golden.data["instrument"] == "^RUT"

    again = _replay(db, date(2025, 7, 1), date(2025, 8, 29))
    assert again == []
    assert len(_events(db)) == len(stored)


def test_revision_that_undoes_a_cross_retracts_it(db: Database) -> None:
    bars = read_csv_file(data_file("rut_daily.csv"))
    upto = [b for b in bars if b.session <= GOLDEN_2025]
    with db.transaction() as session:
        ingest.store_and_detect(session, "^RUT", upto[:-1], source="import", clock=fixed_clock)
    with db.transaction() as session:
        _, events = ingest.store_and_detect(
            session, "^RUT", upto[-1:], source="yahoo", clock=fixed_clock
        )
    golden = next(e for e in events if e.type == "golden_cross")
    assert golden.live and golden.session == GOLDEN_2025

    revised = [*upto[-6:-1], replace(upto[-1], close=2000.0)]
    later = datetime(2026, 8, 25, tzinfo=UTC)
    with db.transaction() as session:
        report, events = ingest.store_and_detect(
            session, "^RUT", revised, source="yahoo", clock=lambda: later
        )
    assert report.counts.revised == 1
    retraction = next(e for e in events if e.type == "retracted")
    assert retraction.data["original_id"] == golden.id
    assert retraction.data["original_type"] == "golden_cross"
    assert retraction.live
    stored = {e.id: e for e in _events(db)}
    assert stored[golden.id].retracted_by == retraction.id

    with db.transaction() as session:
        _, again = ingest.store_and_detect(
            session, "^RUT", revised, source="yahoo", clock=lambda: later
        )
    assert again == []


def test_replay_command_prints_live_events(database_url: str) -> None:
    result = run_cli(
        "replay",
        "^RUT",
        str(data_file("rut_daily.csv")),
        "--from",
        "2025-07-01",
        "--to",
        "2025-08-29",
        "--interval",
        "0",
        database_url=database_url,
    )
    assert result.returncode == 0, result.stderr
    assert "2025-08-06 golden_cross ^RUT evt_" in result.stdout
    assert result.stdout.count("golden_cross") == 1
    bad = run_cli(
        "replay",
        "^RUT",
        str(data_file("rut_daily.csv")),
        "--from",
        "2025-13-01",
        database_url=database_url,
    )
    assert bad.returncode == 1
    assert bad.stderr.startswith("error: --from/--to must be YYYY-MM-DD")
