"""Yahoo Finance chart API v8 (JSON, no key): the default live provider.

Symbols are Yahoo's own (``^RUT``, ``^GSPC``, ``^IXIC``, ``IWM``), so the map is the
identity. Format quirks handled here (see ``tests/fixtures/providers/SOURCES.md``):

- a daily ``timestamp`` marks the session open (or, for the newest bar, the last
  trade); its trading date comes from ``meta.exchangeTimezoneName``, never from
  ``meta.gmtoffset`` (the offset at capture time, wrong across DST);
- the newest bar is provisional while its session runs and until
  ``regularMarketTime >= currentTradingPeriod.regular.end``: it is dropped, as is any
  bar of an XNYS session not closed at ``now`` (US time zone only; XNYS knows nothing
  of other exchanges);
- rows with a timestamp but every value ``null`` are placeholders and are dropped; a
  row with a null close but other values becomes a NaN close so that validation
  rejects it with a reason;
- no ``timestamp`` key (``quote == [{}]``) means no bars in the range: ``NoData``;
- prices arrive as float32 widened to float64 (``216.16000366210938``); each is
  replaced by the shortest decimal that maps to the same float32 (``216.16``).

During a session the same chart answers the live price: :meth:`YahooProvider.live_quote`
reads it (``meta.regularMarketPrice`` at ``meta.regularMarketTime``, or the in-progress
bar's close) for the intraday cross watch. A live quote is never a bar: it is not
stored as a close.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, TypeVar
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx

from app.market import calendar
from app.market.bars import Bar, FetchResult
from app.market.providers.base import (
    BadResponse,
    NoData,
    ProviderUnavailable,
    RetryPolicy,
    SymbolNotSupported,
    body_excerpt,
    closed_result,
    http_get,
)
from app.market.providers.limits import ProviderLimit

#: ``period1`` for a full-history request: 1900-01-01 UTC (older series start later).
FULL_HISTORY_PERIOD1 = -2208988800
_US_EXCHANGE_TZ = "America/New_York"
_PRICE_FIELDS = ("open", "high", "low", "close")


#: How far back a live-quote request reaches (a long weekend plus a holiday).
_LIVE_LOOKBACK = timedelta(days=7)

T = TypeVar("T")


@dataclass(frozen=True)
class LiveQuote:
    """A symbol's price during a session, per Yahoo's own clock.

    ``as_of``: the last trade's time in the exchange's time zone (with its offset);
    ``session``: the trading day of ``currentTradingPeriod.regular``.
    """

    symbol: str
    price: float
    as_of: datetime
    session: date


class YahooProvider:
    """``GET {base}/v8/finance/chart/{symbol}`` for daily bars."""

    name = "yahoo"

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        base_url: str,
        timeout: float = 20.0,
        retry: RetryPolicy | None = None,
        limit: ProviderLimit | None = None,
    ) -> None:
        self._client = client
        self._base_url = base_url.rstrip("/")
        self._timeout = timeout
        self._retry = retry or RetryPolicy()
        self._limit = limit

    async def fetch(self, symbol: str, since: date | None, *, now: datetime) -> FetchResult:
        period1 = (
            FULL_HISTORY_PERIOD1
            if since is None
            else int(datetime.combine(since, time(), tzinfo=UTC).timestamp())
        )
        params: dict[str, str | int] = {
            "period1": period1,
            "period2": int(now.timestamp()),
            "interval": "1d",
            "includePrePost": "false",
            "events": "div,split",
        }
        bars = await self._chart(symbol, params, lambda r: parse_chart(r, symbol, now=now))
        return closed_result(self.name, symbol, bars, since)

    async def live_quote(self, symbol: str, *, now: datetime) -> LiveQuote:
        """The in-session price of ``symbol`` (the chart's answer at ``now``).

        Raises ``NoData`` when Yahoo's last trade is outside the regular session (pre-
        market, after the close, a holiday), and the errors of :meth:`fetch` otherwise.
        """
        params: dict[str, str | int] = {
            "period1": int((now - _LIVE_LOOKBACK).timestamp()),
            "period2": int(now.timestamp()),
            "interval": "1d",
            "includePrePost": "false",
        }
        return await self._chart(symbol, params, lambda r: parse_live_quote(r, symbol))

    async def _chart(
        self,
        symbol: str,
        params: dict[str, str | int],
        parse: Callable[[httpx.Response], T],
    ) -> T:
        """One chart request for ``symbol`` under the retry policy, parsed by ``parse``."""
        if not symbol or any(ch.isspace() or ch == "/" for ch in symbol):
            raise SymbolNotSupported(f"Yahoo cannot look up the symbol {symbol!r}")
        url = f"{self._base_url}/v8/finance/chart/{quote(symbol, safe='')}"

        async def attempt() -> T:
            response = await http_get(
                self._client,
                "Yahoo",
                url,
                params=params,
                timeout=self._timeout,
                limit=self._limit,
            )
            return parse(response)

        return await self._retry.run(attempt)


def parse_chart(response: httpx.Response, symbol: str, *, now: datetime) -> list[Bar]:
    """The final (closed-session) bars of a chart response, oldest first."""
    return _bars(_chart_result(response, symbol), symbol, now=now)


def parse_live_quote(response: httpx.Response, symbol: str) -> LiveQuote:
    """The live price of a chart answered during a session.

    Live means Yahoo's last trade (``regularMarketTime``) lies within its current
    regular session (``currentTradingPeriod.regular``, start inclusive, end
    exclusive). The price is ``regularMarketPrice``, or else the close of the bar
    stamped at or after the session's start (the in-progress bar).
    """
    result = _chart_result(response, symbol)
    meta = result.get("meta") or {}
    exchange_tz = _exchange_tz(meta, symbol)
    regular = (meta.get("currentTradingPeriod") or {}).get("regular") or {}
    start, end = regular.get("start"), regular.get("end")
    market_time = meta.get("regularMarketTime")
    if not (isinstance(start, int) and isinstance(end, int) and isinstance(market_time, int)):
        raise BadResponse(f"Yahoo chart for {symbol} has no regular session or market time")
    as_of = datetime.fromtimestamp(market_time, exchange_tz)
    if not start <= market_time < end:
        raise NoData(
            f"Yahoo has no in-session price for {symbol}: its last trade "
            f"({as_of.isoformat()}) is outside the regular session"
        )
    price = meta.get("regularMarketPrice")
    if not isinstance(price, int | float) or isinstance(price, bool):
        price = _in_progress_close(result, start, symbol)
    price = float32_decimal(float(price))
    if not math.isfinite(price) or price <= 0:
        raise BadResponse(f"Yahoo chart for {symbol} has no usable live price ({price!r})")
    session = datetime.fromtimestamp(start, exchange_tz).date()
    return LiveQuote(symbol=symbol, price=price, as_of=as_of, session=session)


def _in_progress_close(result: dict[str, Any], start: int, symbol: str) -> float:
    timestamps = result.get("timestamp") or []
    quotes = (result.get("indicators") or {}).get("quote") or [{}]
    closes = _column(quotes[0], "close", len(timestamps), symbol)
    for stamp, close in zip(reversed(timestamps), reversed(closes), strict=True):
        if isinstance(stamp, int | float) and stamp >= start and close is not None:
            return close
    raise NoData(f"Yahoo has no in-session price for {symbol}: no bar of the session yet")


def _chart_result(response: httpx.Response, symbol: str) -> dict[str, Any]:
    """The first chart result of a response; errors per the module's quirks."""
    status = response.status_code
    body = _json_body(response)
    if status in (401, 403):
        raise ProviderUnavailable(f"Yahoo refused the request: HTTP {status}{_error_text(body)}")
    chart = body.get("chart") if isinstance(body, dict) else None
    if not isinstance(chart, dict):
        raise BadResponse(f"Yahoo answered HTTP {status} without a chart: {body_excerpt(response)}")
    error = chart.get("error")
    if error:
        description = _error_text(chart)
        if status == 404 or "doesn't exist" in description:
            raise NoData(f"Yahoo has no data for {symbol}{description}")
        raise BadResponse(f"Yahoo rejected the request for {symbol}: HTTP {status}{description}")
    if status != 200:
        raise BadResponse(f"Yahoo answered HTTP {status}: {body_excerpt(response)}")
    results = chart.get("result")
    if not isinstance(results, list) or not results or not isinstance(results[0], dict):
        raise BadResponse(f"Yahoo answered without a chart result for {symbol}")
    result: dict[str, Any] = results[0]
    return result


def _json_body(response: httpx.Response) -> Any:
    text = response.text
    if not text.strip():
        raise BadResponse(f"Yahoo answered HTTP {response.status_code} with an empty body")
    try:
        return json.loads(text)
    except ValueError:
        if response.status_code in (401, 403):
            raise ProviderUnavailable(
                f"Yahoo refused the request: HTTP {response.status_code} {body_excerpt(response)}"
            ) from None
        if text.lstrip().startswith("<"):
            raise BadResponse(
                f"Yahoo answered HTTP {response.status_code} with an HTML page instead of JSON"
            ) from None
        raise BadResponse(
            f"Yahoo answered HTTP {response.status_code} with a body that is not JSON: "
            f"{body_excerpt(response)}"
        ) from None


def _error_text(envelope: Any) -> str:
    """``": Code: description"`` from ``{"chart"|"finance": {"error": {...}}}`` or ``""``."""
    if not isinstance(envelope, dict):
        return ""
    error = envelope.get("error")
    if not isinstance(error, dict):
        inner = envelope.get("finance") or envelope.get("chart")
        error = inner.get("error") if isinstance(inner, dict) else None
    if not isinstance(error, dict):
        return ""
    parts = [str(error[key]) for key in ("code", "description") if error.get(key)]
    return ": " + ": ".join(parts) if parts else ""


def _exchange_tz(meta: dict[str, Any], symbol: str) -> ZoneInfo:
    try:
        return ZoneInfo(str(meta.get("exchangeTimezoneName")))
    except (ZoneInfoNotFoundError, ValueError):
        raise BadResponse(f"Yahoo chart for {symbol} has no usable exchangeTimezoneName") from None


def _bars(result: dict[str, Any], symbol: str, *, now: datetime) -> list[Bar]:
    meta = result.get("meta") or {}
    tz_name = meta.get("exchangeTimezoneName")
    exchange_tz = _exchange_tz(meta, symbol)
    timestamps = result.get("timestamp")
    if not timestamps:
        raise NoData(f"Yahoo returned no bars for {symbol} in the requested range")
    quotes = (result.get("indicators") or {}).get("quote") or [{}]
    columns = {name: _column(quotes[0], name, len(timestamps), symbol) for name in _PRICE_FIELDS}
    volumes = _column(quotes[0], "volume", len(timestamps), symbol)
    provisional_day = _provisional_day(meta, exchange_tz)
    us_listed = tz_name == _US_EXCHANGE_TZ
    last_closed = calendar.last_closed_session(now) if us_listed else None

    bars: list[Bar] = []
    for index, stamp in enumerate(timestamps):
        values = {name: column[index] for name, column in columns.items()}
        if all(value is None for value in values.values()):
            continue  # Yahoo's placeholder row: timestamp present, no prices
        if not isinstance(stamp, int | float) or stamp > now.timestamp():
            continue
        session = datetime.fromtimestamp(stamp, exchange_tz).date()
        if session == provisional_day:
            continue
        if last_closed is not None and session > last_closed:
            continue
        close = values["close"]
        bars.append(
            Bar(
                session=session,
                close=math.nan if close is None else close,
                open=values["open"],
                high=values["high"],
                low=values["low"],
                volume=volumes[index],
            )
        )
    return bars


def _column(quote_row: dict[str, Any], name: str, length: int, symbol: str) -> list[float | None]:
    raw = quote_row.get(name)
    if raw is None:
        return [None] * length  # indices have no volume
    if not isinstance(raw, list) or len(raw) != length:
        raise BadResponse(f"Yahoo chart for {symbol}: {name!r} does not match the timestamps")
    column: list[float | None] = []
    for value in raw:
        if value is None:
            column.append(None)
        elif isinstance(value, int | float) and not isinstance(value, bool):
            column.append(float(value) if name == "volume" else float32_decimal(float(value)))
        else:
            raise BadResponse(f"Yahoo chart for {symbol}: {name!r} holds {value!r}")
    return column


def _provisional_day(meta: dict[str, Any], exchange_tz: ZoneInfo) -> date | None:
    """The session day whose bar is still provisional per Yahoo's own clock, if any."""
    regular = (meta.get("currentTradingPeriod") or {}).get("regular") or {}
    start, end = regular.get("start"), regular.get("end")
    market_time = meta.get("regularMarketTime")
    if not isinstance(start, int) or not isinstance(end, int):
        return None
    if isinstance(market_time, int) and market_time >= end:
        return None
    return datetime.fromtimestamp(start, exchange_tz).date()


def float32_decimal(value: float) -> float:
    """The shortest decimal with the same float32 as ``value`` (216.16000366210938 → 216.16).

    Yahoo serialises float32 prices; their widened digits are noise, not precision.
    NaN and infinities are returned unchanged.
    """
    if not math.isfinite(value):
        return value
    target = _as_float32(value)
    for digits in range(1, 10):
        candidate = float(f"{value:.{digits}g}")
        if _as_float32(candidate) == target:
            return candidate
    return value


def _as_float32(value: float) -> float:
    try:
        return float(struct.unpack("f", struct.pack("f", value))[0])
    except OverflowError:
        return value
