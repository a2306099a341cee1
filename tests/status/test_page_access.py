"""The status page is readable by everyone: contrast, more than colour, a refresh that
stops, tables that fit a phone. Read from the served HTML and its own stylesheet."""

from __future__ import annotations

from typing import Any

import pytest

from app.db.engine import Database
from app.market.bars import Bar
from app.status.chart import DASH
from tests.conftest import FIXED_NOW
from tests.status.conftest import SYMBOLS, poll_settings, run_poll
from tests.status.css import Rule, contrast, declared, stylesheet
from tests.status.dom import Node, parse
from tests.status.test_chart import pointing
from tests.support.stores import seed

AA_TEXT = 4.5
PAGE, CARD = "var(--bg)", "var(--card)"
# Text set in a colour on the page or a card (the backgrounds it can sit on).
TEXT = [
    "body", ".muted", "a", "th", "dt", "td.error", ".state.operational", ".state.degraded",
    ".state.down", ".state.unknown", ".legend", ".legend .l-price", ".legend .l-fast",
    ".legend .l-slow", ".legend .l-golden", ".legend .l-death", ".legend .l-regime",
]  # fmt: skip
# Text on a coloured fill: (rule giving the text colour, rule giving the fill).
ON_FILL = [
    (".banner", ".banner.operational"), (".banner", ".banner.degraded"),
    (".banner", ".banner.down"), (".banner", ".banner.unknown"), (".badge", ".badge"),
    (".badge.golden", ".badge.golden"), (".badge", ".badge.death"),
    (".badge", ".badge.fresh"), (".badge", ".badge.stale"),
]  # fmt: skip
# Chart marks that carry meaning, drawn on a card: they share the legend's colours.
MARKS = [
    ("svg.chart .price", "stroke"), ("svg.chart .fast-ma", "stroke"),
    ("svg.chart .slow-ma", "stroke"), ("svg.chart .cross.golden", "fill"),
    ("svg.chart .cross.death", "fill"), ("svg.chart .golden-regime", "stroke"),
]  # fmt: skip


@pytest.fixture
def client(
    db: Database, database_url: str, real_series: dict[str, list[Bar]], client_for: Any
) -> Any:
    """A seeded store after a poll that failed for every symbol (Stooq has no key), then a
    poll Yahoo answered: the polls table shows errors, the charts show crosses."""
    seed(db, SYMBOLS, now=FIXED_NOW)
    run_poll(db, poll_settings(database_url, ["stooq"]), real_series)
    settings = poll_settings(database_url, ["stooq", "yahoo"])
    run_poll(db, settings, real_series)
    return client_for(settings, db)


def page(client: Any, url: str = "/status") -> Node:
    response = client.get(url)
    assert response.status_code == 200
    return parse(response.text)


def test_every_text_colour_meets_wcag_aa_on_the_page_and_on_a_card(client: Any) -> None:
    rules = stylesheet(page(client))
    backgrounds = {name: declared(rules, ":root", f"--{name}") for name in ("bg", "card")}
    assert declared(rules, "body", "background") == backgrounds["bg"]
    assert declared(rules, ".card", "background") == backgrounds["card"]
    ratios: dict[str, float] = {}
    for selector in TEXT:
        for name, background in backgrounds.items():
            ratios[f"{selector} on {name}"] = contrast(
                declared(rules, selector, "color"), background
            )
    for text, fill in ON_FILL:
        foreground = declared(rules, text, "color")
        ratios[f"{text} on {fill}"] = contrast(foreground, declared(rules, fill, "background"))
    failing = {pair: round(ratio, 2) for pair, ratio in ratios.items() if ratio < AA_TEXT}
    assert not failing
    # every colour the stylesheet gives to text is in the lists above
    coloured = {r.selector for r in rules if "color" in r.declarations and r.media is None}
    assert coloured <= set(TEXT) | {text for text, _ in ON_FILL}


def test_the_chart_marks_share_the_legend_colours_and_meet_aa_on_a_card(client: Any) -> None:
    rules = stylesheet(page(client))
    card = declared(rules, ":root", "--card")
    legend = {
        "svg.chart .price": ".legend .l-price", "svg.chart .fast-ma": ".legend .l-fast",
        "svg.chart .slow-ma": ".legend .l-slow", "svg.chart .cross.golden": ".legend .l-golden",
        "svg.chart .cross.death": ".legend .l-death",
        "svg.chart .golden-regime": ".legend .l-regime",
    }  # fmt: skip
    for selector, prop in MARKS:
        colour = declared(rules, selector, prop)
        assert contrast(colour, card) >= AA_TEXT, (selector, colour)
        assert colour == declared(rules, legend[selector], "color")


def test_the_legend_draws_each_key_as_the_chart_does(client: Any) -> None:
    dom = page(client)
    for symbol in ("rut", "gspc", "ixic"):
        card = dom.by_id(f"symbol-{symbol}")
        (svg,) = card.find_all("svg", "chart")
        (legend,) = card.find_all(cls="legend")
        keys = {entry.attrs["class"]: entry for entry in legend.find_all("li")}
        assert set(keys) == {"l-price", "l-fast", "l-slow", "l-golden", "l-death"}
        for entry in keys.values():
            (key,) = entry.find_all("svg")
            assert key.attrs["aria-hidden"] == "true"  # the words name the entry
            assert entry.text()  # …and there are words
        lines = {k: keys[k].find_all("line")[0] for k in ("l-price", "l-fast", "l-slow")}
        assert lines["l-slow"].attrs["stroke-dasharray"] == DASH
        assert "stroke-dasharray" not in lines["l-fast"].attrs
        assert "stroke-dasharray" not in lines["l-price"].attrs
        assert svg.by_id(f"slow-ma-{symbol}").attrs["stroke-dasharray"] == DASH
        assert "stroke-dasharray" not in svg.by_id(f"fast-ma-{symbol}").attrs
        (golden_key,) = keys["l-golden"].find_all("polygon", "golden")
        (death_key,) = keys["l-death"].find_all("polygon", "death")
        assert pointing(golden_key) == "up" and pointing(death_key) == "down"
        markers = svg.find_all("polygon", "cross")
        assert markers and svg.find_all("polygon", "golden") and svg.find_all("polygon", "death")
        for marker in markers:
            assert pointing(marker) == ("up" if "golden" in marker.classes else "down")
        assert not svg.find_all("circle")
        assert "golden cross" in keys["l-golden"].text() and "death" in keys["l-death"].text()
        assert "dashed" in keys["l-slow"].text()


def refresh_directives(dom: Node) -> list[Node]:
    return [m for m in dom.find_all("meta") if m.attrs.get("http-equiv", "").lower() == "refresh"]


def test_auto_refresh_runs_by_default_and_a_plain_link_pauses_and_resumes_it(
    client: Any,
) -> None:
    response = client.get("/status")
    assert "refresh" not in {name.lower() for name in response.headers}
    dom = parse(response.text)
    (directive,) = refresh_directives(dom)
    assert directive.attrs["content"] == "60"
    (pause,) = [a for a in dom.find_all("a") if a.attrs.get("href") == "/status?refresh=off"]
    assert pause.text() == "Pause auto-refresh"

    paused_response = client.get(pause.attrs["href"])
    assert "refresh" not in {name.lower() for name in paused_response.headers}
    paused = parse(paused_response.text)
    assert refresh_directives(paused) == []
    assert "Auto-refresh paused" in paused.by_id("refresh").text()
    (resume,) = [a for a in paused.find_all("a") if a.attrs.get("href") == "/status"]
    assert resume.text() == "Resume auto-refresh"
    assert paused.by_id("polls").text() == dom.by_id("polls").text()  # the same facts
    assert refresh_directives(page(client, "/status?refresh=on")) != []


def _media(rules: list[Rule]) -> str:
    conditions = {r.media for r in rules if r.media}
    (narrow,) = [c for c in conditions if "max-width" in c]
    return narrow


def test_tables_stack_into_labelled_rows_on_a_phone(client: Any) -> None:
    dom = page(client)
    rules = stylesheet(dom)
    narrow = _media(rules)
    width = int(narrow.split("max-width:")[1].strip(" )").removesuffix("px"))
    assert width >= 390  # a 390 px phone gets the stacked layout
    polls = dom.by_id("polls")
    assert "stack" in polls.classes
    headers = [th.text() for th in polls.find_all("th")]
    rows = polls.find_all("tbody")[0].find_all("tr")
    assert rows
    for row in rows:
        assert [td.attrs.get("data-label") for td in row.find_all("td")] == headers
    errors = [td for td in polls.find_all("td", "error") if td.attrs["data-label"] == "Errors"]
    assert any("Stooq needs an API key" in td.text() for td in errors)
    assert declared(rules, "table.stack tr", "display", narrow) == "block"
    assert declared(rules, "table.stack td", "display", narrow) == "grid"
    assert declared(rules, "table.stack thead", "position", narrow) == "absolute"  # for readers
    assert declared(rules, "table.stack td::before", "content", narrow) == "attr(data-label)"
    assert declared(rules, "td.error", "overflow-wrap") == "anywhere"  # long reasons wrap
