"""Stooq daily CSV (``/q/d/l/?s=…&i=d``; an API key is required since 2026).

Stooq answers HTTP 200 even for errors, so the body's first line is sniffed: data
starts with ``Date,``; an HTML page (key missing or invalid, or a bot challenge), the
daily hits limit and ``No data`` are told apart and reported as such, never parsed.

Symbol map: ``^GSPC`` → ``^spx``, ``^IXIC`` → ``^ndq``, ``^DJI`` → ``^dji``; a US
stock or ETF ``IWM`` → ``iwm.us``. Any other ``^`` index (``^RUT`` included: Yahoo is
the only free source of it) or a non-US listing (``GS2C.DE``) is not supported.
"""

from __future__ import annotations

import csv
import io
import math
import re
from datetime import date, datetime

import httpx

from app.market import calendar
from app.market.bars import Bar, FetchResult
from app.market.providers.base import (
    BadResponse,
    NoData,
    ProviderNotConfigured,
    ProviderUnavailable,
    RetryPolicy,
    SymbolNotSupported,
    body_excerpt,
    closed_result,
    http_get,
)
from app.market.providers.limits import ProviderLimit

STOOQ_INDEX_SYMBOLS = {"^GSPC": "^spx", "^IXIC": "^ndq", "^DJI": "^dji"}
_US_TICKER = re.compile(r"[A-Z][A-Z0-9-]{0,9}")
_HEADER = ["Date", "Open", "High", "Low", "Close", "Volume"]


def stooq_symbol(symbol: str) -> str:
    """Stooq's name for a canonical symbol, or ``SymbolNotSupported``."""
    canonical = symbol.upper()
    if canonical in STOOQ_INDEX_SYMBOLS:
        return STOOQ_INDEX_SYMBOLS[canonical]
    if _US_TICKER.fullmatch(canonical):
        return f"{canonical.lower()}.us"
    raise SymbolNotSupported(f"Stooq has no known symbol for {symbol}")


class StooqProvider:
    """``GET {base}/q/d/l/?s={symbol}&i=d&apikey={key}`` for daily bars."""

    name = "stooq"

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
        vendor_symbol = stooq_symbol(symbol)
        if not self._api_key:
            raise ProviderNotConfigured(
                "Stooq needs an API key: set CROSSWATCH_STOOQ_API_KEY (no request was made)"
            )
        params: dict[str, str | int] = {"s": vendor_symbol, "i": "d", "apikey": self._api_key}
        if since is not None:
            params["d1"] = since.strftime("%Y%m%d")
        url = f"{self._base_url}/q/d/l/"

        async def attempt() -> list[Bar]:
            response = await http_get(
                self._client,
                "Stooq",
                url,
                params=params,
                timeout=self._timeout,
                limit=self._limit,
            )
            return parse_stooq_csv(response, vendor_symbol)

        bars = await self._retry.run(attempt)
        # Stooq rows carry no live marker: a bar of a session not yet closed at
        # ``now`` (XNYS) is dropped here too, so no provider returns a live value.
        last_closed = calendar.last_closed_session(now)
        bars = [bar for bar in bars if bar.session <= last_closed]
        return closed_result(self.name, symbol, bars, since)


def parse_stooq_csv(response: httpx.Response, vendor_symbol: str) -> list[Bar]:
    """Bars of a Stooq CSV body, after sniffing what the body really is."""
    if response.status_code != 200:
        raise BadResponse(f"Stooq answered HTTP {response.status_code}: {body_excerpt(response)}")
    text = response.text
    first_line = text.lstrip("\ufeff").split("\n", 1)[0].strip()
    if not first_line:
        raise BadResponse("Stooq answered with an empty body")
    if first_line.lower().startswith(("<!doctype", "<html")) or "<html" in text[:2000].lower():
        raise BadResponse(
            "Stooq answered with an HTML page instead of CSV (missing or invalid STOOQ_API_KEY?)"
        )
    if first_line.startswith("Exceeded the daily hits limit"):
        # A daily quota: retrying within this poll cannot help, the next provider can.
        raise ProviderUnavailable("Stooq: exceeded the daily hits limit", retryable=False)
    if first_line.startswith("No data"):
        raise NoData(f"Stooq has no data for {vendor_symbol}")
    if not first_line.startswith("Date,"):
        raise BadResponse(f"Stooq answered with something other than CSV: {first_line[:80]!r}")

    rows = csv.reader(io.StringIO(text.lstrip("\ufeff"), newline=""))
    header = [name.strip() for name in next(rows)]
    if header[:5] != _HEADER[:5]:
        raise BadResponse(f"Stooq CSV has unexpected columns: {','.join(header)}")
    bars: list[Bar] = []
    for line_number, row in enumerate(rows, start=2):
        if not row:
            continue
        try:
            bars.append(_bar(row))
        except (ValueError, IndexError):
            raise BadResponse(
                f"Stooq CSV line {line_number} cannot be read: {','.join(row)[:80]!r}"
            ) from None
    if not bars:
        raise NoData(f"Stooq returned a CSV header but no rows for {vendor_symbol}")
    return bars


def _bar(row: list[str]) -> Bar:
    def number(index: int) -> float | None:
        cell = row[index].strip() if index < len(row) else ""
        return float(cell) if cell else None

    close = number(4)
    return Bar(
        session=date.fromisoformat(row[0].strip()),
        close=math.nan if close is None else close,
        open=number(1),
        high=number(2),
        low=number(3),
        volume=number(5),
    )
