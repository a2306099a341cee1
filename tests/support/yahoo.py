"""A Yahoo chart API double serving real series in Yahoo's v8 JSON format.

Use ``handler`` with ``httpx.MockTransport`` in-process, or ``serve()`` for a real
local HTTP server (for subprocess tests that set ``CROSSWATCH_YAHOO_BASE_URL``).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlparse
from zoneinfo import ZoneInfo

import httpx

from app.market import calendar
from app.market.bars import Bar

NEW_YORK = ZoneInfo("America/New_York")


def _open_ts(day: date) -> int:
    return int(datetime.combine(day, time(9, 30), tzinfo=NEW_YORK).timestamp())


@dataclass
class LiveBar:
    """Today's bar while the session is open: stamped with the last trade time."""

    bar: Bar
    market_time: datetime


@dataclass
class YahooFake:
    series: dict[str, list[Bar]] = field(default_factory=dict)
    live: dict[str, LiveBar] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)

    def body(self, symbol: str, period1: int, period2: int) -> tuple[int, dict[str, object]]:
        bars = self.series.get(symbol)
        if bars is None:
            return 404, {
                "chart": {
                    "result": None,
                    "error": {
                        "code": "Not Found",
                        "description": "No data found, symbol may be delisted",
                    },
                }
            }
        start = datetime.fromtimestamp(period1, UTC).date()
        chosen = [b for b in bars if b.session >= start and _open_ts(b.session) <= period2]
        stamps = [_open_ts(b.session) for b in chosen]
        market_time = _open_ts(chosen[-1].session) + 6 * 3600 + 30 * 60 if chosen else period2
        session_day = chosen[-1].session if chosen else start
        live = self.live.get(symbol)
        if live is not None:
            chosen = [*chosen, live.bar]
            stamps.append(int(live.market_time.timestamp()))
            market_time = int(live.market_time.timestamp())
            session_day = live.bar.session
        close_at = calendar.session_close(session_day) if calendar.is_session(session_day) else None
        regular = {
            "timezone": "EDT",
            "start": _open_ts(session_day),
            "end": int(close_at.timestamp()) if close_at else _open_ts(session_day) + 23400,
            "gmtoffset": -14400,
        }
        result = {
            "meta": {
                "currency": "USD",
                "symbol": symbol,
                "exchangeName": "SNP",
                "instrumentType": "INDEX",
                "regularMarketTime": market_time,
                "regularMarketPrice": chosen[-1].close if chosen else None,
                "gmtoffset": -14400,
                "timezone": "EDT",
                "exchangeTimezoneName": "America/New_York",
                "currentTradingPeriod": {"pre": regular, "regular": regular, "post": regular},
                "dataGranularity": "1d",
            },
            "timestamp": stamps,
            "indicators": {
                "quote": [
                    {
                        "volume": [b.volume for b in chosen],
                        "low": [b.low for b in chosen],
                        "close": [b.close for b in chosen],
                        "open": [b.open for b in chosen],
                        "high": [b.high for b in chosen],
                    }
                ],
                "adjclose": [{"adjclose": [b.close for b in chosen]}],
            },
        }
        if not chosen:
            del result["timestamp"]
            result["indicators"] = {"quote": [{}], "adjclose": [{}]}
        return 200, {"chart": {"result": [result], "error": None}}

    def respond(self, path: str, query: dict[str, list[str]]) -> tuple[int, bytes]:
        self.requests.append(path)
        prefix = "/v8/finance/chart/"
        if not path.startswith(prefix):
            return 404, b'{"finance":{"result":null,"error":{"code":"Not Found"}}}'
        symbol = unquote(path[len(prefix) :])
        period1 = int(query.get("period1", ["0"])[0])
        period2 = int(query.get("period2", [str(2**40)])[0])
        status, body = self.body(symbol, period1, period2)
        return status, json.dumps(body).encode()

    def handler(self, request: httpx.Request) -> httpx.Response:
        status, body = self.respond(
            request.url.path, {k: [v] for k, v in request.url.params.items()}
        )
        return httpx.Response(status, content=body, headers={"content-type": "application/json"})

    @contextmanager
    def serve(self) -> Iterator[str]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parsed = urlparse(self.path)
                status, body = fake.respond(parsed.path, parse_qs(parsed.query))
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args: object) -> None:
                return

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}"
        finally:
            server.shutdown()
            server.server_close()


def at_new_york(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=NEW_YORK).astimezone(UTC)
