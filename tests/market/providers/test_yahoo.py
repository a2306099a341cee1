"""Yahoo chart API against real captured bodies (tests/fixtures/providers/SOURCES.md)."""

from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime

import httpx
import pytest

from app.market.bars import FetchResult
from app.market.providers import (
    BadResponse,
    NoData,
    ProviderUnavailable,
    SymbolNotSupported,
    YahooProvider,
)
from app.market.providers.yahoo import FULL_HISTORY_PERIOD1, float32_decimal
from app.market.validation import validate_bars
from tests.market.providers.support import (
    RecordingSleep,
    Script,
    fixture_bytes,
    json_response,
    query,
    retry_policy,
    run_with_client,
    sessions,
)

BASE = "https://yahoo.test"
LIVE = "yahoo_chart_live_session_aapl_6mo_1d.json"
AFTER_CLOSE = "yahoo_chart_after_close_same_evening_aapl_6mo_1d.json"
WEEKEND = "yahoo_chart_next_day_weekend_aapl_6mo_1d.json"
PREMARKET = "yahoo_chart_premarket_aapl_6mo_1d.json"
NULLS = "yahoo_chart_live_session_nulls_gs2c_de_5d_1d.json"


def fetch(
    script: Script,
    *,
    symbol: str = "AAPL",
    since: date | None = None,
    now: datetime,
    retries: int = 2,
) -> tuple[FetchResult, RecordingSleep]:
    policy, sleep = retry_policy(retries)

    async def body(client: httpx.AsyncClient) -> FetchResult:
        provider = YahooProvider(client, base_url=BASE, timeout=5, retry=policy)
        return await provider.fetch(symbol, since, now=now)

    return run_with_client(script, body), sleep


def chart_body(name: str) -> dict[str, object]:
    body: dict[str, object] = json.loads(fixture_bytes(name))
    return body


def test_request_carries_the_documented_parameters() -> None:
    now = datetime(2025, 10, 28, 17, 0, tzinfo=UTC)
    script = Script(json_response(LIVE))
    fetch(script, since=date(2025, 10, 1), now=now)
    (request,) = script.requests
    assert request.method == "GET"
    assert request.url.host == "yahoo.test"
    assert request.url.path == "/v8/finance/chart/AAPL"
    assert query(request) == {
        "period1": str(int(datetime(2025, 10, 1, tzinfo=UTC).timestamp())),
        "period2": str(int(now.timestamp())),
        "interval": "1d",
        "includePrePost": "false",
        "events": "div,split",
    }


def test_full_history_and_index_symbol_is_percent_encoded() -> None:
    now = datetime(2021, 11, 21, 14, 2, tzinfo=UTC)
    script = Script(json_response("yahoo_chart_qqq_etf_1d.json"))
    fetch(script, symbol="^GSPC", now=now)
    (request,) = script.requests
    assert request.url.raw_path.startswith(b"/v8/finance/chart/%5EGSPC?")
    assert query(request)["period1"] == str(FULL_HISTORY_PERIOD1)


def test_live_session_drops_the_partial_last_bar() -> None:
    # Captured 2025-10-28 16:48:22 UTC, mid-session: the last row is live.
    result, _ = fetch(Script(json_response(LIVE)), now=datetime(2025, 10, 28, 17, 0, tzinfo=UTC))
    assert result.source == "yahoo"
    assert result.instrument == "AAPL"
    assert len(result.bars) == 127
    assert result.bars[0].session == date(2025, 4, 28)
    last = result.bars[-1]
    assert last.session == date(2025, 10, 27)
    assert (last.close, last.open, last.volume) == (268.81, 264.88, 44701700.0)


def test_after_close_same_evening_keeps_the_day_once_closed() -> None:
    # rmt 20:00:01 >= regular end 20:00:00 and XNYS closed at 20:00 UTC.
    result, _ = fetch(
        Script(json_response(AFTER_CLOSE)), now=datetime(2025, 10, 29, 23, 53, tzinfo=UTC)
    )
    by_day = {bar.session: bar for bar in result.bars}
    assert result.bars[-1].session == date(2025, 10, 29)
    assert result.bars[-1].close == 269.7
    revised = by_day[date(2025, 10, 28)]  # revised after its session (live showed 269.135)
    assert (revised.open, revised.volume) == (268.99, 41534800.0)


def test_after_close_body_with_a_clock_still_in_session_drops_the_day() -> None:
    result, _ = fetch(
        Script(json_response(AFTER_CLOSE)), now=datetime(2025, 10, 29, 19, 0, tzinfo=UTC)
    )
    assert result.bars[-1].session == date(2025, 10, 28)


def test_next_day_weekend_keeps_the_normalised_friday_bar() -> None:
    result, _ = fetch(
        Script(json_response(WEEKEND)), now=datetime(2025, 10, 11, 21, 45, tzinfo=UTC)
    )
    last = result.bars[-1]
    assert last.session == date(2025, 10, 10)
    assert (last.close, last.volume) == (245.27, 61782400.0)


def test_premarket_has_no_bar_for_today_and_keeps_yesterday() -> None:
    result, _ = fetch(
        Script(json_response(PREMARKET)), now=datetime(2025, 8, 26, 13, 20, tzinfo=UTC)
    )
    assert result.bars[-1].session == date(2025, 8, 25)
    assert result.bars[-1].close == 227.16


def test_trading_date_uses_exchange_time_zone_not_gmtoffset() -> None:
    # meta.gmtoffset is EDT, the bar is at 14:30 UTC (EST); XETRA bars are at 09:00 CEST.
    result, _ = fetch(
        Script(json_response("yahoo_chart_aapl_1d_captured_in_session_dst_mismatch.json")),
        now=datetime(2025, 3, 24, 13, 51, 33, tzinfo=UTC),
    )
    assert sessions(result.bars) == ["2022-02-22"]
    assert result.bars[0].close == 164.32


def test_null_rows_and_the_live_row_of_a_non_us_listing_are_dropped() -> None:
    # GS2C.DE: 09-29 and 09-30 entirely null, 10-01 live (rmt < regular end).
    result, _ = fetch(
        Script(json_response(NULLS)),
        symbol="GS2C.DE",
        now=datetime(2025, 10, 1, 12, 40, tzinfo=UTC),
    )
    assert sessions(result.bars) == ["2025-09-25", "2025-09-26"]
    assert [bar.close for bar in result.bars] == [22.39, 22.695]


def test_float32_noise_is_removed_but_real_decimals_kept() -> None:
    result, _ = fetch(
        Script(json_response("yahoo_chart_qqq_etf_1d.json")),
        symbol="QQQ",
        now=datetime(2025, 2, 20, 11, 47, tzinfo=UTC),
    )
    assert sessions(result.bars) == ["2020-01-02"]
    assert result.bars[0].close == 216.16
    assert float32_decimal(269.135009765625) == 269.135
    assert float32_decimal(5069.89990234375) == 5069.9
    assert float32_decimal(0.1) == 0.1
    assert math.isnan(float32_decimal(math.nan))


def test_a_null_close_among_values_becomes_nan_and_validation_rejects_it() -> None:
    body = chart_body(WEEKEND)
    quote = body["chart"]["result"][0]["indicators"]["quote"][0]  # type: ignore[index]
    quote["close"][-2] = None
    now = datetime(2025, 10, 11, 21, 45, tzinfo=UTC)
    result, _ = fetch(Script(httpx.Response(200, json=body)), now=now)
    assert math.isnan(result.bars[-2].close)
    checked = validate_bars(result.bars, now=now)
    assert checked.rejected == [(date(2025, 10, 9), "close is nan on 2025-10-09")]


def test_empty_range_without_timestamp_is_no_data() -> None:
    script = Script(json_response("yahoo_chart_index_vxapl_empty_range_no_timestamp.json"))
    with pytest.raises(NoData) as caught:
        fetch(script, symbol="^VXAPL", now=datetime(2021, 11, 21, 14, 2, tzinfo=UTC))
    assert caught.value.reason == "Yahoo returned no bars for ^VXAPL in the requested range"
    assert not caught.value.retryable


def test_all_bars_before_since_or_live_is_no_data() -> None:
    with pytest.raises(NoData, match="no closed sessions for AAPL on or after 2025-10-28"):
        fetch(
            Script(json_response(LIVE)),
            since=date(2025, 10, 28),
            now=datetime(2025, 10, 28, 17, 0, tzinfo=UTC),
        )


def test_404_not_found_is_no_data_with_yahoos_description_and_not_retried() -> None:
    script = Script(json_response("yahoo_chart_error_notfound_404.json", status=404))
    with pytest.raises(NoData) as caught:
        fetch(script, symbol="SI", now=datetime(2024, 9, 16, 12, 14, tzinfo=UTC))
    assert caught.value.reason == (
        "Yahoo has no data for SI: Not Found: No data found, symbol may be delisted"
    )
    assert len(script.requests) == 1


def test_400_range_before_listing_is_no_data() -> None:
    script = Script(json_response("yahoo_chart_error_badrequest_400.json", status=400))
    with pytest.raises(NoData, match="Data doesn't exist for startDate = 1577836800"):
        fetch(script, symbol="BEKE", now=datetime(2021, 11, 21, tzinfo=UTC))


def test_other_400_is_a_bad_response() -> None:
    body = {"chart": {"result": None, "error": {"code": "Bad Request", "description": "x"}}}
    with pytest.raises(BadResponse, match="Yahoo rejected the request for AAPL: HTTP 400"):
        fetch(Script(httpx.Response(400, json=body)), now=datetime(2025, 1, 2, tzinfo=UTC))


def test_401_invalid_crumb_is_retried_then_unavailable() -> None:
    answers = [json_response("yahoo_401_invalid_crumb.from_issue.json", 401) for _ in range(3)]
    script = Script(*answers)
    with pytest.raises(ProviderUnavailable) as caught:
        fetch(script, now=datetime(2025, 1, 2, tzinfo=UTC), retries=2)
    assert caught.value.reason == (
        "Yahoo refused the request: HTTP 401: Unauthorized: Invalid Crumb"
    )
    assert caught.value.retryable
    assert len(script.requests) == 3


def test_429_plain_text_is_retried_with_backoff_and_then_succeeds() -> None:
    limited = httpx.Response(
        429, content=fixture_bytes("yahoo_429_edge_too_many_requests.from_issue.txt")
    )
    script = Script(limited, json_response(WEEKEND))
    result, sleep = fetch(script, now=datetime(2025, 10, 11, 21, 45, tzinfo=UTC))
    assert result.bars[-1].session == date(2025, 10, 10)
    assert len(script.requests) == 2
    assert len(sleep.delays) == 1 and 1 <= sleep.delays[0] <= 2  # 1 s + up to 1 s jitter


def test_429_reason_quotes_the_edge_text() -> None:
    limited = fixture_bytes("yahoo_429_edge_too_many_requests.from_issue.txt")
    script = Script(*(httpx.Response(429, content=limited) for _ in range(3)))
    with pytest.raises(ProviderUnavailable) as caught:
        fetch(script, now=datetime(2025, 1, 2, tzinfo=UTC), retries=2)
    assert caught.value.reason == "Yahoo rate limit: HTTP 429 Edge: Too Many Requests"


def test_retry_after_header_stretches_the_wait() -> None:
    limited = httpx.Response(429, text="Too Many Requests\n", headers={"Retry-After": "7"})
    _, sleep = fetch(
        Script(limited, json_response(WEEKEND)), now=datetime(2025, 10, 11, 22, tzinfo=UTC)
    )
    assert sleep.delays == [7.0]


def test_5xx_and_timeouts_are_retried() -> None:
    script = Script(
        httpx.Response(503, text="Service Unavailable"),
        httpx.ReadTimeout("read timed out"),
        json_response(WEEKEND),
    )
    result, sleep = fetch(script, now=datetime(2025, 10, 11, 22, tzinfo=UTC), retries=2)
    assert result.bars[-1].session == date(2025, 10, 10)
    assert len(sleep.delays) == 2 and sleep.delays[1] >= 2  # exponential


def test_connection_error_exhausts_retries_with_a_reason() -> None:
    script = Script(*(httpx.ConnectError("connection refused") for _ in range(2)))
    with pytest.raises(ProviderUnavailable) as caught:
        fetch(script, now=datetime(2025, 1, 2, tzinfo=UTC), retries=1)
    assert caught.value.reason == "Yahoo could not be reached: ConnectError: connection refused"


def test_timeout_reason_names_the_limit() -> None:
    with pytest.raises(ProviderUnavailable, match=r"Yahoo did not answer within 5 s"):
        fetch(Script(httpx.ConnectTimeout("t")), now=datetime(2025, 1, 2, tzinfo=UTC), retries=0)


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (
            httpx.Response(200, text="<!DOCTYPE html><html><body>consent</body></html>"),
            "Yahoo answered HTTP 200 with an HTML page instead of JSON",
        ),
        (httpx.Response(200, text=""), "Yahoo answered HTTP 200 with an empty body"),
        (
            httpx.Response(200, text="oops"),
            "Yahoo answered HTTP 200 with a body that is not JSON: oops",
        ),
        (
            httpx.Response(200, json={"chart": {"result": [], "error": None}}),
            "Yahoo answered without a chart result for AAPL",
        ),
        (
            httpx.Response(200, json={"quoteResponse": {}}),
            'Yahoo answered HTTP 200 without a chart: {"quoteResponse":{}}',
        ),
    ],
)
def test_malformed_bodies_are_bad_responses(answer: httpx.Response, reason: str) -> None:
    script = Script(answer)
    with pytest.raises(BadResponse) as caught:
        fetch(script, now=datetime(2025, 1, 2, tzinfo=UTC))
    assert caught.value.reason == reason
    assert len(script.requests) == 1  # not retryable


def test_arrays_that_do_not_match_the_timestamps_are_a_bad_response() -> None:
    body = chart_body(WEEKEND)
    body["chart"]["result"][0]["indicators"]["quote"][0]["close"].pop()  # type: ignore[index]
    with pytest.raises(BadResponse, match="'close' does not match the timestamps"):
        fetch(Script(httpx.Response(200, json=body)), now=datetime(2025, 10, 12, tzinfo=UTC))


def test_symbols_that_cannot_be_a_path_segment_are_refused_without_a_request() -> None:
    script = Script()
    with pytest.raises(SymbolNotSupported):
        fetch(script, symbol="../AAPL", now=datetime(2025, 1, 2, tzinfo=UTC))
    assert script.requests == []
