"""FRED ``fred/series/observations`` (JSON; needs an API key).

Symbol map: ``^GSPC`` → ``SP500`` (FRED keeps only the last 10 years), ``^IXIC`` →
``NASDAQCOM``, ``^DJI`` → ``DJIA``. FRED has no Russell 2000 and no ETFs: anything
else is ``SymbolNotSupported``. Values are strings; ``"."`` marks a day without a
value (FRED lists US holidays that way) and is skipped. Closes only, no OHLV.
Responses are paged with ``offset`` while ``count`` exceeds what has been read.
"""

from __future__ import annotations

import json
import math
from datetime import date, datetime
from typing import Any

import httpx

from app.market.bars import Bar, FetchResult
from app.market.providers.base import (
    BadResponse,
    ProviderNotConfigured,
    RetryPolicy,
    SymbolNotSupported,
    body_excerpt,
    closed_result,
    http_get,
)
from app.market.providers.limits import ProviderLimit

FRED_SERIES = {"^GSPC": "SP500", "^IXIC": "NASDAQCOM", "^DJI": "DJIA"}
#: FRED's maximum page size.
PAGE_LIMIT = 100_000
#: A guard against a server that keeps claiming more rows than it sends.
MAX_PAGES = 50


def fred_series(symbol: str) -> str:
    try:
        return FRED_SERIES[symbol.upper()]
    except KeyError:
        raise SymbolNotSupported(
            f"FRED has no series for {symbol} (it carries {', '.join(FRED_SERIES)})"
        ) from None


class FredProvider:
    """Daily closes of FRED's index series."""

    name = "fred"

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        base_url: str,
        api_key: str | None,
        timeout: float = 20.0,
        retry: RetryPolicy | None = None,
        limit: ProviderLimit | None = None,
    ) -> None:
        self._client = client
        self._base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._timeout = timeout
        self._retry = retry or RetryPolicy()
        self._limit = limit

    async def fetch(self, symbol: str, since: date | None, *, now: datetime) -> FetchResult:
        series_id = fred_series(symbol)
        if not self._api_key:
            raise ProviderNotConfigured(
                "FRED needs an API key: set CROSSWATCH_FRED_API_KEY (no request was made)"
            )
        bars: list[Bar] = []
        offset = 0
        for _ in range(MAX_PAGES):
            params: dict[str, str | int] = {
                "series_id": series_id,
                "api_key": self._api_key,
                "file_type": "json",
                "sort_order": "asc",
                "limit": PAGE_LIMIT,
                "offset": offset,
            }
            if since is not None:
                params["observation_start"] = since.isoformat()
            page = await self._page(params)
            observations = page.get("observations")
            if not isinstance(observations, list):
                raise BadResponse(f"FRED answered without observations for {series_id}")
            bars.extend(_bars(observations, series_id))
            offset += len(observations)
            count = page.get("count")
            if not observations or not isinstance(count, int) or offset >= count:
                break
        else:
            raise BadResponse(f"FRED kept paging past {MAX_PAGES} pages for {series_id}")
        return closed_result(self.name, symbol, bars, since)

    async def _page(self, params: dict[str, str | int]) -> dict[str, Any]:
        url = f"{self._base_url}/fred/series/observations"

        async def attempt() -> dict[str, Any]:
            response = await http_get(
                self._client,
                "FRED",
                url,
                params=params,
                timeout=self._timeout,
                limit=self._limit,
            )
            return _envelope(response)

        return await self._retry.run(attempt)


def _envelope(response: httpx.Response) -> dict[str, Any]:
    if not response.text.strip():
        raise BadResponse(f"FRED answered HTTP {response.status_code} with an empty body")
    try:
        body = json.loads(response.text)
    except ValueError:
        raise BadResponse(
            f"FRED answered HTTP {response.status_code} with a body that is not JSON: "
            f"{body_excerpt(response)}"
        ) from None
    if not isinstance(body, dict):
        raise BadResponse(f"FRED answered with unexpected JSON: {body_excerpt(response)}")
    if "error_message" in body or response.status_code != 200:
        message = str(body.get("error_message") or body_excerpt(response)).strip()
        raise BadResponse(f"FRED rejected the request: HTTP {response.status_code}: {message}")
    return body


def _bars(observations: list[Any], series_id: str) -> list[Bar]:
    bars: list[Bar] = []
    for observation in observations:
        try:
            day = date.fromisoformat(observation["date"])
            raw = observation["value"]
        except (KeyError, TypeError, ValueError):
            raise BadResponse(f"FRED {series_id}: unreadable observation {observation!r}") from None
        if raw == ".":
            continue
        try:
            close = float(raw)
        except (TypeError, ValueError):
            close = math.nan  # validation rejects it with the date attached
        bars.append(Bar(session=day, close=close))
    return bars
