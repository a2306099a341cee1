"""The server-drawn SVG: lines with gaps for NaN warm-up, one marker per cross; a
universe's breadth shares on a fixed 0-100 % scale."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np

from app.status.chart import (
    BOTTOM,
    DASH,
    DOTS,
    HEIGHT,
    TOP,
    BreadthSeries,
    Series,
    render,
    render_breadth,
    slug,
)
from tests.status.dom import Node, parse


def series(n: int = 6) -> Series:
    nan = np.nan
    return Series(
        symbol="^RUT",
        sessions=[date(2026, 1, 5) + timedelta(days=i) for i in range(n)],
        closes=np.array([10.0, 11.0, 12.0, 11.0, 9.0, 13.0][:n]),
        fast=np.array([nan, 10.5, 11.5, 11.5, 10.0, 11.0][:n]),
        slow=np.array([nan, nan, 11.0, 11.3, 10.7, 11.0][:n]),
        cross=np.array([0, 0, 0, 0, -1, 1][:n], dtype=np.int8),
        fast_window=2,
        slow_window=3,
    )


def test_each_line_is_a_path_and_warm_up_is_left_blank() -> None:
    svg = parse(render(series())).by_id("chart-rut")
    paths = {p.attrs["id"]: p.attrs["d"] for p in svg.find_all("path")}
    assert set(paths) == {"price-rut", "fast-ma-rut", "slow-ma-rut"}
    assert paths["price-rut"].count("M") == 1 and paths["price-rut"].count("L") == 5
    assert paths["fast-ma-rut"].count("L") == 4
    assert paths["slow-ma-rut"].count("L") == 3


def test_a_nan_gap_starts_a_new_segment() -> None:
    gapped = series()
    gapped.closes[2] = np.nan
    d = parse(render(gapped)).by_id("price-rut").attrs["d"]
    assert d.count("M") == 2


def test_crosses_are_marked_by_kind_and_the_extremes_fit_the_plot() -> None:
    svg = parse(render(series())).by_id("chart-rut")
    markers = svg.find_all("polygon", "cross")
    assert [sorted(m.classes) for m in markers] == [["cross", "death"], ["cross", "golden"]]
    ys = [float(v.split(" ")[1]) for v in svg.by_id("price-rut").attrs["d"][1:].split(" L")]
    assert min(ys) >= 8 and max(ys) <= 230 - 24  # inside the plot's top and bottom margins
    assert ys.index(min(ys)) == 5  # the highest close is drawn highest


def points(marker: Node) -> list[tuple[float, float]]:
    pairs = marker.attrs["points"].split()
    return [(float(x), float(y)) for x, y in (pair.split(",") for pair in pairs)]


def pointing(marker: Node) -> str:
    """``up`` when a triangle's lone vertex is above its base, ``down`` when below."""
    corners = points(marker)
    assert len(corners) == 3, corners
    ys = sorted(y for _, y in corners)
    if ys[0] < ys[1] == ys[2]:
        return "up"
    if ys[0] == ys[1] < ys[2]:
        return "down"
    raise AssertionError(f"not a level triangle: {corners}")


def test_crosses_differ_in_shape_not_only_colour() -> None:
    svg = parse(render(series())).by_id("chart-rut")
    (death,) = svg.find_all("polygon", "death")
    (golden,) = svg.find_all("polygon", "golden")
    assert pointing(golden) == "up" and pointing(death) == "down"
    # each triangle is centred on its session's close: x of the apex is the session's x
    close_points = svg.by_id("price-rut").attrs["d"][1:].split(" L")
    for marker, index in ((death, 4), (golden, 5)):
        x, _y = (float(v) for v in close_points[index].split(" "))
        apex = min(points(marker), key=lambda p: p[1] if pointing(marker) == "up" else -p[1])
        assert apex[0] == x


def test_the_slow_average_is_dashed_and_the_others_solid() -> None:
    svg = parse(render(series())).by_id("chart-rut")
    dashes = {p.attrs["id"]: p.attrs.get("stroke-dasharray") for p in svg.find_all("path")}
    assert dashes["price-rut"] is None and dashes["fast-ma-rut"] is None
    assert dashes["slow-ma-rut"] == DASH
    assert len(DASH.split()) == 2 and all(float(v) > 0 for v in DASH.split())


def test_the_label_is_escaped_and_empty_series_draw_nothing() -> None:
    strange = series()
    strange = Series(**{**strange.__dict__, "symbol": '<b>"X"'})
    assert "<b>" not in render(strange)
    assert render(series(0)) == ""
    assert slug("^GSPC") == "gspc" and slug("BRK.B") == "brk-b"


def shares(n: int = 5, universe: str = "Small caps") -> BreadthSeries:
    nan = np.nan
    return BreadthSeries(
        universe=universe,
        sessions=[date(2026, 1, 5) + timedelta(days=i) for i in range(n)],
        above_fast=np.array([nan, 0.0, 50.0, 100.0, 75.0][:n]),
        above_slow=np.array([nan, nan, 40.0, nan, 60.0][:n]),
        golden_regime=np.array([nan, nan, nan, 100.0, 100.0][:n]),
        fast_window=50,
        slow_window=200,
    )


def ys(path: Node) -> list[float]:
    return [float(p.split(" ")[1]) for p in path.attrs["d"][1:].replace("M", "L").split(" L")]


def test_breadth_shares_are_drawn_on_a_fixed_percent_scale() -> None:
    svg = parse(render_breadth(shares())).by_id("breadth-chart-small-caps")
    fast = svg.by_id("above-fast-small-caps")
    low, middle, high, _ = ys(fast)
    assert TOP <= high < middle < low <= HEIGHT - BOTTOM  # 100 % on top, 0 % at the bottom
    assert abs((low + high) / 2 - middle) < 0.11  # 50 % halfway
    # NaN (no denominator that session) leaves a gap: a new segment after it
    assert svg.by_id("above-slow-small-caps").attrs["d"].count("M") == 2
    assert svg.by_id("above-slow-small-caps").attrs["stroke-dasharray"] == DASH
    assert svg.by_id("golden-regime-small-caps").attrs["stroke-dasharray"] == DOTS
    assert "stroke-dasharray" not in fast.attrs
    assert not svg.find_all("polygon")
    # the same 0-100 % scale whatever the data: 100 % is as high on every chart
    other = shares()
    other.above_fast[:] = [np.nan, 100.0, 100.0, 100.0, 100.0]
    assert ys(parse(render_breadth(other)).by_id("above-fast-small-caps"))[0] == high


def test_breadth_labels_are_escaped_and_nothing_to_draw_draws_nothing() -> None:
    assert "<b>" not in render_breadth(shares(universe="<b>x"))
    assert render_breadth(shares(0)) == ""
    assert render_breadth(shares(1)) == ""  # one session, no share yet
