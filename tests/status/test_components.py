"""Judging components from poll records, without a store."""

from __future__ import annotations

from datetime import datetime, timedelta

from app.market.calendar import close_delay
from app.market.models import PollResult, PollRun
from app.status import components
from app.status.components import Run
from tests.status.conftest import at

DELAY = close_delay(datetime(2026, 1, 1, 17, 15).time())
MONDAY_NOON = at(2026, 8, 24, 12)  # the poll due Friday 21:15 UTC has run


def run(run_id: int, started: datetime, status: str, *results: PollResult) -> Run:
    record = PollRun(id=run_id, trigger="scheduled", started_at=started, status=status)
    record.finished_at = started + timedelta(seconds=4)
    return Run(record, list(results))


def result(symbol: str, source: str | None, *failed: tuple[str, str]) -> PollResult:
    return PollResult(
        symbol=symbol,
        source=source,
        attempts=[{"provider": p, "instrument": symbol, "reason": r} for p, r in failed],
        error=None if source else "no provider could fetch",
    )


def test_a_poll_on_time_is_operational_and_a_missed_one_is_not() -> None:
    friday = run(1, at(2026, 8, 21, 21, 15), "ok")
    assert components.scheduler([friday], MONDAY_NOON, DELAY).state == "operational"
    tuesday = at(2026, 8, 25, 12, 0)  # Monday's 21:15 poll never ran
    late = components.scheduler([friday], tuesday, DELAY)
    assert late.state == "degraded"
    assert "no poll since the one due 2026-08-24 21:15 UTC (14 h late)" in late.reason
    assert components.scheduler([friday], at(2026, 8, 25, 22), DELAY).state == "down"


def test_a_poll_stuck_running_is_degraded() -> None:
    stuck = run(2, at(2026, 8, 24, 10), "running")
    stuck.run.finished_at = None
    component = components.scheduler([stuck], MONDAY_NOON, DELAY)
    assert (component.state, component.reason) == (
        "degraded",
        "poll #2 has been running for 2 h",
    )


def test_a_provider_is_judged_by_the_newest_poll_that_tried_it() -> None:
    older = run(1, at(2026, 8, 20, 21, 15), "ok", result("^RUT", "stooq"))
    newer = run(
        2,
        at(2026, 8, 21, 21, 15),
        "ok",
        result("^RUT", "yahoo", ("stooq", "HTTP 503")),
        result("^GSPC", "stooq"),
    )
    stooq = components.provider("stooq", [newer, older])
    assert stooq.state == "degraded"
    assert stooq.reason == "failed for ^RUT in poll #2 (2026-08-21 21:15 UTC): HTTP 503"
    assert components.provider("stooq", [older]).state == "operational"
    assert components.provider("fred", [newer, older]).state == "unknown"
