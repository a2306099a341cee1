"""``cut_panel``: the panel as it was after a session's close, against a per-row cut
written here, over random right-aligned panels (short, empty, late-starting and
early-ending rows)."""

from __future__ import annotations

from datetime import date

import numpy as np
import numpy.typing as npt

from app.market.repository import ClosePanel
from app.signals.brief_cut import cut_panel

DAYS = np.busday_offset(np.datetime64("2020-01-01"), np.arange(60)).astype("datetime64[D]")
Row = tuple[npt.NDArray[np.datetime64], npt.NDArray[np.float64]]


def _panel(rows: list[Row]) -> ClosePanel:
    width = max(len(days) for days, _ in rows)
    closes = np.full((len(rows), width), np.nan)
    sessions = np.full((len(rows), width), np.datetime64("NaT"), dtype="datetime64[D]")
    for r, (days, values) in enumerate(rows):
        if len(days):
            closes[r, width - len(days) :] = values
            sessions[r, width - len(days) :] = days
    return ClosePanel([f"S{r}" for r in range(len(rows))], closes, sessions)


def test_a_cut_keeps_each_rows_closes_up_to_the_day_right_aligned() -> None:
    rng = np.random.default_rng(15)
    for _ in range(1000):
        rows: list[Row] = []
        for _ in range(int(rng.integers(1, 6))):
            end = int(rng.integers(0, DAYS.size + 1))
            length = int(rng.integers(0, end + 1))
            rows.append((DAYS[end - length : end], rng.random(length)))
        day = DAYS[int(rng.integers(0, DAYS.size))]
        cut = cut_panel(_panel(rows), day.astype(date))
        expected = _panel([(days[days <= day], values[days <= day]) for days, values in rows])
        assert cut.symbols == expected.symbols
        np.testing.assert_array_equal(cut.closes, expected.closes)
        np.testing.assert_array_equal(cut.sessions, expected.sessions)


def test_rows_that_all_end_together_are_a_view() -> None:
    panel = _panel([(DAYS[-10:], np.arange(10.0)), (DAYS[-5:], np.arange(5.0))])
    cut = cut_panel(panel, DAYS[-3].astype(date))
    assert np.shares_memory(cut.closes, panel.closes)
    np.testing.assert_array_equal(cut.closes, [np.arange(8.0), [np.nan] * 5 + [0.0, 1, 2]])
