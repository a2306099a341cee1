"""The server-drawn SVG: lines with gaps for NaN warm-up, one marker per cross."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np

from app.status.chart import Series, render, slug
from tests.status.dom import parse


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
    markers = svg.find_all("circle", "cross")
    assert [sorted(m.classes) for m in markers] == [["cross", "death"], ["cross", "golden"]]
    ys = [float(v.split(" ")[1]) for v in svg.by_id("price-rut").attrs["d"][1:].split(" L")]
    assert min(ys) >= 8 and max(ys) <= 230 - 24  # inside the plot's top and bottom margins
    assert ys.index(min(ys)) == 5  # the highest close is drawn highest


def test_the_label_is_escaped_and_empty_series_draw_nothing() -> None:
    strange = series()
    strange = Series(**{**strange.__dict__, "symbol": '<b>"X"'})
    assert "<b>" not in render(strange)
    assert render(series(0)) == ""
    assert slug("^GSPC") == "gspc" and slug("BRK.B") == "brk-b"
