"""Stooq CSV against the real ^SPX download (CRLF, monthly early rows) and its errors."""

from __future__ import annotations

from datetime import UTC, date, datetime

import httpx
import pytest

from app.market.bars import FetchResult
from app.market.providers import (
    BadResponse,
    NoData,
    ProviderNotConfigured,
    ProviderUnavailable,
    StooqProvider,
    SymbolNotSupported,
)
from app.market.providers.stooq import stooq_symbol
from tests.market.providers.support import (
    Script,
    fixture_bytes,
    query,
    retry_policy,
    run_with_client,
)

AFTER_CLOSE = datetime(2025, 4, 7, 22, 48, tzinfo=UTC)


def fetch(
    script: Script,
    *,
    symbol: str = "^GSPC",
    since: date | None = None,
    now: datetime = AFTER_CLOSE,
    api_key: str | None = "k3y",
) -> FetchResult:
    policy, _ = retry_policy(2)

    async def body(client: httpx.AsyncClient) -> FetchResult:
        provider = StooqProvider(
            client, base_url="https://stooq.test/", api_key=api_key, timeout=5, retry=policy
        )
        return await provider.fetch(symbol, since, now=now)

    return run_with_client(script, body)


def spx() -> httpx.Response:
    return httpx.Response(200, content=fixture_bytes("stooq_spx_d.csv"))


def test_real_csv_with_crlf_is_parsed_and_request_carries_symbol_and_key() -> None:
    script = Script(spx())
    result = fetch(script)
    (request,) = script.requests
    assert request.url.path == "/q/d/l/"
    assert query(request) == {"s": "^spx", "i": "d", "apikey": "k3y"}
    assert (result.source, result.instrument) == ("stooq", "^GSPC")
    assert len(result.bars) == 90
    assert result.bars[0].session == date(1789, 5, 1)
    last = result.bars[-1]
    assert (last.session, last.open, last.high, last.low, last.close, last.volume) == (
        date(2025, 4, 7),
        4909.66,
        5246.19,
        4835.3,
        5062.25,
        3363837967.0,
    )


def test_since_is_sent_as_d1_and_applied() -> None:
    script = Script(spx())
    result = fetch(script, since=date(2025, 4, 3))
    assert query(script.requests[0])["d1"] == "20250403"
    assert [bar.session for bar in result.bars] == [
        date(2025, 4, 3),
        date(2025, 4, 4),
        date(2025, 4, 7),
    ]


def test_a_session_not_closed_at_now_is_dropped() -> None:
    result = fetch(Script(spx()), now=datetime(2025, 4, 7, 18, 0, tzinfo=UTC))
    assert result.bars[-1].session == date(2025, 4, 4)


def test_html_page_is_reported_as_such_not_parsed() -> None:
    page = httpx.Response(200, text="<!DOCTYPE html>\n<html><body>Get your apikey</body></html>")
    with pytest.raises(BadResponse) as caught:
        fetch(Script(page))
    assert caught.value.reason == (
        "Stooq answered with an HTML page instead of CSV (missing or invalid STOOQ_API_KEY?)"
    )


def test_daily_hits_limit_is_unavailable_but_not_retried() -> None:
    script = Script(httpx.Response(200, text="Exceeded the daily hits limit!\n"))
    with pytest.raises(ProviderUnavailable) as caught:
        fetch(script)
    assert caught.value.reason == "Stooq: exceeded the daily hits limit"
    assert not caught.value.retryable
    assert len(script.requests) == 1


def test_no_data_body_is_no_data() -> None:
    with pytest.raises(NoData, match=r"^Stooq has no data for iwm.us$"):
        fetch(Script(httpx.Response(200, text="No data")), symbol="IWM")


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("", "Stooq answered with an empty body"),
        ("Symbol,Date\r\n", "Stooq answered with something other than CSV: 'Symbol,Date'"),
        ("Date,Open,High\r\n", "Stooq CSV has unexpected columns: Date,Open,High"),
        (
            "Date,Open,High,Low,Close,Volume\r\n2025-04-07,1,2,0.5,abc,0\r\n",
            "Stooq CSV line 2 cannot be read: '2025-04-07,1,2,0.5,abc,0'",
        ),
    ],
)
def test_malformed_bodies_are_bad_responses(body: str, reason: str) -> None:
    with pytest.raises(BadResponse) as caught:
        fetch(Script(httpx.Response(200, text=body)))
    assert caught.value.reason == reason


def test_header_only_is_no_data() -> None:
    with pytest.raises(NoData, match="a CSV header but no rows for \\^spx"):
        fetch(Script(httpx.Response(200, text="Date,Open,High,Low,Close,Volume\r\n")))


def test_server_error_is_retried() -> None:
    script = Script(httpx.Response(502, text="Bad Gateway"), spx())
    assert fetch(script).bars[-1].close == 5062.25
    assert len(script.requests) == 2


def test_missing_key_fails_before_any_request() -> None:
    script = Script()
    with pytest.raises(ProviderNotConfigured, match="CROSSWATCH_STOOQ_API_KEY"):
        fetch(script, api_key=None)
    assert script.requests == []


def test_symbol_map() -> None:
    assert stooq_symbol("^GSPC") == "^spx"
    assert stooq_symbol("^IXIC") == "^ndq"
    assert stooq_symbol("IWM") == "iwm.us"
    assert stooq_symbol("brk-b") == "brk-b.us"
    for unsupported in ("^RUT", "GS2C.DE", "^VXAPL"):
        with pytest.raises(SymbolNotSupported) as caught:
            stooq_symbol(unsupported)
        assert caught.value.reason == f"Stooq has no known symbol for {unsupported}"


def test_unsupported_symbol_makes_no_request() -> None:
    script = Script()
    with pytest.raises(SymbolNotSupported):
        fetch(script, symbol="^RUT")
    assert script.requests == []
