"""Hypothesis properties of the screen, breadth and ``universe=`` parameters: whatever
a client sends, a 2xx or a 4xx problem+json, never a 5xx; well-formed screens keep
their promises (count before limit, rows within the filters)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz.conftest import Api
from tests.fuzz.test_query_params import (
    EVENT_TYPES,
    FEW,
    MANY,
    dates,
    handled,
    integers,
    junk,
    maybe,
    numbers,
    query,
    symbol_lists,
)

FIGURES = [
    "close",
    "change_pct",
    "gap_pct",
    "trigger_close",
    "trigger_distance_pct",
    "flat_sessions_to_cross",
    "drawdown_pct",
    "return_pct",
    "relative_volume",
]
universes = st.sampled_from(["nosuch", "NoSuch", "", "a" * 65, "x\x00"]) | junk
sorts = st.sampled_from(FIGURES + [f"-{f}" for f in FIGURES]) | junk


@MANY
@given(
    universe=maybe(universes),
    symbols=maybe(symbol_lists),
    regime=maybe(st.sampled_from(["golden", "death"]), junk),
    low=maybe(numbers, integers),
    high=maybe(numbers, integers),
    sessions=maybe(integers, junk),
    event=maybe(st.sampled_from(EVENT_TYPES), junk),
    within=maybe(integers),
    sort=maybe(sorts),
    limit=maybe(integers, junk),
)
def test_screen_parameters(
    api: Api,
    universe: str | None,
    symbols: str | None,
    regime: str | None,
    low: str | None,
    high: str | None,
    sessions: str | None,
    event: str | None,
    within: str | None,
    sort: str | None,
    limit: str | None,
) -> None:
    response = handled(
        api.client.get(
            "/v1/screen",
            params=query(
                universe=universe,
                symbols=symbols,
                regime=regime,
                min_gap_pct=low,
                max_drawdown_pct=high,
                min_relative_volume=low,
                return_sessions=sessions,
                max_flat_sessions_to_cross=sessions,
                event=event,
                within=within,
                sort=sort,
                limit=limit,
            ),
        )
    )
    if response.status_code == 200:
        body = response.json()
        assert len(body["rows"]) <= body["count"]
        if regime is not None:
            assert all(row["regime"] == regime for row in body["rows"])


@FEW
@given(
    universe=maybe(universes),
    start=maybe(dates),
    end=maybe(dates),
    fast=maybe(integers),
    slow=maybe(integers),
    kind=maybe(st.sampled_from(["sma", "ema"]), junk),
)
def test_breadth_parameters(
    api: Api,
    universe: str | None,
    start: str | None,
    end: str | None,
    fast: str | None,
    slow: str | None,
    kind: str | None,
) -> None:
    response = handled(
        api.client.get(
            "/v1/breadth",
            params=query(universe=universe, start=start, end=end, fast=fast, slow=slow, type=kind),
        )
    )
    if response.status_code == 200:
        rows = response.json()["rows"]
        assert all(row["members"] >= 1 for row in rows)


@FEW
@given(universe=universes, route=st.sampled_from(["signals", "scan", "compare"]))
def test_universe_on_the_read_routes(api: Api, universe: str, route: str) -> None:
    response = handled(api.client.get(f"/v1/{route}", params={"universe": universe}))
    assert response.status_code in (404, 422)
