"""FRED observations: the real envelope (GDP capture) and SP500-shaped bodies built in it."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

import httpx
import pytest

from app.market.bars import FetchResult
from app.market.providers import (
    BadResponse,
    FredProvider,
    NoData,
    ProviderNotConfigured,
    ProviderUnavailable,
    SymbolNotSupported,
)
from tests.market.providers.support import (
    Script,
    fixture_bytes,
    query,
    retry_policy,
    run_with_client,
)

NOW = datetime(2025, 1, 21, 12, 0, tzinfo=UTC)
BAD_KEY = (
    "Bad Request.  The value for variable api_key is not registered.  "
    "Read https://fred.stlouisfed.org/docs/api/api_key.html for more information."
)


def fetch(
    script: Script, *, symbol: str = "^GSPC", since: date | None = None, api_key: str | None = "k"
) -> FetchResult:
    policy, _ = retry_policy(1)

    async def body(client: httpx.AsyncClient) -> FetchResult:
        provider = FredProvider(
            client, base_url="https://fred.test", api_key=api_key, timeout=5, retry=policy
        )
        return await provider.fetch(symbol, since, now=NOW)

    return run_with_client(script, body)


def sp500_page(
    values: list[tuple[str, str]], *, count: int | None = None, offset: int = 0
) -> httpx.Response:
    """The captured envelope with SP500-like observations in place of GDP's."""
    envelope: dict[str, Any] = json.loads(fixture_bytes("fred_gdp_observations.json"))
    stamp = envelope["observations"][0]
    envelope["observations"] = [{**stamp, "date": day, "value": value} for day, value in values]
    envelope["count"] = len(values) if count is None else count
    envelope["offset"] = offset
    return httpx.Response(200, json=envelope)


def test_request_parameters_and_missing_values_skipped() -> None:
    script = Script(
        sp500_page([("2025-01-16", "5937.34"), ("2025-01-17", "5996.66"), ("2025-01-20", ".")])
    )
    result = fetch(script, since=date(2025, 1, 16))
    (request,) = script.requests
    assert request.url.path == "/fred/series/observations"
    assert query(request) == {
        "series_id": "SP500",
        "api_key": "k",
        "file_type": "json",
        "sort_order": "asc",
        "limit": "100000",
        "offset": "0",
        "observation_start": "2025-01-16",
    }
    assert (result.source, result.instrument) == ("fred", "^GSPC")
    assert [(bar.session, bar.close, bar.open) for bar in result.bars] == [
        (date(2025, 1, 16), 5937.34, None),
        (date(2025, 1, 17), 5996.66, None),
    ]


def test_the_real_envelope_parses_and_dots_are_skipped() -> None:
    real = httpx.Response(200, content=fixture_bytes("fred_gdp_observations.json"))
    result = fetch(Script(real), symbol="^IXIC")
    assert len(result.bars) == 315 - 4
    assert result.bars[0].session == date(1947, 1, 1)
    assert result.bars[-1].close == 29374.914


def test_pages_until_count_is_read() -> None:
    script = Script(
        sp500_page([("2025-01-15", "5949.91"), ("2025-01-16", "5937.34")], count=3),
        sp500_page([("2025-01-17", "5996.66")], count=3, offset=2),
    )
    result = fetch(script)
    assert [query(request)["offset"] for request in script.requests] == ["0", "2"]
    assert [bar.close for bar in result.bars] == [5949.91, 5937.34, 5996.66]


def test_400_error_message_is_the_reason() -> None:
    body = fixture_bytes("fred_error_400_missing_series_id.json")
    with pytest.raises(BadResponse) as caught:
        fetch(Script(httpx.Response(400, content=body)))
    assert caught.value.reason == (
        "FRED rejected the request: HTTP 400: Bad Request.  Variable series_id has not been set."
    )


def test_bad_key_message_is_included() -> None:
    body = {"error_code": 400, "error_message": BAD_KEY}
    with pytest.raises(BadResponse, match="api_key is not registered"):
        fetch(Script(httpx.Response(400, json=body)))


def test_only_missing_values_is_no_data() -> None:
    with pytest.raises(NoData, match="fred returned no closed sessions for \\^GSPC"):
        fetch(Script(sp500_page([("2025-01-20", ".")])))


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (httpx.Response(200, text=""), "FRED answered HTTP 200 with an empty body"),
        (
            httpx.Response(200, text="<html>"),
            "FRED answered HTTP 200 with a body that is not JSON: <html>",
        ),
        (httpx.Response(200, json={"count": 1}), "FRED answered without observations for SP500"),
    ],
)
def test_malformed_bodies(answer: httpx.Response, reason: str) -> None:
    with pytest.raises(BadResponse) as caught:
        fetch(Script(answer))
    assert caught.value.reason == reason


def test_server_errors_are_retried_then_unavailable() -> None:
    script = Script(httpx.Response(500, text="oops"), httpx.Response(500, text="oops"))
    with pytest.raises(ProviderUnavailable, match="FRED server error: HTTP 500 oops"):
        fetch(script)
    assert len(script.requests) == 2


def test_unsupported_symbols_and_missing_key_make_no_request() -> None:
    script = Script()
    with pytest.raises(SymbolNotSupported, match="FRED has no series for \\^RUT"):
        fetch(script, symbol="^RUT")
    with pytest.raises(SymbolNotSupported):
        fetch(script, symbol="IWM")
    with pytest.raises(ProviderNotConfigured, match="CROSSWATCH_FRED_API_KEY"):
        fetch(script, api_key=None)
    assert script.requests == []
