"""validate_bars on columns gives exactly what it gives on the same bars one by one."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, date, datetime

import numpy as np
import pytest

from app.market.bars import Bar
from app.market.columns import BarColumns
from app.market.service import read_csv_file
from app.market.validation import BadData, ValidationResult, validate_bars
from tests.conftest import data_file

# Monday 2026-08-24, 23:00 UTC: the real series' last session (Fri 08-21) has closed.
NOW = datetime(2026, 8, 24, 23, 0, tzinfo=UTC)


def columns(bars: Sequence[Bar]) -> BarColumns:
    return BarColumns(
        np.array([bar.session for bar in bars], dtype="datetime64[D]"),
        np.array([bar.close for bar in bars]),
        np.array([bar.open for bar in bars]),
    )


def outcome(bars: Sequence[Bar], **kwargs: object) -> tuple[list[Bar], object] | str:
    try:
        result: ValidationResult = validate_bars(bars, now=NOW, **kwargs)  # type: ignore[arg-type]
    except BadData as exc:
        return exc.reason
    return list(result.accepted), result.rejected


@pytest.fixture(scope="module")
def series() -> list[Bar]:
    return [
        replace(bar, high=None, low=None)
        for bar in read_csv_file(data_file("rut_daily.csv"))[-600:]
        if bar.open is not None
    ]


def with_close(bars: list[Bar], index: int, close: float) -> list[Bar]:
    return [*bars[:index], replace(bars[index], close=close), *bars[index + 1 :]]


def test_good_columns_are_accepted_whole(series: list[Bar]) -> None:
    given = columns(series)
    result = validate_bars(given, now=NOW, last_stored=(date(1990, 1, 2), series[0].close))
    assert result.accepted is given and result.rejected == []
    assert outcome(given) == outcome(series)


@pytest.mark.parametrize(
    "change",
    [
        lambda b: with_close(b, 100, b[100].close * 1.5),  # a spike: a bad tick
        lambda b: with_close(b, 100, b[100].close * 0.5),  # a dip
        lambda b: with_close(b, 0, b[0].close * 2),  # first bar, judged against last_stored
        lambda b: with_close(b, 100, math.nan),
        lambda b: with_close(b, 100, math.inf),
        lambda b: with_close(b, 100, -1.0),
        lambda b: with_close(b, 100, 0.0),
        lambda b: [*b[:50], replace(b[50], session=date(2025, 12, 25)), *b[51:]][40:60],
        lambda b: [*b, Bar(date(2026, 8, 29), 1.0, 1.0)],  # a Saturday, and the future
        lambda b: [*b, Bar(date(2026, 8, 25), 1.0, 1.0)],  # not closed yet
        lambda b: [*b[:10], b[9], *b[10:]],  # a duplicate
        lambda b: [*b[:10], b[11], b[10], *b[12:]],  # out of order
        lambda b: b[::-1],
        lambda b: b[-1:],
        lambda b: b[-2:],
    ],
)
@pytest.mark.parametrize("stored_close", [None, 1.0, 10_000.0, -1.0, math.nan])
def test_columns_give_the_bar_by_bar_result(
    series: list[Bar], change: object, stored_close: float | None
) -> None:
    bars = change(series)  # type: ignore[operator]
    last_stored = None if stored_close is None else (date(2000, 1, 3), stored_close)
    assert outcome(columns(bars), last_stored=last_stored) == outcome(bars, last_stored=last_stored)
