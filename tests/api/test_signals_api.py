"""The public read API on a store seeded with the real bundled history."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from app.api.app import create_app
from app.db.engine import Database
from app.settings import Settings
from tests.support.stores import seed

# A Monday evening after the bundled history's last session (Friday 2026-08-21).
NOW = datetime(2026, 8, 24, 23, 0, tzinfo=UTC)


@pytest.fixture
def client(db: Database, settings: Settings) -> Iterator[TestClient]:
    """The store under test (SQLite, or PostgreSQL when the suite runs there), seeded."""
    seed(db, ["^RUT", "^GSPC", "^IXIC"], now=NOW)
    with TestClient(create_app(settings, clock=lambda: NOW)) as test_client:
        yield test_client


SIGNAL_FIELDS = {
    "symbol",
    "session",
    "close",
    "rule",
    "fast_value",
    "slow_value",
    "regime",
    "gap_pct",
    "last_cross",
    "sessions_since_cross",
    "trigger_close",
    "flat_sessions_to_cross",
    "drawdown_pct",
    "peak",
    "last_trough",
    "source",
    "expected_session",
    "stale",
}


def test_signals_lists_every_index_with_the_documented_fields(client: TestClient) -> None:
    body = client.get("/v1/signals").json()
    signals = {s["symbol"]: s for s in body["signals"]}
    assert set(signals) == {"^RUT", "^GSPC", "^IXIC"}
    rut = signals["^RUT"]
    assert set(rut) >= SIGNAL_FIELDS
    assert rut["session"] == "2026-08-21"
    assert rut["close"] == 3017.87
    assert rut["regime"] == "golden"
    assert rut["last_cross"] == {"type": "golden_cross", "session": "2025-08-06", "close": 2221.29}
    assert rut["rule"] == {"fast": 50, "slow": 200, "type": "sma"}
    assert rut["source"] == "bundled"
    assert rut["expected_session"] == "2026-08-24"
    assert rut["stale"] is True
    assert rut["peak"] == {"session": "2026-08-14", "close": 3068.42}
    assert rut["drawdown_pct"] == pytest.approx((3017.87 / 3068.42 - 1) * 100)
    assert rut["gap_pct"] == pytest.approx((rut["fast_value"] / rut["slow_value"] - 1) * 100)


def test_one_signal_with_custom_rule_and_url_encoded_symbol(client: TestClient) -> None:
    default = client.get("/v1/signals/%5Erut").json()
    assert default["symbol"] == "^RUT"
    custom = client.get("/v1/signals/%5ERUT", params={"fast": 20, "slow": 100, "type": "ema"})
    assert custom.status_code == 200
    assert custom.json()["rule"] == {"fast": 20, "slow": 100, "type": "ema"}
    assert custom.json()["fast_value"] != default["fast_value"]


@pytest.mark.parametrize(
    ("url", "status", "detail"),
    [
        ("/v1/signals/NOPE", 404, "unknown symbol 'NOPE'"),
        ("/v1/signals/%5ERUT?fast=200&slow=50", 422, "fast (200) must be shorter than slow (50)"),
        ("/v1/signals/%5ERUT?fast=50&slow=50", 422, "must be shorter"),
        ("/v1/signals/%5ERUT?fast=1", 422, "query.fast"),
        ("/v1/signals/%5ERUT?type=wma", 422, "query.type"),
        (
            "/v1/signals/%5ERUT?slow=10000&fast=10",
            422,
            "slow (10000) is longer than the stored history (9811",
        ),
        ("/v1/signals/%5ERUT?fast=abc", 422, "query.fast"),
        ("/v1/symbols/NOPE/closes", 404, "unknown symbol"),
        ("/v1/symbols/%5ERUT/closes?start=2024-02-30", 422, "query.start"),
        ("/v1/symbols/%5ERUT/closes?start=2024-02-03&end=2024-01-01", 422, "before start"),
        ("/v1/symbols/%5ERUT/crosses?since=yesterday", 422, "query.since"),
        ("/v1/symbols/%5ERUT/turns?decline=0", 422, "query.decline"),
        ("/v1/compare?start=someday", 422, "neither 'ytd' nor"),
        ("/v1/compare?symbols=%5ERUT,NOPE", 404, "unknown symbol 'NOPE'"),
        ("/v1/compare?start=2026-01-01&end=2025-01-01", 422, "before start"),
        ("/v1/scan?event=explosion", 422, "query.event"),
        ("/v1/scan?within=0", 422, "query.within"),
        ("/v1/events?after=garbage!", 422, "invalid cursor"),
        ("/v1/events?limit=0", 422, "query.limit"),
    ],
)
def test_bad_input_is_a_problem_json_4xx(
    client: TestClient, url: str, status: int, detail: str
) -> None:
    response = client.get(url)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert detail in response.json()["detail"]


def test_symbols_and_closes_in_json_and_csv(client: TestClient) -> None:
    symbols = {s["symbol"]: s for s in client.get("/v1/symbols").json()["symbols"]}
    assert symbols["^RUT"] == {
        "symbol": "^RUT",
        "first_session": "1987-09-10",
        "last_session": "2026-08-21",
        "sessions": 9811,
    }
    closes = client.get(
        "/v1/symbols/%5ERUT/closes", params={"start": "2025-07-31", "end": "2025-08-04"}
    )
    assert [(b["session"], b["close"]) for b in closes.json()["bars"]] == [
        ("2025-07-31", 2211.65),
        ("2025-08-01", 2166.78),
        ("2025-08-04", 2212.3),
    ]
    csv = client.get(
        "/v1/symbols/%5ERUT/closes",
        params={"start": "2025-08-01", "end": "2025-08-01"},
        headers={"Accept": "text/csv"},
    )
    assert csv.headers["content-type"].startswith("text/csv")
    assert csv.text.splitlines()[0] == "date,close,open,high,low,volume"
    assert csv.text.splitlines()[1].startswith("2025-08-01,2166.78,")


def test_crosses_have_forward_returns_and_a_summary(client: TestClient) -> None:
    body = client.get("/v1/symbols/%5ERUT/crosses", params={"since": "2025-01-01"}).json()
    assert [(c["type"], c["session"]) for c in body["crosses"]] == [
        ("death_cross", "2025-03-20"),
        ("golden_cross", "2025-08-06"),
    ]
    golden = body["crosses"][1]
    assert golden["forward_returns"]["21"] == pytest.approx((2391.40 / 2221.29 - 1) * 100, abs=0.5)
    summary = body["summary"]
    assert summary["count"] == 2
    assert summary["golden_cross"]["count"] == 1
    assert set(summary["golden_cross"]["forward_returns"]) == {"21", "63", "126", "252"}
    assert "whipsaws" in summary
    everything = client.get("/v1/symbols/%5ERUT/crosses").json()
    types = [c["type"] for c in everything["crosses"]]
    assert all(a != b for a, b in itertools.pairwise(types)), "crosses alternate"


def test_turns_show_depth_and_both_kinds_of_forward_returns(client: TestClient) -> None:
    turns = client.get("/v1/symbols/%5ERUT/turns").json()["turns"]
    trough_2020 = next(t for t in turns if t["type"] == "trough" and t["session"] == "2020-03-18")
    assert trough_2020["close"] == 991.16
    assert trough_2020["change_pct"] == pytest.approx((991.16 / 1705.22 - 1) * 100)
    assert trough_2020["confirmed_session"] > trough_2020["session"]
    assert set(trough_2020["forward_returns_from_confirmation"]) == {"21", "63", "126", "252"}
    assert [t["type"] for t in turns[:2]] != ["peak", "peak"]


def test_compare_ytd_and_scan(client: TestClient) -> None:
    compare = client.get("/v1/compare", params={"symbols": "^RUT,^GSPC,^IXIC"}).json()
    rut = compare["returns"][0]
    assert rut["symbol"] == "^RUT"
    assert rut["start_session"] == "2025-12-31"
    assert rut["end_session"] == "2026-08-21"
    assert rut["return_pct"] == pytest.approx((3017.87 / rut["start_close"] - 1) * 100)
    scan = client.get("/v1/scan", params={"event": "golden_cross", "within": 300}).json()
    assert next(m["symbol"] for m in scan["matches"]) == "^RUT"
    sessions = [m["session"] for m in scan["matches"]]
    assert sessions == sorted(sessions, reverse=True)
    assert (
        client.get("/v1/scan", params={"event": "golden_cross", "within": 5}).json()["matches"]
        == []
    )


def test_events_page_with_a_cursor(client: TestClient) -> None:
    first = client.get("/v1/events", params={"symbol": "^RUT", "limit": 10}).json()
    assert len(first["events"]) == 10
    assert first["next"]
    second = client.get(
        "/v1/events", params={"symbol": "^RUT", "limit": 10, "after": first["next"]}
    ).json()
    ids = [e["id"] for e in first["events"] + second["events"]]
    assert len(set(ids)) == 20
    assert all(e["live"] is False for e in first["events"])
    golden = client.get(
        "/v1/events", params={"symbol": "^RUT", "type": "golden_cross", "limit": 1000}
    ).json()
    assert "2025-08-06" in [e["session"] for e in golden["events"]]
