"""validate_bars: whole-response refusals, per-bar quarantine, reasons word for word."""

from __future__ import annotations

import asyncio
import math
from datetime import UTC, date, datetime

import httpx
import pytest

from app.market.bars import Bar
from app.market.providers import YahooProvider
from app.market.validation import BadData, validate_bars
from tests.market.providers.support import FIXTURES

# Tue 2025-10-28, 17:00 UTC = 13:00 New York: that session is running.
IN_SESSION = datetime(2025, 10, 28, 17, 0, tzinfo=UTC)
EVENING = datetime(2025, 10, 28, 22, 0, tzinfo=UTC)


def bars(*pairs: tuple[str, float]) -> list[Bar]:
    return [Bar(session=date.fromisoformat(day), close=close) for day, close in pairs]


def days(items: list[Bar]) -> list[str]:
    return [bar.session.isoformat() for bar in items]


def test_empty_response_is_refused() -> None:
    with pytest.raises(BadData) as caught:
        validate_bars([], now=EVENING)
    assert caught.value.reason == "empty response: no bars"


def test_duplicate_sessions_refuse_the_whole_response() -> None:
    given = bars(("2025-10-24", 1.0), ("2025-10-27", 2.0), ("2025-10-27", 2.1))
    with pytest.raises(BadData, match=r"^duplicate sessions in response: 2025-10-27$"):
        validate_bars(given, now=EVENING)


def test_unordered_sessions_refuse_the_whole_response() -> None:
    given = bars(("2025-10-27", 1.0), ("2025-10-24", 2.0))
    with pytest.raises(BadData) as caught:
        validate_bars(given, now=EVENING)
    assert caught.value.reason == "sessions out of order in response: 2025-10-24 after 2025-10-27"


def test_bad_closes_are_quarantined_one_by_one() -> None:
    given = bars(
        ("2025-10-20", 100.0),
        ("2025-10-21", math.nan),
        ("2025-10-22", math.inf),
        ("2025-10-23", 0.0),
        ("2025-10-24", -5.0),
        ("2025-10-27", 101.0),
    )
    result = validate_bars(given, now=EVENING)
    assert days(result.accepted) == ["2025-10-20", "2025-10-27"]
    assert result.rejected == [
        (date(2025, 10, 21), "close is nan on 2025-10-21"),
        (date(2025, 10, 22), "close is inf on 2025-10-22"),
        (date(2025, 10, 23), "non-positive close 0 on 2025-10-23"),
        (date(2025, 10, 24), "non-positive close -5 on 2025-10-24"),
    ]


def test_weekend_and_holiday_are_not_sessions() -> None:
    given = bars(("2025-07-03", 1.0), ("2025-07-04", 1.0), ("2025-07-05", 1.0), ("2025-07-07", 1.0))
    result = validate_bars(given, now=EVENING)
    assert days(result.accepted) == ["2025-07-03", "2025-07-07"]
    assert result.rejected == [
        (date(2025, 7, 4), "2025-07-04 is not an XNYS session (weekend or holiday)"),
        (date(2025, 7, 5), "2025-07-05 is not an XNYS session (weekend or holiday)"),
    ]


def test_live_session_is_dropped_until_its_close() -> None:
    given = bars(("2025-10-27", 268.81), ("2025-10-28", 269.22))
    during = validate_bars(given, now=IN_SESSION)
    assert days(during.accepted) == ["2025-10-27"]
    assert during.rejected == [
        (date(2025, 10, 28), "session 2025-10-28 has not closed yet (live intraday value)")
    ]
    assert days(validate_bars(given, now=EVENING).accepted) == ["2025-10-27", "2025-10-28"]


def test_early_close_day_counts_from_the_early_close() -> None:
    # Fri 2025-11-28 closes at 13:00 New York (18:00 UTC).
    given = bars(("2025-11-26", 1.0), ("2025-11-28", 1.0))
    before = validate_bars(given, now=datetime(2025, 11, 28, 17, 59, tzinfo=UTC))
    after = validate_bars(given, now=datetime(2025, 11, 28, 18, 0, tzinfo=UTC))
    assert days(before.accepted) == ["2025-11-26"]
    assert days(after.accepted) == ["2025-11-26", "2025-11-28"]


def test_future_sessions_are_rejected() -> None:
    result = validate_bars(bars(("2025-10-27", 1.0), ("2025-10-30", 1.0)), now=EVENING)
    assert result.rejected == [(date(2025, 10, 30), "session 2025-10-30 is in the future")]


def test_spike_and_reversal_is_a_bad_tick() -> None:
    given = bars(("2025-10-20", 100.0), ("2025-10-21", 150.0), ("2025-10-22", 101.0))
    result = validate_bars(given, now=EVENING)
    assert days(result.accepted) == ["2025-10-20", "2025-10-22"]
    assert result.rejected == [
        (
            date(2025, 10, 21),
            "bad tick on 2025-10-21: close 150 is +50.0% from the previous close 100 and "
            "+48.5% from the next close 101 (limit 25%)",
        )
    ]


def test_dip_and_reversal_is_a_bad_tick() -> None:
    given = bars(("2025-10-20", 100.0), ("2025-10-21", 60.0), ("2025-10-22", 99.0))
    assert days(validate_bars(given, now=EVENING).accepted) == ["2025-10-20", "2025-10-22"]


def test_a_lasting_move_is_not_a_bad_tick() -> None:
    given = bars(("2025-10-20", 100.0), ("2025-10-21", 140.0), ("2025-10-22", 141.0))
    assert validate_bars(given, now=EVENING).rejected == []


def test_the_newest_bar_is_never_judged_a_bad_tick() -> None:
    given = bars(("2025-10-20", 100.0), ("2025-10-21", 200.0))
    assert validate_bars(given, now=EVENING).rejected == []


def test_last_stored_close_is_the_left_neighbour() -> None:
    given = bars(("2025-10-21", 150.0), ("2025-10-22", 100.0))
    result = validate_bars(given, now=EVENING, last_stored=(date(2025, 10, 20), 100.0))
    assert days(result.accepted) == ["2025-10-22"]
    overlapping = validate_bars(given, now=EVENING, last_stored=(date(2025, 10, 21), 100.0))
    assert overlapping.rejected == []


def test_threshold_is_a_parameter() -> None:
    given = bars(("2025-10-20", 100.0), ("2025-10-21", 115.0), ("2025-10-22", 100.0))
    assert validate_bars(given, now=EVENING).rejected == []
    assert len(validate_bars(given, now=EVENING, bad_tick_pct=10).rejected) == 1


def test_real_yahoo_history_passes_untouched() -> None:
    body = (FIXTURES / "yahoo_chart_after_close_same_evening_aapl_6mo_1d.json").read_bytes()
    now = datetime(2025, 10, 29, 23, 53, tzinfo=UTC)

    async def fetch() -> list[Bar]:
        transport = httpx.MockTransport(lambda _: httpx.Response(200, content=body))
        async with httpx.AsyncClient(transport=transport) as client:
            provider = YahooProvider(client, base_url="https://yahoo.test")
            return (await provider.fetch("AAPL", None, now=now)).bars

    fetched = asyncio.run(fetch())
    result = validate_bars(fetched, now=now)
    assert result.rejected == []
    assert result.accepted == fetched
    assert len(fetched) == 127


def test_a_weekday_before_the_first_nyse_session_is_quarantined() -> None:
    # 0001-01-01 is a Monday, and the calendar counts old weekdays as sessions: the
    # floor is what refuses it.
    given = bars(("0001-01-01", 1.0), ("1792-05-17", 1.0), ("2025-10-27", 1.0))
    result = validate_bars(given, now=EVENING)
    assert days(result.accepted) == ["1792-05-17", "2025-10-27"]
    assert result.rejected == [
        (date(1, 1, 1), "0001-01-01 is before the first NYSE session (1792-05-17)")
    ]
