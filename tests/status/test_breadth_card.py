"""Each universe's breadth card on ``/status`` and in ``/v1/status``: the newest
``/v1/breadth`` row, a chart of its shares drawn like the symbol charts, a legend that
draws the same keys, and a card that says so when no member has a close yet."""

from __future__ import annotations

from typing import Any

import pytest

from app.db.engine import Database
from app.market import universes
from app.market.bars import Bar
from app.status.chart import DASH, DOTS
from tests.conftest import FIXED_NOW
from tests.status.conftest import SYMBOLS, poll_settings, store_real
from tests.status.dom import Node, parse


@pytest.fixture
def client(
    db: Database, database_url: str, real_series: dict[str, list[Bar]], client_for: Any
) -> Any:
    """The three indices' real closes; universes of all three, of one, and of a symbol
    tracked but never polled."""
    store_real(db, real_series)
    with db.transaction() as session:
        universes.replace(session, "indices", SYMBOLS, now=FIXED_NOW)
        universes.replace(session, "small", ["^RUT"], now=FIXED_NOW)
        universes.replace(session, "newcomers", ["NEWCO"], now=FIXED_NOW)
    return client_for(poll_settings(database_url, ["yahoo"]), db)


def page(client: Any) -> Node:
    response = client.get("/status")
    assert response.status_code == 200
    return parse(response.text)


def test_each_universe_has_the_newest_breadth_row_in_the_json(client: Any) -> None:
    report = client.get("/v1/status").json()
    cards = {card["universe"]: card for card in report["breadth"]}
    assert list(cards) == ["indices", "newcomers", "small"]
    for name, symbols in (("indices", 3), ("small", 1)):
        rows = client.get("/v1/breadth", params={"universe": name}).json()["rows"]
        assert cards[name]["newest"] == rows[-1]
        assert cards[name]["symbols"] == symbols
        assert cards[name]["chart_sessions"] == 504  # 800 stored, about two years charted
    assert cards["indices"]["newest"]["members"] == 3
    assert cards["newcomers"] == {
        "universe": "newcomers",
        "symbols": 1,
        "newest": None,
        "chart_sessions": 0,
    }


def test_the_card_shows_the_figures_and_a_chart_of_the_shares(client: Any) -> None:
    newest = client.get("/v1/breadth", params={"universe": "indices"}).json()["rows"][-1]
    card = page(client).by_id("breadth-indices")
    text = card.text()
    assert "indices" in text and "3 symbols" in text
    assert f"Session {newest['session']}" in text
    assert f"Above 50-session avg {newest['above_fast_pct']:.1f}%" in text
    assert f"Above 200-session avg {newest['above_slow_pct']:.1f}%" in text
    assert f"Golden regime {newest['golden_regime_pct']:.1f}%" in text
    assert f"New highs / lows {newest['new_highs']} / {newest['new_lows']}" in text
    (svg,) = card.find_all("svg", "chart")
    assert svg.attrs["id"] == "breadth-chart-indices" and svg.attrs["role"] == "img"
    lines = {path.attrs["id"]: path for path in svg.find_all("path")}
    assert set(lines) == {"above-fast-indices", "above-slow-indices", "golden-regime-indices"}
    assert "stroke-dasharray" not in lines["above-fast-indices"].attrs
    assert lines["above-slow-indices"].attrs["stroke-dasharray"] == DASH
    assert lines["golden-regime-indices"].attrs["stroke-dasharray"] == DOTS
    grid = [t.text() for t in svg.find_all("text")]
    assert grid[:5] == ["0%", "25%", "50%", "75%", "100%"]
    assert grid[-1] == newest["session"]


def test_the_legend_draws_each_key_as_the_breadth_chart_does(client: Any) -> None:
    card = page(client).by_id("breadth-small")
    (svg,) = card.find_all("svg", "chart")
    (legend,) = card.find_all(cls="legend")
    keys = {entry.attrs["class"]: entry for entry in legend.find_all("li")}
    assert set(keys) == {"l-fast", "l-slow", "l-regime"}
    for entry in keys.values():
        (key,) = entry.find_all("svg")
        assert key.attrs["aria-hidden"] == "true"
    for entry, line in (
        ("l-fast", "above-fast-small"),
        ("l-slow", "above-slow-small"),
        ("l-regime", "golden-regime-small"),
    ):
        (drawn,) = keys[entry].find_all("line")
        path = svg.by_id(line)
        assert drawn.classes == path.classes
        assert drawn.attrs.get("stroke-dasharray") == path.attrs.get("stroke-dasharray")
    assert "dashed" in keys["l-slow"].text() and "dotted" in keys["l-regime"].text()


def test_a_universe_without_closes_says_so_and_draws_nothing(client: Any) -> None:
    card = page(client).by_id("breadth-newcomers")
    assert "No member has a close yet" in card.text()
    assert not card.find_all("svg")


def test_without_universes_there_is_no_breadth_section(
    db: Database, database_url: str, real_series: dict[str, list[Bar]], client_for: Any
) -> None:
    store_real(db, real_series)
    client = client_for(poll_settings(database_url, ["yahoo"]), db)
    assert client.get("/v1/status").json()["breadth"] == []
    assert "Breadth" not in page(client).text()
