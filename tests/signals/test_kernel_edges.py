"""Hand-made edge series for the kernel."""

from __future__ import annotations

import math

import numpy as np
import pytest

from app.signals.kernel import (
    advance,
    detect,
    drawdown,
    ema,
    flat_sessions_to_cross,
    forward_returns,
    sma,
    state_from_full,
    trigger_close,
    window_sums,
    zigzag,
)
from tests.signals import oracle


def _series_with_d(pattern: list[float]) -> np.ndarray:
    """Closes with fast=1, slow=2 so that sign(d) follows ``c[t] - c[t-1]``."""
    return np.array([pattern])


@pytest.mark.parametrize("length", [199, 200, 201])
def test_warm_up_boundary(length: int) -> None:
    closes = np.linspace(100.0, 50.0, length)[None, :]
    signals = detect(closes)
    assert signals.start[0] == 199
    assert np.isnan(signals.slow_ma[0, :199]).all()
    assert (signals.sign[0, :199] == 0).all() and (signals.regime[0, :199] == 0).all()
    if length > 199:
        assert signals.sign[0, 199] == -1  # falling: fast below slow
        assert signals.cross[0].tolist() == [0] * length  # never a cross at t0


def test_constant_series_of_10000_sessions_is_all_ties() -> None:
    closes = np.full((1, 10_000), 1234.56)
    signals = detect(closes)
    assert (signals.sign == 0).all() and (signals.regime == 0).all()
    assert not signals.cross.any()
    assert np.array_equal(signals.valid[0], np.arange(10_000) >= 199)


def test_window_sums_match_fsum_on_a_long_random_walk() -> None:
    rng = np.random.default_rng(7)
    closes = 1000.0 * np.exp(np.cumsum(rng.normal(0, 0.02, 10_000)))[None, :]
    for window in (1, 7, 50, 64, 130, 200, 333):
        sums = window_sums(closes, window)[0]
        exact = [math.fsum(closes[0, t - window + 1 : t + 1]) for t in range(window - 1, 10_000)]
        relative = np.abs(sums[window - 1 :] / np.array(exact) - 1)
        assert relative.max() < 1e-14


def test_below_tie_above_is_one_golden_cross_on_above() -> None:
    # fast=1, slow=3 on closes; d>0 when the close beats the 3-session mean.
    closes = np.array([[10.0, 10.0, 10.0, 9.0, 9.0, 9.0, 9.0, 12.0, 13.0]])
    signals = detect(closes, fast=1, slow=3)
    sign = signals.sign[0].tolist()
    assert sign[3] == -1 and sign[6] == 0 and sign[7] == 1
    assert np.flatnonzero(signals.cross[0]).tolist() == [7]
    assert signals.regime[0, 6] == -1  # the tie keeps the death regime


def test_tie_tie_below_after_warm_up_is_no_cross() -> None:
    closes = np.array([[10.0, 10.0, 10.0, 10.0, 9.0, 8.0]])
    signals = detect(closes, fast=1, slow=3)
    assert signals.sign[0].tolist()[2:] == [0, 0, -1, -1]
    assert not signals.cross.any()
    assert signals.regime[0].tolist() == [0, 0, 0, 0, -1, -1]


def test_short_history_next_to_long_equals_running_it_alone() -> None:
    rng = np.random.default_rng(3)
    long_row = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, 900)))
    short_row = 50 * np.exp(np.cumsum(rng.normal(0, 0.02, 333)))
    matrix = np.full((2, 900), np.nan)
    matrix[0] = long_row
    matrix[1, -333:] = short_row
    for kind in ("sma", "ema"):
        together = detect(matrix, 20, 60, kind)
        alone = detect(short_row[None, :], 20, 60, kind)
        assert np.array_equal(together.slow_ma[1, -333:], alone.slow_ma[0], equal_nan=True)
        assert np.array_equal(together.cross[1, -333:], alone.cross[0])
        assert (together.cross[1, :-333] == 0).all()
    assert np.isnan(drawdown(matrix).drawdown[1, :-333]).all()


def test_interior_nan_is_rejected() -> None:
    closes = np.array([[np.nan, 1.0, np.nan, 2.0]])
    with pytest.raises(ValueError, match="left padding"):
        detect(closes, 1, 2)


def test_ema_is_seeded_with_the_sma_then_recurses() -> None:
    closes = np.array([[np.nan, 1.0, 2.0, 3.0, 4.0, 10.0]])
    values = ema(closes, 3)[0]
    assert np.isnan(values[:3]).all()
    assert values[3] == sma(closes, 3)[0, 3] == 2.0
    assert values[4] == pytest.approx(0.5 * 4 + 0.5 * 2)
    assert values[5] == pytest.approx(0.5 * 10 + 0.5 * 3)


def test_drawdown_peak_keeps_the_earliest_equal_maximum() -> None:
    closes = np.array([[5.0, 8.0, 6.0, 8.0, 4.0]])
    result = drawdown(closes)
    assert result.peak_index[0] == 1
    assert result.drawdown[0].tolist() == [0.0, 0.0, -0.25, 0.0, -0.5]


def test_zigzag_first_phase_and_equal_extremes() -> None:
    closes = np.array([[100.0, 110.0, 110.0, 88.0, 80.0, 80.0, 96.0, 97.0]])
    turns = zigzag(closes)
    assert turns.session.tolist() == [1, 4]  # earliest of the equal highs / lows
    assert turns.confirmed.tolist() == [3, 6]  # 88 = 110*0.8, 96 = 80*1.2
    assert turns.kind.tolist() == [1, -1]
    assert math.isnan(turns.change_pct[0]) and turns.change_pct[1] == pytest.approx(-100 * 30 / 110)
    assert turns.state.phase[0] == 1 and turns.state.extreme[0] == 97.0


def test_forward_returns_are_nan_past_the_data() -> None:
    closes = np.array([[1.0, 2.0, 4.0]])
    result = forward_returns(closes, np.array([0, 0]), np.array([0, 1]), horizons=(1, 2))
    assert result[0].tolist() == [1.0, 3.0]
    assert result[1, 0] == 1.0 and math.isnan(result[1, 1])


@pytest.mark.parametrize("kind", ["sma", "ema"])
def test_daily_path_equals_full_recompute_on_real_series(kind: str) -> None:
    loaded = [oracle.load_series(name)[1] for name in oracle.SERIES]
    width = max(len(closes) for closes in loaded)
    matrix = np.full((len(loaded), width), np.nan)
    for row, closes in enumerate(loaded):
        matrix[row, width - len(closes) :] = closes
    steps = 30
    state = state_from_full(matrix[:, : width - steps], kind=kind)  # type: ignore[arg-type]
    all_turns = zigzag(matrix)
    for session in range(width - steps, width):
        state, latest = advance(state, matrix[:, session - 250 : session + 1])
        upto = matrix[:, : session + 1]
        full = detect(upto, kind=kind)  # type: ignore[arg-type]
        assert np.array_equal(latest.fast_ma, full.fast_ma[:, -1])
        assert np.array_equal(latest.slow_ma, full.slow_ma[:, -1])
        assert np.array_equal(latest.regime, full.regime[:, -1])
        assert np.array_equal(latest.cross, full.cross[:, -1])
        assert np.array_equal(latest.trigger_close, trigger_close(upto, full), equal_nan=True)
        assert np.array_equal(latest.flat_sessions_to_cross, flat_sessions_to_cross(upto, full))
        assert np.array_equal(latest.drawdown, drawdown(upto).drawdown[:, -1])
        confirmed = all_turns.confirmed == session
        assert sorted(np.flatnonzero(latest.turn).tolist()) == sorted(
            all_turns.symbol[confirmed].tolist()
        )
    final = state_from_full(matrix, kind=kind)  # type: ignore[arg-type]
    assert np.array_equal(state.peak_index, final.peak_index)
    assert np.array_equal(state.last_cross, final.last_cross)
    assert np.array_equal(state.zigzag.extreme_index, final.zigzag.extreme_index)
    assert np.array_equal(state.zigzag.phase, final.zigzag.phase)


@pytest.mark.parametrize("kind", ["sma", "ema"])
@pytest.mark.parametrize(("fast", "slow"), [(50, 200), (20, 130), (5, 12)])
def test_daily_path_equals_full_for_symbols_starting_after_the_state(
    kind: str, fast: int, slow: int
) -> None:
    # Rows that get their first close after the state was built, and rows that reach
    # their seed / first valid session during the daily steps.
    rng = np.random.default_rng(17)
    width = 3 * slow
    matrix = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, (6, width)), axis=1))
    before = width - slow - 8
    starts = [0, before + 3, before - fast + 4, before - slow + 5, before - slow - 2, 0]
    for row, start in enumerate(starts):
        matrix[row, :start] = np.nan
    state = state_from_full(matrix[:, :before], fast, slow, kind=kind)  # type: ignore[arg-type]
    for session in range(before, width):
        tail = matrix[:, max(0, session - slow - 2) : session + 1]
        if tail.shape[1] < slow:
            continue
        state, latest = advance(state, tail)
        upto = matrix[:, : session + 1]
        full = detect(upto, fast, slow, kind)  # type: ignore[arg-type]
        assert np.array_equal(latest.fast_ma, full.fast_ma[:, -1], equal_nan=True)
        assert np.array_equal(latest.slow_ma, full.slow_ma[:, -1], equal_nan=True)
        assert np.array_equal(latest.regime, full.regime[:, -1])
        assert np.array_equal(latest.cross, full.cross[:, -1])
        assert np.array_equal(latest.flat_sessions_to_cross, flat_sessions_to_cross(upto, full))
    assert np.array_equal(state.first, state_from_full(matrix, fast, slow).first)


def test_row_chunks_give_the_same_signals_as_rows_alone() -> None:
    # More rows than one chunk holds, with padding in some chunks only.
    rng = np.random.default_rng(23)
    matrix = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, (40, 3_000)), axis=1))
    matrix[7, :2_500] = np.nan
    matrix[31, :100] = np.nan
    together = detect(matrix)
    peaks = drawdown(matrix)
    for row in (0, 7, 19, 31, 39):
        offset = int(np.argmax(~np.isnan(matrix[row])))
        alone = detect(matrix[row : row + 1, offset:])
        assert np.array_equal(together.fast_ma[row, offset:], alone.fast_ma[0], equal_nan=True)
        assert np.array_equal(together.slow_ma[row, offset:], alone.slow_ma[0], equal_nan=True)
        assert np.array_equal(together.cross[row, offset:], alone.cross[0])
        assert (
            peaks.peak_index[row] == offset + drawdown(matrix[row : row + 1, offset:]).peak_index[0]
        )


def test_interior_infinity_in_an_unpadded_row_is_rejected() -> None:
    closes = np.full((3, 400), 10.0)
    closes[1, 250] = np.inf
    with pytest.raises(ValueError, match="finite"):
        detect(closes)


@pytest.mark.parametrize(("fast", "slow"), [(3, 8), (1, 3), (2, 3), (4, 12)])
def test_flat_sessions_and_trigger_match_exact_oracle_on_tie_rich_series(
    fast: int, slow: int
) -> None:
    # Integer cents in a narrow range: many exact ties and near-ties.
    rng = np.random.default_rng(fast * 100 + slow)
    for _ in range(150):
        length = int(rng.integers(slow, 4 * slow))
        closes = (rng.integers(995, 1006, length) / 100).tolist()
        matrix = np.array([closes])
        signals = detect(matrix, fast, slow)
        reference = oracle.sma_crosses(closes, fast, slow)
        assert signals.sign[0].tolist() == reference.signs
        assert flat_sessions_to_cross(matrix, signals)[0] == reference.flat_sessions
        trigger = trigger_close(matrix, signals)[0]
        if reference.trigger is None:
            assert math.isnan(trigger)
        else:
            assert math.isclose(trigger, float(reference.trigger), rel_tol=1e-9)
