"""``GET /v1/brief`` on stores holding the real bundled history: every figure equals
what the other routes serve for that session (``/v1/signals`` and ``/v1/screen`` on a
store holding the history up to that session, ``/v1/compare``), as JSON and Markdown."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from markdown_it import MarkdownIt

from app.api.app import create_app
from app.db.engine import Database
from app.db.migrate import upgrade
from app.jobs import ingest
from app.market import repository, universes
from app.market.bars import Bar
from app.market.service import bundled_bars
from app.settings import Settings
from tests.conftest import run_cli

NOW = datetime(2026, 8, 24, 23, 0, tzinfo=UTC)
INDICES = ("^RUT", "^GSPC", "^IXIC")
DAY = date(2025, 8, 1)


def _store(path: str, until: date | None, *, stocks: int = 0) -> str:
    """A migrated SQLite store holding the bundled history (up to ``until``), and
    ``stocks`` short histories (400 sessions of ^RUT's closes, each scaled its own way)."""
    url = f"sqlite:///{path}"
    db = Database(url)
    upgrade(db.engine)
    series = {symbol: bundled_bars(symbol) for symbol in INDICES}
    for k in range(stocks):
        series[f"STK{k}"] = [
            Bar(bar.session, round(bar.close * (1 + k / 7) / 50 + k * (i % 9), 2))
            for i, bar in enumerate(series["^RUT"][-400:])
        ]
    writes = [
        repository.BarWrite(
            symbol,
            [bar for bar in bars if until is None or bar.session <= until],
            "seed",
            symbol,
        )
        for symbol, bars in series.items()
    ]
    with db.transaction() as session:
        ingest.store_many(session, writes, clock=lambda: NOW)
    db.dispose()
    return url


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """(the whole history, the history up to :data:`DAY`)."""
    folder = tmp_path_factory.mktemp("brief")
    return _store(str(folder / "whole.db"), None), _store(str(folder / "until.db"), DAY)


def _client(settings: Settings, url: str) -> TestClient:
    return TestClient(
        create_app(settings.model_copy(update={"database_url": url}), clock=lambda: NOW)
    )


@pytest.fixture
def client(stores: tuple[str, str], settings: Settings) -> Iterator[TestClient]:
    with _client(settings, stores[0]) as test_client:
        yield test_client


@pytest.fixture
def until_day(stores: tuple[str, str], settings: Settings) -> Iterator[TestClient]:
    with _client(settings, stores[1]) as test_client:
        yield test_client


SIGNAL_FIELDS = (
    "session",
    "close",
    "regime",
    "gap_pct",
    "fast_value",
    "slow_value",
    "last_cross",
    "sessions_since_cross",
    "trigger_close",
    "flat_sessions_to_cross",
    "drawdown_pct",
    "peak",
    "last_trough",
)


def test_the_brief_of_a_session_states_what_the_other_routes_serve_for_it(
    client: TestClient, until_day: TestClient
) -> None:
    answer = client.get("/v1/brief", params={"session": "2025-08-01"})
    assert answer.status_code == 200
    body = answer.json()
    assert body["session"] == "2025-08-01"
    indices = {i["symbol"]: i for i in body["indices"]}
    assert set(indices) == set(INDICES)
    rut = indices["^RUT"]
    assert rut["close"] == 2166.78
    assert rut["regime"] == "death"
    assert rut["stale"] is False
    # /v1/compare: the year-to-date returns, side by side.
    compared = client.get(
        "/v1/compare", params={"symbols": ",".join(INDICES), "start": "ytd", "end": "2025-08-01"}
    ).json()["returns"]
    assert {r["symbol"]: r["return_pct"] for r in compared} == {
        s: indices[s]["ytd_return_pct"] for s in INDICES
    }
    # /v1/signals and /v1/screen as they answered after the close of 2025-08-01.
    for symbol in INDICES:
        signal = until_day.get(f"/v1/signals/{symbol.replace('^', '%5E')}").json()
        assert {f: indices[symbol][f] for f in SIGNAL_FIELDS} == {
            f: signal[f] for f in SIGNAL_FIELDS
        }
        (row,) = until_day.get("/v1/screen", params={"symbols": symbol}).json()["rows"]
        assert indices[symbol]["change_pct"] == row["change_pct"]
        assert indices[symbol]["trigger_distance_pct"] == row["trigger_distance_pct"]
    # And the change on the day from the stored closes themselves.
    bars = client.get(
        "/v1/symbols/%5ERUT/closes", params={"start": "2025-07-31", "end": "2025-08-01"}
    ).json()["bars"]
    assert rut["change_pct"] == pytest.approx((2166.78 / bars[0]["close"] - 1) * 100)
    assert rut["trigger_distance_pct"] == pytest.approx(
        abs(rut["trigger_close"] / 2166.78 - 1) * 100
    )
    assert rut["flat_sessions_to_cross"] is not None
    # One section over every tracked symbol (no universe is stored): its breadth is
    # /v1/breadth's row of that session.
    (section,) = body["universes"]
    assert section["universe"] is None
    (breadth_row,) = client.get(
        "/v1/breadth", params={"start": "2025-08-01", "end": "2025-08-01"}
    ).json()["rows"]
    assert section["breadth"] == breadth_row
    assert [r["symbol"] for r in section["closest_to_golden_cross"]] == ["^RUT"]
    assert (
        section["closest_to_golden_cross"][0]
        == until_day.get("/v1/screen", params={"symbols": "^RUT"}).json()["rows"][0]
    )


def test_the_markdown_brief_reads_as_a_page(client: TestClient) -> None:
    answer = client.get(
        "/v1/brief", params={"session": "2025-08-01"}, headers={"Accept": "text/markdown"}
    )
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "text/markdown; charset=utf-8"
    body = client.get("/v1/brief", params={"session": "2025-08-01"}).json()
    rut = next(i for i in body["indices"] if i["symbol"] == "^RUT")
    others = {i["symbol"]: i for i in body["indices"]}
    text = answer.text
    assert text.startswith("# Crosswatch brief, 2025-08-01\n")
    assert (
        f"- Close 2,166.78 ({rut['change_pct']:+.2f}% on the day); year to date "
        f"{rut['ytd_return_pct']:+.2f}% (^GSPC {others['^GSPC']['ytd_return_pct']:+.2f}%, "
        f"^IXIC {others['^IXIC']['ytd_return_pct']:+.2f}%)." in text
    )
    assert "- Death regime since the death cross of 2025-03-20" in text
    assert (
        f"- Golden-cross watch: a close at {rut['trigger_close']:,.2f} "
        f"({rut['trigger_distance_pct']:.2f}% above this close) makes the cross next session; "
        f"at a flat 2,166.78 it comes in {rut['flat_sessions_to_cross']} sessions." in text
    )
    html = MarkdownIt("commonmark").enable("table").render(text)
    assert "<h1>Crosswatch brief, 2025-08-01</h1>" in html
    assert html.count("<table>") == 4  # the indices, and the section's three top lists
    assert "<td>^RUT</td>" in html


def test_the_default_session_is_the_newest(client: TestClient) -> None:
    assert client.get("/v1/brief").json()["session"] == "2026-08-21"


def test_an_unknown_session_or_universe_is_404_and_a_malformed_one_422(
    client: TestClient,
) -> None:
    for params in ({"session": "2025-08-02"}, {"session": "1901-01-02"}, {"universe": "nope"}):
        answer = client.get("/v1/brief", params=params)
        assert answer.status_code == 404, params
        assert answer.headers["content-type"] == "application/problem+json"
    for params in ({"session": "2025-8-1"}, {"session": "0"}, {"top": "0"}):
        answer = client.get("/v1/brief", params=params)
        assert answer.status_code == 422, params
        assert answer.headers["content-type"] == "application/problem+json"


def test_a_universe_gets_its_own_section_as_of_the_session(
    settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A universe's section of 2025-08-01 on the whole history equals the one of a store
    holding the history up to that day."""
    folder = tmp_path_factory.mktemp("universe")
    sections = []
    for url in (_store(str(folder / "whole.db"), None), _store(str(folder / "until.db"), DAY)):
        db = Database(url)
        with db.transaction() as session:
            universes.replace(session, "majors", ["^GSPC", "^IXIC"], now=NOW)
        db.dispose()
        with _client(settings, url) as client:
            body: dict[str, Any] = client.get(
                "/v1/brief", params={"universe": "Majors", "session": "2025-08-01"}
            ).json()
            (section,) = body["universes"]
            sections.append(section)
            # Without universe=: every stored universe.
            assert [u["universe"] for u in client.get("/v1/brief").json()["universes"]] == [
                "majors"
            ]
    whole, until = sections
    assert whole == until
    assert whole["universe"] == "majors"
    assert whole["breadth"]["members"] == 2
    assert whole["closest_to_golden_cross"] == []  # both are golden
    assert [r["symbol"] for r in whole["top_gainers"]] == ["^IXIC", "^GSPC"]
    assert [r["symbol"] for r in whole["top_decliners"]] == ["^GSPC", "^IXIC"]
    assert all(r["session"] == "2025-08-01" for r in whole["top_gainers"])


def test_a_past_section_over_short_and_century_long_histories(
    settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Members with short histories and the indices are cut apart (a cut is as wide as
    its longest row); the section's top rows, merged, are those of a store holding the
    history up to that day."""
    folder = tmp_path_factory.mktemp("mixed")
    sections = []
    for url in (
        _store(str(folder / "whole.db"), None, stocks=6),
        _store(str(folder / "until.db"), DAY, stocks=6),
    ):
        with _client(settings, url) as client:
            body = client.get("/v1/brief", params={"session": "2025-08-01", "top": 20}).json()
        (section,) = body["universes"]
        sections.append(section)
    whole, until = sections
    assert whole == until
    assert len(whole["top_gainers"]) == 9
    assert {r["symbol"] for r in whole["top_gainers"]} >= {"^RUT", "STK0"}


def test_the_openapi_declares_the_markdown_answer(client: TestClient) -> None:
    operation = client.get("/openapi.json").json()["paths"]["/v1/brief"]["get"]
    content = operation["responses"]["200"]["content"]
    assert content["text/markdown"] == {"schema": {"type": "string"}}
    assert content["application/json"] == {"schema": {"$ref": "#/components/schemas/Brief"}}


def test_the_command_prints_the_brief(stores: tuple[str, str], client: TestClient) -> None:
    markdown = run_cli("brief", "--session", "2025-08-01", database_url=stores[0])
    assert markdown.returncode == 0, markdown.stderr
    served = client.get(
        "/v1/brief", params={"session": "2025-08-01"}, headers={"Accept": "text/markdown"}
    )
    assert markdown.stdout == served.text
    as_json = run_cli("brief", "--format", "json", database_url=stores[0])
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout) == client.get("/v1/brief").json()
    for args, message in (
        (("--session", "2025-8-1"), "error: session '2025-8-1' is not a date as YYYY-MM-DD"),
        (("--session", "2025-08-02"), "error: no stored closes on 2025-08-02"),
        (("--universe", "nope"), "error: unknown universe 'nope'"),
        (("--format", "html"), "error: format must be markdown or json, not 'html'"),
    ):
        refused = run_cli("brief", *args, database_url=stores[0])
        assert refused.returncode == 1, args
        assert refused.stdout == ""
        assert refused.stderr.strip().splitlines()[-1].startswith(message), refused.stderr
