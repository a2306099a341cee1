"""The fallback chain over real providers, with vendors answered by one mock transport."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

import httpx
import pytest

from app.market.providers import (
    AllProvidersFailed,
    Attempt,
    ChainResult,
    CsvDirProvider,
    FredProvider,
    ProviderChain,
    StooqProvider,
    YahooProvider,
    build_chain,
    build_providers,
)
from app.settings import load_settings
from tests.market.providers.support import json_response, retry_policy, run_with_client

NOW = datetime(2025, 10, 11, 21, 45, tzinfo=UTC)
WEEKEND = "yahoo_chart_next_day_weekend_aapl_6mo_1d.json"
Route = Callable[[httpx.Request], httpx.Response]


class Vendors:
    """Routes by host and path; records what was asked."""

    def __init__(self, routes: dict[str, Route]) -> None:
        self.routes = routes
        self.asked: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        key = f"{request.url.host}{request.url.path}"
        self.asked.append(
            key + ("?s=" + request.url.params["s"] if "s" in request.url.params else "")
        )
        return self.routes[key](request)


def chain_fetch(vendors: Vendors, symbol: str, proxies: dict[str, str]) -> ChainResult:
    policy, _ = retry_policy(1)

    async def body(client: httpx.AsyncClient) -> ChainResult:
        chain = ProviderChain(
            [
                YahooProvider(client, base_url="https://yahoo.test", retry=policy),
                StooqProvider(client, base_url="https://stooq.test", api_key="k", retry=policy),
            ],
            proxies,
        )
        return await chain.fetch(symbol, {symbol: date(2025, 10, 1)}, now=NOW)

    return run_with_client(vendors, body)


def yahoo_404(_: httpx.Request) -> httpx.Response:
    return json_response("yahoo_chart_error_notfound_404.json", 404)


def yahoo_401(_: httpx.Request) -> httpx.Response:
    return json_response("yahoo_401_invalid_crumb.from_issue.json", 401)


def stooq_csv(_: httpx.Request) -> httpx.Response:
    return httpx.Response(
        200, text="Date,Open,High,Low,Close,Volume\r\n2025-10-10,1,1,1,6552.51,9\r\n"
    )


def test_falls_back_to_the_next_provider_and_records_why() -> None:
    vendors = Vendors(
        {"yahoo.test/v8/finance/chart/^GSPC": yahoo_404, "stooq.test/q/d/l/": stooq_csv}
    )
    outcome = chain_fetch(vendors, "^GSPC", {})
    assert (outcome.result.source, outcome.result.instrument) == ("stooq", "^GSPC")
    assert not outcome.is_proxy
    assert outcome.attempts == [
        Attempt(
            "yahoo",
            "^GSPC",
            "Yahoo has no data for ^GSPC: Not Found: No data found, symbol may be delisted",
        )
    ]


def test_proxy_only_after_every_provider_failed_and_never_silent() -> None:
    vendors = Vendors(
        {
            "yahoo.test/v8/finance/chart/^RUT": yahoo_401,
            "yahoo.test/v8/finance/chart/IWM": lambda _: json_response(WEEKEND),
        }
    )
    outcome = chain_fetch(vendors, "^RUT", {"^RUT": "IWM"})
    assert outcome.is_proxy
    assert (outcome.symbol, outcome.result.source, outcome.result.instrument) == (
        "^RUT",
        "yahoo",
        "IWM",
    )
    assert [(a.provider, a.instrument) for a in outcome.attempts] == [
        ("yahoo", "^RUT"),
        ("stooq", "^RUT"),
    ]
    assert outcome.attempts[1].reason == "Stooq has no known symbol for ^RUT"
    # Yahoo ^RUT retried once (401), Stooq never asked for ^RUT, then the proxy.
    assert vendors.asked == [
        "yahoo.test/v8/finance/chart/^RUT",
        "yahoo.test/v8/finance/chart/^RUT",
        "yahoo.test/v8/finance/chart/IWM",
    ]


def test_each_instrument_is_fetched_from_its_own_since() -> None:
    asked: dict[str, str] = {}

    def yahoo(request: httpx.Request) -> httpx.Response:
        asked[request.url.path.rsplit("/", 1)[-1]] = request.url.params["period1"]
        if request.url.path.endswith("^RUT"):
            return yahoo_404(request)
        return json_response(WEEKEND)

    policy, _ = retry_policy(1)

    async def body(client: httpx.AsyncClient) -> ChainResult:
        provider = YahooProvider(client, base_url="https://yahoo.test", retry=policy)
        chain = ProviderChain([provider], {"^RUT": "IWM"})
        assert chain.instruments("^RUT") == ["^RUT", "IWM"]
        assert chain.instruments("IWM") == ["IWM"]
        return await chain.fetch("^RUT", {"^RUT": date(2025, 10, 1)}, now=NOW)

    outcome = run_with_client(yahoo, body)
    assert outcome.result.instrument == "IWM"
    # The index from its own window; the proxy, with nothing stored, from the start.
    assert asked == {
        "^RUT": str(int(datetime(2025, 10, 1, tzinfo=UTC).timestamp())),
        "IWM": str(int(datetime(1900, 1, 1, tzinfo=UTC).timestamp())),
    }


def test_all_failing_raises_with_every_reason() -> None:
    vendors = Vendors(
        {
            "yahoo.test/v8/finance/chart/^RUT": yahoo_401,
            "yahoo.test/v8/finance/chart/IWM": yahoo_404,
            "stooq.test/q/d/l/": lambda _: httpx.Response(200, text="No data"),
        }
    )
    with pytest.raises(AllProvidersFailed) as caught:
        chain_fetch(vendors, "^RUT", {"^RUT": "IWM"})
    assert caught.value.reason == (
        "no provider could fetch ^RUT: "
        "yahoo (^RUT): Yahoo refused the request: HTTP 401: Unauthorized: Invalid Crumb; "
        "stooq (^RUT): Stooq has no known symbol for ^RUT; "
        "yahoo (IWM): Yahoo has no data for IWM: Not Found: No data found, symbol may be delisted; "
        "stooq (IWM): Stooq has no data for iwm.us"
    )
    assert len(caught.value.attempts) == 4


def test_without_a_configured_proxy_the_proxy_is_never_tried() -> None:
    vendors = Vendors({"yahoo.test/v8/finance/chart/^RUT": yahoo_404})
    with pytest.raises(AllProvidersFailed):
        chain_fetch(vendors, "^RUT", {})
    assert all("IWM" not in asked for asked in vendors.asked)


def test_build_providers_follows_settings_order(tmp_path: Path) -> None:
    settings = load_settings(
        providers="csv,fred,yahoo,stooq",
        csv_dir=str(tmp_path),
        proxies="^RUT=IWM",
        provider_retries=0,
        _env_file=None,
    )
    (tmp_path / "RUT.csv").write_bytes(b"date,close\n2025-10-10,2394.59\n")

    async def body(client: httpx.AsyncClient) -> tuple[list[str], ChainResult]:
        providers = build_providers(settings, client)
        chain = build_chain(settings, client)
        assert isinstance(providers[0], CsvDirProvider)
        assert isinstance(providers[1], FredProvider)
        return [p.name for p in providers], await chain.fetch("^RUT", {}, now=NOW)

    def unreachable(request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"no HTTP expected, got {request.url}")

    names, outcome = run_with_client(unreachable, body)
    assert names == ["csv", "fred", "yahoo", "stooq"]
    assert (outcome.result.source, outcome.result.bars[0].close) == ("csv", 2394.59)
