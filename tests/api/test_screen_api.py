"""``/v1/screen``, ``/v1/breadth`` and ``universe=`` on the read routes, on a real store
holding a synthetic universe, against plain pandas computations written here."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from app.api.app import create_app
from app.db.engine import Database
from app.jobs import ingest
from app.market import calendar, repository, universes
from app.market.bars import Bar
from app.settings import Settings
from tests.conftest import run_cli

NOW = datetime(2026, 8, 24, 23, 0, tzinfo=UTC)
SESSIONS = calendar.sessions_between(date(2025, 1, 2), date(2026, 8, 21))
# symbol -> (sessions of history, has volume)
SHAPES = {
    "AAA": (len(SESSIONS), True),
    "BBB": (300, True),
    "CCC": (230, False),  # no volume at all
    "DDD": (180, True),  # < 200 sessions
    "EEE": (45, True),  # < 50 sessions, < 51 volumes
    "FFF": (len(SESSIONS), True),  # one volume missing in its last 50
    "OUT": (260, True),  # not in the universe
}
MEMBERS = ["AAA", "BBB", "CCC", "DDD", "EEE", "FFF"]


def frames() -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(2026)
    result = {}
    for symbol, (length, has_volume) in SHAPES.items():
        days = SESSIONS[-length:]
        closes = np.round(20 * np.exp(np.cumsum(rng.normal(0.0005, 0.025, length))), 2)
        volume = rng.integers(1_000, 50_000, length).astype(float) if has_volume else None
        if volume is not None and symbol == "FFF":
            volume[-10] = np.nan
        result[symbol] = pd.DataFrame(
            {"close": closes, "volume": volume if volume is not None else np.nan},
            index=pd.DatetimeIndex(days),
        )
    return result


@pytest.fixture(scope="module")
def data() -> dict[str, pd.DataFrame]:
    return frames()


@pytest.fixture
def client(db: Database, settings: Settings, data: dict[str, pd.DataFrame]) -> Iterator[TestClient]:
    writes = [
        repository.BarWrite(
            symbol,
            [
                Bar(
                    day.date(),
                    float(row.close),
                    volume=None if np.isnan(row.volume) else row.volume,
                )
                for day, row in frame.iterrows()
            ],
            "import",
            symbol,
        )
        for symbol, frame in data.items()
    ]
    with db.transaction() as session:
        ingest.store_many(session, writes, clock=lambda: NOW)
        universes.replace(session, "smallcaps", MEMBERS, now=NOW)
    app = create_app(settings, db=db, clock=lambda: NOW)
    with TestClient(app) as test_client:
        yield test_client


def screen_oracle(data: dict[str, pd.DataFrame], symbols: list[str], n: int = 21) -> pd.DataFrame:
    rows = {}
    for symbol in symbols:
        frame = data[symbol]
        close = frame["close"]
        fast, slow = close.rolling(50).mean(), close.rolling(200).mean()
        relative = frame["volume"] / frame["volume"].rolling(50).mean().shift(1)
        rows[symbol] = {
            "close": close.iloc[-1],
            "change_pct": (close.iloc[-1] / close.iloc[-2] - 1) * 100,
            "gap_pct": (fast.iloc[-1] / slow.iloc[-1] - 1) * 100,
            "drawdown_pct": (close.iloc[-1] / close.cummax().iloc[-1] - 1) * 100,
            "return_pct": (close.iloc[-1] / close.iloc[-1 - n] - 1) * 100
            if len(close) > n
            else np.nan,
            "relative_volume": relative.iloc[-1],
        }
    return pd.DataFrame(rows).T


def close_or_null(got: float | None, expected: float) -> bool:
    if np.isnan(expected):
        return got is None
    return got is not None and got == pytest.approx(expected, rel=1e-9)


def test_screen_rows_equal_the_pandas_figures(
    client: TestClient, data: dict[str, pd.DataFrame]
) -> None:
    body = client.get("/v1/screen", params={"universe": "smallcaps", "limit": 5000}).json()
    assert body["session"] == "2026-08-21"
    assert body["count"] == len(MEMBERS)
    assert [row["symbol"] for row in body["rows"]] == MEMBERS
    expected = screen_oracle(data, MEMBERS)
    for row in body["rows"]:
        for name in expected.columns:
            assert close_or_null(row[name], expected.loc[row["symbol"], name]), (row, name)
        if row["trigger_close"] is not None:
            assert row["trigger_distance_pct"] == pytest.approx(
                abs(row["trigger_close"] / row["close"] - 1) * 100
            )
    by_symbol = {row["symbol"]: row for row in body["rows"]}
    # Missing volume: none stored, one missing in the window, fewer than 51 sessions.
    assert by_symbol["CCC"]["relative_volume"] is None
    assert by_symbol["FFF"]["relative_volume"] is None
    assert by_symbol["EEE"]["relative_volume"] is None
    assert by_symbol["AAA"]["relative_volume"] is not None
    # Short histories: no slow average, no regime, no return past the history.
    assert by_symbol["DDD"]["gap_pct"] is None and by_symbol["DDD"]["regime"] is None
    assert by_symbol["EEE"]["return_pct"] is not None
    assert (
        client.get("/v1/screen", params={"symbols": "EEE", "return_sessions": 45}).json()["rows"][
            0
        ]["return_pct"]
        is None
    )


def test_screen_filters_sort_and_limit_like_pandas(
    client: TestClient, data: dict[str, pd.DataFrame]
) -> None:
    expected = screen_oracle(data, MEMBERS, n=10)
    params = {
        "universe": "smallcaps",
        "return_sessions": 10,
        "min_return_pct": float(expected["return_pct"].median()),
        "sort": "-return_pct",
        "limit": 2,
    }
    body = client.get("/v1/screen", params=params).json()
    chosen = expected[expected["return_pct"] >= params["min_return_pct"]]
    assert body["count"] == len(chosen)
    top = chosen.sort_values("return_pct", ascending=False).index[:2].tolist()
    assert [row["symbol"] for row in body["rows"]] == top
    volume = client.get(
        "/v1/screen",
        params={"universe": "smallcaps", "min_relative_volume": 0, "sort": "relative_volume"},
    ).json()
    with_volume = expected["relative_volume"].dropna().sort_values()
    assert [row["symbol"] for row in volume["rows"]] == with_volume.index.tolist()
    drawn = client.get(
        "/v1/screen", params={"max_drawdown_pct": -5, "min_drawdown_pct": -30}
    ).json()["rows"]
    assert all(-30 <= row["drawdown_pct"] <= -5 for row in drawn)
    nulls_last = client.get("/v1/screen", params={"sort": "-gap_pct", "limit": 5000}).json()
    gaps = [row["gap_pct"] for row in nulls_last["rows"]]
    known = [g for g in gaps if g is not None]
    assert gaps == known + [None] * (len(gaps) - len(known))
    assert known == sorted(known, reverse=True)
    golden = client.get("/v1/screen", params={"regime": "golden"}).json()["rows"]
    assert golden and all(row["regime"] == "golden" for row in golden)


def test_screen_event_filter_matches_scan(client: TestClient) -> None:
    for event in ("golden_cross", "death_cross", "peak", "trough", "cross_approaching"):
        scan = client.get("/v1/scan", params={"event": event, "within": 200}).json()
        screen = client.get(
            "/v1/screen", params={"event": event, "within": 200, "limit": 5000}
        ).json()
        assert sorted(row["symbol"] for row in screen["rows"]) == sorted(
            match["symbol"] for match in scan["matches"]
        )
    rows = client.get("/v1/screen", params={"limit": 5000}).json()["rows"]
    assert any(row["last_event"] is not None for row in rows)


def test_screen_as_csv(client: TestClient) -> None:
    response = client.get(
        "/v1/screen", params={"universe": "smallcaps"}, headers={"Accept": "text/csv"}
    )
    assert response.headers["content-type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(response.text)))
    assert [row["symbol"] for row in table] == MEMBERS
    json_rows = client.get("/v1/screen", params={"universe": "smallcaps"}).json()["rows"]
    assert table[0]["close"] == str(json_rows[0]["close"])
    assert table[2]["relative_volume"] == ""  # CCC: no volume


def test_universe_limits_every_read_route(client: TestClient) -> None:
    signals = client.get("/v1/signals", params={"universe": "smallcaps"}).json()["signals"]
    assert [s["symbol"] for s in signals] == MEMBERS
    assert len(client.get("/v1/signals").json()["signals"]) == len(SHAPES)
    compare = client.get("/v1/compare", params={"universe": "smallcaps", "start": "2026-01-02"})
    assert [r["symbol"] for r in compare.json()["returns"]] == ["AAA", "BBB", "CCC", "DDD", "FFF"]
    scan = client.get("/v1/scan", params={"universe": "smallcaps", "within": 10000}).json()
    assert {m["symbol"] for m in scan["matches"]} <= set(MEMBERS)
    for route in ("/v1/signals", "/v1/scan", "/v1/screen", "/v1/breadth", "/v1/compare"):
        missing = client.get(route, params={"universe": "nosuch"})
        assert missing.status_code == 404, route
        assert missing.headers["content-type"].startswith("application/problem+json")
        assert "nosuch" in missing.json()["detail"]
    assert client.get("/v1/screen", params={"universe": "Bad Name!"}).status_code == 422


def test_breadth_over_the_api_equals_pandas(
    client: TestClient, data: dict[str, pd.DataFrame]
) -> None:
    body = client.get(
        "/v1/breadth", params={"universe": "smallcaps", "start": "2026-01-02", "end": "2026-08-21"}
    ).json()
    assert body["universe"] == "smallcaps"
    assert body["rule"] == {"fast": 50, "slow": 200, "type": "sma"}
    rows = {row["session"]: row for row in body["rows"]}
    assert min(rows) == "2026-01-02" and max(rows) == "2026-08-21"
    per_symbol = []
    for symbol in MEMBERS:
        close = data[symbol]["close"]
        fast = close.rolling(50).mean()
        high = close.rolling(252).max()
        per_symbol.append(
            pd.DataFrame(
                {
                    "members": 1,
                    "fast_known": fast.notna(),
                    "above_fast": close > fast,
                    "new_highs": high.notna() & (close == high),
                }
            ).astype(int)
        )
    total = pd.concat(per_symbol).groupby(level=0).sum()
    for day, row in rows.items():
        expected = total.loc[pd.Timestamp(day)]
        assert row["members"] == expected["members"]
        assert row["new_highs"] == expected["new_highs"]
        if expected["fast_known"]:
            assert row["above_fast_pct"] == pytest.approx(
                expected["above_fast"] * 100 / expected["fast_known"]
            )
        else:
            assert row["above_fast_pct"] is None
    everyone = client.get("/v1/breadth", params={"start": "2026-08-21"}).json()["rows"]
    assert everyone[0]["members"] == len(SHAPES)
    assert client.get("/v1/breadth", params={"fast": 200, "slow": 50}).status_code == 422
    assert (
        client.get("/v1/breadth", params={"start": "2026-02-01", "end": "2026-01-01"}).status_code
        == 422
    )
    custom = client.get("/v1/breadth", params={"fast": 5, "slow": 20, "type": "ema"}).json()
    assert custom["rule"] == {"fast": 5, "slow": 20, "type": "ema"}


def test_screen_command_takes_the_same_filters(client: TestClient, database_url: str) -> None:
    result = run_cli(
        "screen",
        "--universe",
        "smallcaps",
        "--sort",
        "-close",
        "--limit",
        "3",
        "--json",
        database_url=database_url,
    )
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    api = client.get(
        "/v1/screen", params={"universe": "smallcaps", "sort": "-close", "limit": 3}
    ).json()
    assert [row["symbol"] for row in body["rows"]] == [row["symbol"] for row in api["rows"]]
    assert body["count"] == api["count"]
    as_csv = run_cli("screen", "--universe", "smallcaps", "--csv", database_url=database_url)
    assert as_csv.stdout.splitlines()[0].startswith("symbol,session,close")
    table = run_cli("screen", "--regime", "golden", database_url=database_url)
    assert table.returncode == 0 and "symbol" in table.stdout
    missing = run_cli("screen", "--universe", "nosuch", database_url=database_url)
    assert missing.returncode == 1 and "nosuch" in missing.stderr
