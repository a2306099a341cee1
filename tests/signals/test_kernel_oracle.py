"""The kernel against the exact oracle on every real series, over its full history."""

from __future__ import annotations

import math

import numpy as np
import pytest

from app.signals.kernel import (
    detect,
    flat_sessions_to_cross,
    trigger_close,
    zigzag,
)
from tests.signals import oracle


@pytest.fixture(scope="module", params=oracle.SERIES)
def series(request: pytest.FixtureRequest) -> tuple[str, list[str], list[float]]:
    dates, closes = oracle.load_series(request.param)
    return request.param, dates, closes


def test_sma_crosses_regimes_trigger_and_flat_match_exact_oracle(
    series: tuple[str, list[str], list[float]],
) -> None:
    _, _, closes = series
    matrix = np.array([closes])
    signals = detect(matrix)
    reference = oracle.sma_crosses(closes)

    kernel_crosses = [(int(t), int(signals.cross[0, t])) for t in np.flatnonzero(signals.cross[0])]
    assert kernel_crosses == reference.crosses
    assert signals.regime[0].tolist() == reference.regimes
    assert signals.sign[0].tolist() == reference.signs
    kernel_trigger = trigger_close(matrix, signals)[0]
    if reference.trigger is None:  # the solution is not positive: the rule says null
        assert math.isnan(kernel_trigger)
    else:
        assert math.isclose(kernel_trigger, float(reference.trigger), rel_tol=1e-12)
    assert flat_sessions_to_cross(matrix, signals)[0] == reference.flat_sessions


def test_ema_crosses_match_decimal_oracle(series: tuple[str, list[str], list[float]]) -> None:
    _, _, closes = series
    signals = detect(np.array([closes]), kind="ema")
    reference = oracle.ema_crosses(closes)
    kernel_crosses = [(int(t), int(signals.cross[0, t])) for t in np.flatnonzero(signals.cross[0])]
    assert kernel_crosses == reference.crosses
    assert signals.regime[0].tolist() == reference.regimes


def test_zigzag_turns_match_exact_oracle(series: tuple[str, list[str], list[float]]) -> None:
    _, _, closes = series
    turns = zigzag(np.array([closes]))
    reference = oracle.zigzag(closes)
    assert list(
        zip(turns.session.tolist(), turns.confirmed.tolist(), turns.kind.tolist(), strict=True)
    ) == [(turn.session, turn.confirmed, turn.kind) for turn in reference]


def test_all_series_in_one_padded_matrix_equal_each_alone() -> None:
    loaded = [oracle.load_series(name)[1] for name in oracle.SERIES]
    width = max(len(closes) for closes in loaded)
    matrix = np.full((len(loaded), width), np.nan)
    for row, closes in enumerate(loaded):
        matrix[row, width - len(closes) :] = closes
    together = detect(matrix)
    turns = zigzag(matrix)
    for row, closes in enumerate(loaded):
        alone = detect(np.array([closes]))
        offset = width - len(closes)
        assert np.array_equal(together.fast_ma[row, offset:], alone.fast_ma[0], equal_nan=True)
        assert np.array_equal(together.slow_ma[row, offset:], alone.slow_ma[0], equal_nan=True)
        assert np.array_equal(together.cross[row, offset:], alone.cross[0])
        assert np.array_equal(together.regime[row, offset:], alone.regime[0])
        alone_turns = zigzag(np.array([closes]))
        mine = turns.symbol == row
        assert np.array_equal(turns.session[mine] - offset, alone_turns.session)
        assert np.array_equal(turns.confirmed[mine] - offset, alone_turns.confirmed)


def test_russell_2000_2025_crosses_and_the_2025_08_01_outlook() -> None:
    dates, closes = oracle.load_series("rut")
    signals = detect(np.array([closes]))
    crosses_2025 = [
        (dates[t], int(signals.cross[0, t]))
        for t in np.flatnonzero(signals.cross[0])
        if dates[t].startswith("2025")
    ]
    assert crosses_2025 == [("2025-03-20", -1), ("2025-08-06", 1)]

    day = dates.index("2025-08-01")
    assert closes[day] == 2166.78
    upto = np.array([closes[: day + 1]])
    on_day = detect(upto)
    assert on_day.regime[0, -1] == -1
    trigger = trigger_close(upto, on_day)[0]
    assert trigger == pytest.approx(2632.95, abs=0.01)
    assert trigger / closes[day] - 1 > 0.2  # an implausible one-day move
    assert flat_sessions_to_cross(upto, on_day)[0] == 4
